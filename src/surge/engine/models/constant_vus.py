"""constant-vus: a fixed number of VUs loop iterations for a duration (closed model)."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from surge.api.options import Options
from surge.engine.models.base import grace, vu_loop
from surge.engine.models.schedule import split_int
from surge.engine.runtime import Runtime, Share


class ConstantVUs:
    name: ClassVar[str] = "constant-vus"

    def __init__(self, vus: int, duration: float, graceful_stop: float) -> None:
        self.vus, self.planned_duration, self.graceful_stop = vus, duration, graceful_stop

    def __repr__(self) -> str:
        return f"ConstantVUs(vus={self.vus}, duration={self.planned_duration}s)"

    @classmethod
    def from_options(cls, o: Options, share: Share) -> ConstantVUs:
        return cls(split_int(o.vus if o.vus is not None else 1, share.index, share.count),
                   o.duration if o.duration is not None else 10.0,
                   o.graceful_stop if o.graceful_stop is not None else 30.0)

    def target_rate(self, t: float) -> float:
        return 0.0

    def target_vus(self, t: float) -> int:
        return self.vus if t < self.planned_duration else 0

    async def run(self, rt: Runtime) -> None:
        end = rt.at_ns(self.planned_duration)
        tasks = [asyncio.create_task(vu_loop(rt, rt.new_vu(), end)) for _ in range(self.vus)]
        await rt.sleep_until(end)
        await rt.finish(tasks, grace(rt, self.graceful_stop))
