"""constant-arrival-rate: iterations start at a fixed rate whatever the response times (open model)."""

from __future__ import annotations

from typing import ClassVar

from surge.api.options import Options
from surge.engine.models.arrival import dispatch, vu_counts
from surge.engine.models.base import require
from surge.engine.models.schedule import RateCurve
from surge.engine.runtime import Runtime, Share


class ConstantArrivalRate:
    name: ClassVar[str] = "constant-arrival-rate"

    def __init__(self, rate: float, duration: float, poisson: bool, pre_vus: int, max_vus: int,
                 share: Share, graceful_stop: float) -> None:
        self.rate, self.planned_duration, self.poisson = rate, duration, poisson
        self.pre_vus, self.max_vus, self.share, self.graceful_stop = pre_vus, max_vus, share, graceful_stop
        self.curve = RateCurve.constant(rate, duration)

    def __repr__(self) -> str:
        return f"ConstantArrivalRate(rate={self.rate}/s, duration={self.planned_duration}s)"

    @classmethod
    def from_options(cls, o: Options, share: Share) -> ConstantArrivalRate:
        rate = require(o.rate, "constant-arrival-rate needs --rate N (iterations per second)")
        pre, mx = vu_counts(o, share, rate)
        return cls(rate / share.count, o.duration if o.duration is not None else 10.0,
                   o.arrival == "poisson", pre, mx, share,
                   o.graceful_stop if o.graceful_stop is not None else 30.0)

    def target_rate(self, t: float) -> float:
        return self.curve.rate_at(t)

    def target_vus(self, t: float) -> int:
        return self.pre_vus

    async def run(self, rt: Runtime) -> None:
        await dispatch(rt, self.curve, poisson=self.poisson, pre_vus=self.pre_vus, max_vus=self.max_vus,
                       share=self.share, grace_s=self.graceful_stop)
