"""The workload-model interface and the helpers closed models share."""

from __future__ import annotations

import asyncio
from time import monotonic_ns
from typing import ClassVar, Protocol

from surge.api.options import Options
from surge.engine.runtime import Runtime, Share, VUSlot

# An iteration that never awaits anything real (e.g. a scenario without
# requests) would starve the event loop; every this many iterations a VU yields.
YIELD_EVERY = 64
DEFAULT_MAX_DURATION = 600.0  # s: the bound on iteration-count models


class WorkloadModel(Protocol):
    """Decides when iterations start and how many VUs run (k6's "executor").

    Attributes:
        name: the registry name (``--model``).
        planned_duration: the schedule's length in s, without the graceful stop.
    """

    name: ClassVar[str]
    planned_duration: float

    @classmethod
    def from_options(cls, options: Options, share: Share) -> WorkloadModel: ...

    async def run(self, rt: Runtime) -> None: ...

    def target_rate(self, t: float) -> float:
        """Iterations/s this worker's schedule asks for at ``t`` s (0 for closed models)."""
        ...

    def target_vus(self, t: float) -> int: ...


class SharedCounter:
    """Iterations left in a pool shared by the VUs of one worker."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def take(self) -> bool:
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


async def vu_loop(
    rt: Runtime,
    slot: VUSlot,
    end_ns: int,
    *,
    max_iterations: int | None = None,
    pool: SharedCounter | None = None,
) -> None:
    """Run iterations back to back on one VU until the end, a stop, retirement or a count."""
    rt.bind_sink()
    rt.schedule_end_ns = max(rt.schedule_end_ns, end_ns)
    n = 0
    stop = rt.stop
    while not stop.is_set() and not slot.retire and monotonic_ns() < end_ns:
        if max_iterations is not None and n >= max_iterations:
            break
        if pool is not None and not pool.take():
            break
        started = monotonic_ns()
        await rt.iteration(slot)
        if rt.pacing:
            await rt.pace(started, end_ns)
        n += 1
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)


def grace(rt: Runtime, configured: float) -> float:
    """Graceful-stop time in s: the configured one, or at most 1 s after an early stop."""
    return min(configured, 1.0) if rt.stop.is_set() else configured


class IterationModel:
    """What the two iteration-count models share: a VU count, an iteration count and
    the max-duration bound; subclasses say how VUs take iterations in ``run``."""

    name: ClassVar[str] = ""

    def __init__(self, vus: int, iterations: int, max_duration: float, graceful_stop: float) -> None:
        self.vus, self.iterations = vus, iterations
        self.planned_duration, self.graceful_stop = max_duration, graceful_stop

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vus={self.vus}, iterations={self.iterations})"

    def target_rate(self, t: float) -> float:
        return 0.0

    def target_vus(self, t: float) -> int:
        return self.vus


async def until_done(rt: Runtime, tasks: list[asyncio.Task], end_ns: int, graceful_stop: float) -> None:
    """Iteration-count models: wait for the VUs to finish their work, or for the
    max-duration bound (or a stop), then give in-flight iterations the graceful stop."""
    waiter = asyncio.ensure_future(asyncio.wait(tasks))
    stopper = asyncio.ensure_future(rt.sleep_until(end_ns))
    await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    await rt.finish(tasks, grace(rt, graceful_stop))


def require(value, message: str):
    from surge.api.errors import UsageError

    if value is None:
        raise UsageError(message)
    return value
