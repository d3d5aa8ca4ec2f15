"""Think time: ``await sleep(...)`` with a constant or a distribution (seconds)."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass


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
