"""What crosses the coordinator-worker boundary (picklable plain data).

Keep this small and versioned by shape: a Ray-actor transport sends the same
objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from surge.api.options import Options
from surge.metrics.stats import SecondStats


@dataclass(frozen=True)
class HitSpec:
    """A scenario-less request for ``surge hit``: the same request over and over."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    connections: int = 50


@dataclass(frozen=True)
class WorkerPlan:
    """Everything one worker needs to run its share of the load."""

    index: int
    count: int
    options: Options
    scenario_path: str | None = None
    hit: HitSpec | None = None
    seed: int = 0
    timeouts: tuple[float, float, float] = (10.0, 30.0, 60.0)  # connect, read, total (s)
    insecure: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    setup_data: Any = None
    follow_redirects: bool = False
    replay: Any = None  # a surge.engine.replay.ReplaySpec for `surge replay`


# worker -> coordinator
@dataclass(frozen=True)
class Ready:
    worker: int
    pid: int


@dataclass(frozen=True)
class Failed:
    worker: int
    message: str
    usage: bool = True  # a user mistake (scenario file) rather than an internal fault


@dataclass(frozen=True)
class Tick:
    """Measurements drained at tick ``tick`` (covering completions up to start + tick s)."""

    worker: int
    tick: int
    seconds: list[SecondStats]
    tracebacks: dict[str, str] = field(default_factory=dict)
    final: bool = False
    interrupted: int = 0
    connects: int = 0
    folded_names: bool = False
    fatal: str | None = None  # a usage error that stopped this worker's run


# coordinator -> worker
@dataclass(frozen=True)
class Start:
    start_ns: int


@dataclass(frozen=True)
class Stop:
    reason: str = "stop"
