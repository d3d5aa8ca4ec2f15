"""ramping-arrival-rate: the arrival rate follows stages from a start rate (open model).

Stage targets are iterations/s; ``rate`` (``--rate``) is the start rate (default 0).
"""

from __future__ import annotations

from typing import ClassVar

from surge.api.options import Options
from surge.api.shapes import Shape, parse_arrival
from surge.engine.models.arrival import dispatch, vu_counts
from surge.engine.models.base import require
from surge.engine.models.schedule import RateCurve
from surge.engine.models.shapes import open_curve, peak_rate
from surge.engine.runtime import Runtime, Share


class RampingArrivalRate:
    name: ClassVar[str] = "ramping-arrival-rate"

    def __init__(self, curve: RateCurve, poisson: bool, pre_vus: int, max_vus: int,
                 share: Share, graceful_stop: float, cv: float | None = None) -> None:
        self.curve, self.poisson, self.cv = curve, poisson, cv
        self.pre_vus, self.max_vus, self.share, self.graceful_stop = pre_vus, max_vus, share, graceful_stop
        self.planned_duration = curve.duration

    def __repr__(self) -> str:
        return f"RampingArrivalRate({self.curve!r})"

    @classmethod
    def from_options(cls, o: Options, share: Share) -> RampingArrivalRate:
        if not (isinstance(o.shape, Shape) and o.shape.kind == "trace"):
            require(o.stages, "ramping-arrival-rate needs --stages, e.g. --stages 30s:100,1m:100 (targets in iterations/s)")
        return cls.from_curve(o, share, open_curve(o))

    @classmethod
    def from_curve(cls, o: Options, share: Share, full: RateCurve) -> RampingArrivalRate:
        """This worker's share of the full-rate curve ``full``, with the arrival process of ``o``."""
        pre, mx = vu_counts(o, share, peak_rate(full))
        arrival = parse_arrival(o.arrival or "uniform")
        return cls(full.scaled(1.0 / share.count), arrival.kind == "poisson", pre, mx, share,
                   o.graceful_stop if o.graceful_stop is not None else 30.0, cv=arrival.cv)

    def target_rate(self, t: float) -> float:
        return self.curve.rate_at(t)

    def target_vus(self, t: float) -> int:
        return self.pre_vus

    async def run(self, rt: Runtime) -> None:
        await dispatch(rt, self.curve, poisson=self.poisson, pre_vus=self.pre_vus, max_vus=self.max_vus,
                       share=self.share, grace_s=self.graceful_stop, cv=self.cv)
