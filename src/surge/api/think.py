"""Think time and pacing: ``await sleep(...)`` with a constant or a distribution,
``await pace(...)`` to start iterations on a fixed interval (seconds)."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from time import monotonic_ns
from typing import Any

from surge.api.context import current_sink


class Distribution:
    """A source of non-negative durations in s."""

    def sample(self, rng: random.Random) -> float:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class constant(Distribution):  # noqa: N801 - reads like a function in scenarios
    seconds: float

    def sample(self, rng: random.Random) -> float:
        return self.seconds


@dataclass(frozen=True)
class uniform(Distribution):  # noqa: N801
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class exponential(Distribution):  # noqa: N801
    mean: float

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0


@dataclass(frozen=True)
class normal(Distribution):  # noqa: N801
    mean: float
    stddev: float

    def sample(self, rng: random.Random) -> float:
        return max(0.0, rng.gauss(self.mean, self.stddev))


@dataclass(frozen=True)
class lognormal(Distribution):  # noqa: N801
    """Log-normal with the given median (s) and shape ``sigma`` (of the underlying normal)."""

    median: float
    sigma: float

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median), self.sigma)


_default_rng = random.Random()


async def sleep(duration: float | Distribution, rng: random.Random | None = None) -> None:
    """Pause this VU for ``duration`` s, or a sample of a :class:`Distribution`."""
    if isinstance(duration, Distribution):
        duration = duration.sample(rng or _default_rng)
    if duration > 0:
        await asyncio.sleep(duration)


PACING_CHECK = "pacing"  # the check that counts iterations on time (pass) and overruns (fail)

# Monotonic ns at which the current iteration started (its intended start in open
# models); set by the engine for each iteration, None outside a run.
iteration_start: ContextVar[int | None] = ContextVar("surge_iteration_start", default=None)
# The engine's bounded sleep for pace(): returns at the given monotonic ns, at the end
# of the schedule or on a stop, whichever comes first; None outside a run.
pace_sleeper: ContextVar[Callable[[int], Awaitable[Any]] | None] = ContextVar("surge_pace_sleeper", default=None)


def pacing_delay(started_ns: int, seconds: float, now_ns: int) -> float:
    """s to wait so that the next iteration starts ``seconds`` after ``started_ns``;
    negative when the iteration overran its pacing by that much."""
    return (started_ns - now_ns) / 1e9 + seconds


async def pace(seconds: float) -> bool:
    """Wait until ``seconds`` after this iteration started (LoadRunner pacing).

    Call it last in a scenario: each VU then starts an iteration every ``seconds``
    s whatever the iteration took. When the iteration already took longer, return
    at once. Either way the ``pacing`` check counts it (passed: on time, failed:
    overran), so ``-t 'checks{name:pacing}>99%'`` gates on it. Returns True when
    on time. Outside a run (no iteration start known) it sleeps ``seconds``.
    """
    started = iteration_start.get()
    if started is None:
        await sleep(seconds)
        return True
    delay = pacing_delay(started, seconds, monotonic_ns())
    on_time = delay >= 0
    sink = current_sink.get()
    if sink is not None:
        sink.record_check(PACING_CHECK, on_time)
    if delay > 0:
        sleeper = pace_sleeper.get()
        if sleeper is not None:  # bounded by the run's end and a stop, not only by `seconds`
            await sleeper(started + int(seconds * 1e9))
        else:
            await asyncio.sleep(delay)
    return on_time
