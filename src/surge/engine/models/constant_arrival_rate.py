"""constant-arrival-rate: iterations start at a fixed rate whatever the response times (open model).

The ramping model with one flat segment: same dispatcher, same VU accounting.
"""

from __future__ import annotations

from typing import ClassVar

from surge.api.options import Options
from surge.api.shapes import Shape
from surge.engine.models.base import require
from surge.engine.models.ramping_arrival_rate import RampingArrivalRate
from surge.engine.models.shapes import open_curve
from surge.engine.runtime import Share


class ConstantArrivalRate(RampingArrivalRate):
    name: ClassVar[str] = "constant-arrival-rate"

    def __repr__(self) -> str:
        return f"ConstantArrivalRate(rate={self.curve.rate_at(0)}/s, duration={self.planned_duration}s)"

    @classmethod
    def from_options(cls, o: Options, share: Share) -> ConstantArrivalRate:
        if not (isinstance(o.shape, Shape) and o.shape.kind == "trace"):
            require(o.rate, "constant-arrival-rate needs --rate N (iterations per second)")
        return cls.from_curve(o, share, open_curve(o))
