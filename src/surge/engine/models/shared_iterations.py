"""shared-iterations: N iterations in total, taken by whichever VU is free.

The total is split evenly across worker processes; within a worker the VUs
share one pool, so faster VUs do more iterations.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from surge.api.options import Options
from surge.engine.models.base import (
    DEFAULT_MAX_DURATION,
    IterationModel,
    SharedCounter,
    require,
    until_done,
    vu_loop,
)
from surge.engine.models.schedule import split_int
from surge.engine.runtime import Runtime, Share


class SharedIterations(IterationModel):
    name: ClassVar[str] = "shared-iterations"

    @classmethod
    def from_options(cls, o: Options, share: Share) -> SharedIterations:
        its = require(o.iterations, "shared-iterations needs --iterations N (total iterations)")
        total_vus = o.vus if o.vus is not None else 1
        vus = split_int(total_vus, share.index, share.count)
        # Only workers that have VUs take iterations: with fewer VUs than workers,
        # the others would hold a share nobody runs.
        with_vus = [i for i in range(share.count) if split_int(total_vus, i, share.count) > 0]
        mine = split_int(its, with_vus.index(share.index), len(with_vus)) if vus else 0
        return cls(min(vus, mine) if mine else 0, mine, o.max_duration or DEFAULT_MAX_DURATION,
                   o.graceful_stop if o.graceful_stop is not None else 30.0)

    async def run(self, rt: Runtime) -> None:
        end = rt.at_ns(self.planned_duration)
        if self.vus == 0:
            return  # this worker got no VUs (or no iterations): nothing to wait for
        pool = SharedCounter(self.iterations)
        tasks = [asyncio.create_task(vu_loop(rt, rt.new_vu(), end, pool=pool)) for _ in range(self.vus)]
        await until_done(rt, tasks, end, self.graceful_stop)
