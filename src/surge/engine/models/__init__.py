"""Workload models, one per module, registered by name (like k6's executors)."""

from __future__ import annotations

from surge.api.errors import UsageError
from surge.api.options import Options
from surge.engine.models.base import WorkloadModel
from surge.engine.models.constant_arrival_rate import ConstantArrivalRate
from surge.engine.models.constant_vus import ConstantVUs
from surge.engine.models.per_vu_iterations import PerVUIterations
from surge.engine.models.ramping_arrival_rate import RampingArrivalRate
from surge.engine.models.ramping_vus import RampingVUs
from surge.engine.models.shared_iterations import SharedIterations
from surge.engine.runtime import Share

REGISTRY: dict[str, type] = {
    m.name: m
    for m in (ConstantVUs, RampingVUs, ConstantArrivalRate, RampingArrivalRate, PerVUIterations, SharedIterations)
}


def build_model(options: Options, share: Share = Share()) -> WorkloadModel:
    """The model ``options`` describe, sized for this worker's ``share``."""
    name = options.resolved_model()
    options.check_timing()
    cls = REGISTRY.get(name)
    if cls is None:
        raise UsageError(f"unknown model {name!r}: choose one of {', '.join(REGISTRY)}")
    return cls.from_options(options, share)


__all__ = ["REGISTRY", "WorkloadModel", "build_model"]
