"""The live view's plumbing: the engine's per-second rows, fanned out to SSE subscribers.

Two threads meet here. The engine calls :class:`LiveFeed` (an engine ``Output``)
from the CLI's main thread, once a second; the dashboard's uvicorn runs its own
event loop in a background thread, one ``asyncio.Queue`` per open ``/live``
page. :class:`LiveHub` serialises each event once, keeps the current run's
events (so a page opened mid-run draws the whole run so far), and hands new
events to each subscriber's loop with ``loop.call_soon_threadsafe``: the engine
never blocks on a browser, and queues are only touched in their own loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 6 * 3600  # seconds of a run kept for late subscribers (a 6-hour soak)
MAX_QUEUE = 1200  # events a subscriber may fall behind before it is dropped (its page reconnects)
ROW_FIELDS = ("t", "requests", "errors", "started", "dropped", "target_rate", "vus", "iterations",
              "p50", "p95", "p99", "service_p50", "service_p95", "service_p99")
CLOSED = None  # the queue item that ends a stream


def sse(event: str, data: Any) -> str:
    """One Server-Sent Event. ``json.dumps`` never emits a newline, so ``data`` stays one line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


@dataclass
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUE))


class LiveHub:
    """Thread-safe fan-out of live events; keeps the current run for late subscribers."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self._lock = threading.Lock()
        self._max_rows = max_rows
        self._run: dict[str, Any] | None = None  # the 'start' payload of the current run
        self._rows: list[dict[str, Any]] = []
        self._finish: dict[str, Any] | None = None
        self._subs: list[_Subscriber] = []
        self._closed = False

    # ------------------------------------------------------------------ publishing (any thread)

    def begin(self, run: dict[str, Any]) -> None:
        """A run starts: forget the previous one; pages reset their charts."""
        with self._lock:
            self._run, self._rows, self._finish = run, [], None
            self._fan_out(sse("start", run))

    def add(self, row: dict[str, Any]) -> None:
        """One finished second of the run."""
        slim = {k: row.get(k) for k in ROW_FIELDS}
        with self._lock:
            if len(self._rows) < self._max_rows:
                self._rows.append(slim)
            self._fan_out(sse("second", slim))

    def end(self, result: dict[str, Any]) -> None:
        """The run is over (its summary's headline figures)."""
        with self._lock:
            self._finish = result
            self._fan_out(sse("finish", result))

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        with self._lock:
            self._closed = True
            subs, self._subs = self._subs, []
        bye = sse("bye", {})
        for s in subs:
            _post(s, bye)  # tells the page not to reconnect to a server that is going away
            _post(s, CLOSED)

    def _fan_out(self, event: str) -> None:  # holds the lock
        for s in list(self._subs):
            if s.loop.is_closed():
                self._subs.remove(s)
            else:
                _post(s, event)

    # ------------------------------------------------------------------ subscribing (server loop)

    def subscribe(self) -> tuple[str, asyncio.Queue[str | None]]:
        """From inside the server's loop: the snapshot event, and the queue of what follows.

        Snapshot and registration happen under one lock, so no second is missed
        or sent twice."""
        sub = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            snapshot = sse("snapshot", {"run": self._run, "rows": self._rows, "finish": self._finish})
            if self._closed:
                sub.queue.put_nowait(CLOSED)
            else:
                self._subs.append(sub)
        return snapshot, sub.queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        with self._lock:
            self._subs = [s for s in self._subs if s.queue is not queue]

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    @property
    def state(self) -> dict[str, Any]:
        """What the hub holds now (for the JSON status endpoint and tests)."""
        with self._lock:
            return {"run": self._run, "seconds": len(self._rows), "finished": self._finish is not None}


def _post(sub: _Subscriber, item: str | None) -> None:
    """Queue ``item`` in the subscriber's own loop; a subscriber too far behind gets a CLOSED instead."""

    def put() -> None:
        try:
            sub.queue.put_nowait(item)
        except asyncio.QueueFull:  # a stalled page: end its stream; EventSource reconnects and resyncs
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.queue.put_nowait(CLOSED)

    try:
        sub.loop.call_soon_threadsafe(put)
    except RuntimeError:  # its loop has closed: nothing to deliver to
        pass


class LiveFeed:
    """Engine output that publishes the run to a :class:`LiveHub`; every call returns at once."""

    def __init__(self, hub: LiveHub, title: str = "") -> None:
        self.hub, self.title = hub, title

    def __repr__(self) -> str:
        return f"LiveFeed({self.title!r}, subscribers={self.hub.subscribers})"

    def start(self, meta: dict[str, Any]) -> None:
        hit = meta.get("hit") or {}
        scenario = meta.get("scenario") or {}
        self.hub.begin({
            "run_id": meta.get("run_id"),
            "title": self.title or scenario.get("path") or f"{hit.get('method', '')} {hit.get('url', '')}".strip(),
            "model": meta.get("model"),
            "planned_s": meta.get("planned_duration_s"),
            "started_at": meta.get("started_at"),
        })

    def second(self, st: Any, row: dict[str, Any]) -> None:
        self.hub.add(row)

    def finish(self, summary: dict[str, Any], agg: Any, meta_update: dict[str, Any]) -> None:
        lat = summary.get("latency") or {}
        self.hub.end({
            "status": meta_update.get("status") or summary.get("status"),
            "requests": summary.get("requests"),
            "errors": summary.get("errors"),
            "p95": lat.get("p95") if isinstance(lat, dict) else None,
            "run_dir": summary.get("run_dir"),
        })
