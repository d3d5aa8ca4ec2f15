"""constant-arrival-rate: iterations start at a fixed rate whatever the response times (open model).

The ramping model with one flat segment: same dispatcher, same VU accounting.
"""

from __future__ import annotations

from typing import ClassVar

from surge.api.options import Options
from surge.engine.models.arrival import vu_counts
from surge.engine.models.base import require
from surge.engine.models.ramping_arrival_rate import RampingArrivalRate
from surge.engine.models.schedule import RateCurve
from surge.engine.runtime import Share


class ConstantArrivalRate(RampingArrivalRate):
    name: ClassVar[str] = "constant-arrival-rate"

    def __repr__(self) -> str:
        return f"ConstantArrivalRate(rate={self.curve.rate_at(0)}/s, duration={self.planned_duration}s)"

    @classmethod
    def from_options(cls, o: Options, share: Share) -> ConstantArrivalRate:
        rate = require(o.rate, "constant-arrival-rate needs --rate N (iterations per second)")
        pre, mx = vu_counts(o, share, rate)
        curve = RateCurve.constant(rate / share.count, o.duration if o.duration is not None else 10.0)
        return cls(curve, o.arrival == "poisson", pre, mx, share,
                   o.graceful_stop if o.graceful_stop is not None else 30.0)
