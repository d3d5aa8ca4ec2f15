"""The live terminal panel: one refresh per second at most, from per-second rows."""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

WINDOW = 5  # s of rows the "recent" columns average over


class LivePanel:
    """Output showing elapsed/remaining, VUs, target vs achieved rate, req/s, recent percentiles, errors."""

    def __init__(self, console: Console, planned_s: float, title: str) -> None:
        self.console, self.planned, self.title = console, planned_s, title
        self.recent: deque[dict[str, Any]] = deque(maxlen=WINDOW)
        self.requests = self.errors = self.dropped = 0
        self.live: Live | None = None

    def start(self, meta: dict[str, Any]) -> None:
        self.live = Live(self._render(), console=self.console, refresh_per_second=1, transient=True,
                         auto_refresh=False)
        self.live.start()

    def second(self, st, row: dict[str, Any]) -> None:
        self.recent.append(row)
        self.requests += row["requests"]
        self.errors += row["errors"]
        self.dropped += row["dropped"]
        if self.live is not None:
            self.live.update(self._render(), refresh=True)

    def finish(self, summary, agg, meta_update) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _render(self) -> Table:
        elapsed = (self.recent[-1]["t"] + 1) if self.recent else 0
        rows = list(self.recent)
        n = max(len(rows), 1)
        rps = sum(r["requests"] for r in rows) / n
        started = sum(r["started"] for r in rows) / n
        target = sum(r["target_rate"] for r in rows) / n
        last = rows[-1] if rows else {}
        t = Table.grid(padding=(0, 2))
        t.add_row(
            f"[bold]{self.title}[/]",
            f"elapsed {elapsed:.0f}s / {self.planned:.0f}s" if elapsed <= self.planned
            else "finishing in-flight iterations",
            f"VUs {last.get('vus', 0)}",
            f"req/s {rps:,.0f}",
            f"iter/s {started:,.0f} (target {target:,.0f})" if target else "",
        )

        def ms(key: str) -> str:
            v = last.get(key)
            return f"{v:.1f}ms" if v is not None else "-"

        err = f"[red]errors {self.errors:,}[/]" if self.errors else "errors 0"
        drop = f"[yellow]dropped {self.dropped:,}[/]" if self.dropped else ""
        t.add_row(f"requests {self.requests:,}", f"p50 {ms('p50')}", f"p95 {ms('p95')}", f"p99 {ms('p99')}",
                  f"{err} {drop}".strip())
        return t
