"""per-vu-iterations: each VU runs exactly N iterations (bounded by max_duration)."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from surge.api.options import Options
from surge.engine.models.base import (
    DEFAULT_MAX_DURATION,
    IterationModel,
    require,
    until_done,
    vu_loop,
)
from surge.engine.models.schedule import split_int
from surge.engine.runtime import Runtime, Share


class PerVUIterations(IterationModel):
    name: ClassVar[str] = "per-vu-iterations"

    @classmethod
    def from_options(cls, o: Options, share: Share) -> PerVUIterations:
        its = require(o.iterations, "per-vu-iterations needs --iterations N (iterations per VU)")
        return cls(split_int(o.vus if o.vus is not None else 1, share.index, share.count), its,
                   o.max_duration or DEFAULT_MAX_DURATION,
                   o.graceful_stop if o.graceful_stop is not None else 30.0)

    async def run(self, rt: Runtime) -> None:
        end = rt.at_ns(self.planned_duration)
        if self.vus == 0:
            return  # this worker got no VUs: nothing to wait for
        tasks = [asyncio.create_task(vu_loop(rt, rt.new_vu(), end, max_iterations=self.iterations))
                 for _ in range(self.vus)]
        await until_done(rt, tasks, end, self.graceful_stop)
