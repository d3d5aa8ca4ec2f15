"""The per-VU run context that ``check`` and ``sleep`` reach through a ContextVar.

asyncio copies context per task, so each VU task sees its own value; outside a
run (a scenario called from a unit test) there is none and helpers still work.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol


class CheckSink(Protocol):
    def record_check(self, name: str, passed: bool) -> None: ...


current_sink: ContextVar[CheckSink | None] = ContextVar("surge_check_sink", default=None)


@dataclass(frozen=True)
class WorkerInfo:
    """Which worker process this is: worker ``index`` of ``count``, and the run's ``seed``.

    Feeders read it to split rows between workers without sharing anything; a
    worker sets it once at start (before importing the scenario).
    """

    index: int = 0
    count: int = 1
    seed: int = 0


# None outside a worker (a scenario unit test, the CLI process): read as worker 0 of 1.
current_worker: ContextVar[WorkerInfo | None] = ContextVar("surge_worker", default=None)
