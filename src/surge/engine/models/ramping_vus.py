"""ramping-vus: the VU count follows stages, ramping linearly (closed model).

VUs removed on the way down finish their current iteration within
``graceful_ramp_down`` s, then are cancelled.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from surge.api.options import Options, Stage
from surge.engine.models.base import grace, require, vu_loop
from surge.engine.models.schedule import split_int, stages_duration, value_at
from surge.engine.runtime import Runtime, Share

CONTROL_PERIOD = 0.05  # s between VU-count adjustments


class RampingVUs:
    name: ClassVar[str] = "ramping-vus"

    def __init__(self, stages: tuple[Stage, ...], start_vus: int, share: Share,
                 graceful_stop: float, graceful_ramp_down: float) -> None:
        self.stages, self.start_vus, self.share = stages, start_vus, share
        self.graceful_stop, self.graceful_ramp_down = graceful_stop, graceful_ramp_down
        self.planned_duration = stages_duration(stages)

    def __repr__(self) -> str:
        return f"RampingVUs(stages={len(self.stages)}, duration={self.planned_duration}s)"

    @classmethod
    def from_options(cls, o: Options, share: Share) -> RampingVUs:
        stages = require(o.stages, "ramping-vus needs --stages, e.g. --stages 30s:50,1m:50,10s:0")
        return cls(stages, o.vus or 0, share,
                   o.graceful_stop if o.graceful_stop is not None else 30.0,
                   o.graceful_ramp_down if o.graceful_ramp_down is not None else 30.0)

    def target_rate(self, t: float) -> float:
        return 0.0

    def target_vus(self, t: float) -> int:
        total = round(value_at(self.stages, t, float(self.start_vus)))
        return split_int(int(total), self.share.index, self.share.count)

    async def run(self, rt: Runtime) -> None:
        end = rt.at_ns(self.planned_duration)
        active: list[tuple] = []  # (slot, task)
        retiring: list[tuple] = []
        t = 0.0
        while t < self.planned_duration and not rt.stop.is_set():
            want = self.target_vus(t)
            while len(active) < want:
                slot = rt.new_vu()
                active.append((slot, asyncio.create_task(vu_loop(rt, slot, end))))
            while len(active) > want:
                slot, task = active.pop()
                slot.retire = True
                retiring.append((slot, task, rt.now_s() + self.graceful_ramp_down))
            now = rt.now_s()
            for item in [r for r in retiring if r[1].done() or now >= r[2]]:
                item[1].cancel()
                retiring.remove(item)
            t += CONTROL_PERIOD
            await rt.sleep_until(rt.at_ns(t))
        tasks = [task for _, task in active] + [r[1] for r in retiring]
        await rt.finish(tasks, grace(rt, self.graceful_stop))
