"""The per-VU run context that ``check`` and ``sleep`` reach through a ContextVar.

asyncio copies context per task, so each VU task sees its own value; outside a
run (a scenario called from a unit test) there is none and helpers still work.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class CheckSink(Protocol):
    def record_check(self, name: str, passed: bool) -> None: ...


current_sink: ContextVar[CheckSink | None] = ContextVar("surge_check_sink", default=None)
