"""``surge replay``: send a recorded trace's requests at their original relative times.

An open model: request *i* is due at ``start + offset_i / speed`` (the start of
its arrival slot, ``Options.arrival_slot``) whether or not earlier ones have
finished, and its latency is measured from that due time
(coordinated-omission free). Each worker takes every k-th request of the trace
(round robin by index), so the workers' streams interleave into the original
order. At most ``max_inflight`` requests per worker are outstanding; an
arrival beyond that is dropped and counted, like an open model's dropped
iteration, never silently delayed.

``ReplayRunner`` stands in for a workload model in the worker, like
``surge hit``'s runner. Requests go through the scenario :class:`Client`
(keep-alive pool, redirects off, timeouts, error classification) and are
recorded under scenario ``replay`` with the trace's name (endpoint template).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from time import monotonic_ns

import numpy as np

from surge.engine.http.client import Client, Timeouts
from surge.engine.http.pool import ConnectionPool
from surge.engine.messages import WorkerPlan
from surge.engine.recorder import Recorder
from surge.engine.replay_trace import Trace, load_trace
from surge.engine.runtime import NS, Runtime, Share

SCENARIO = "replay"  # the scenario column of every replayed request
BURST = 256  # requests dispatched back to back before yielding to the loop
DEFAULT_MAX_INFLIGHT = 1000  # per worker


@dataclass(frozen=True)
class ReplaySpec:
    """A trace to replay (plain, picklable data).

    Attributes:
        trace_path: the ``.npz`` written by :class:`~surge.engine.replay_trace.TraceBuilder`.
        base_url: where the requests go (``http://host:port``; targets are appended).
        speed: time scale: 2.0 replays twice as fast (offsets divided by 2).
        duration: replay at most this many s of the (scaled) schedule; None: all of it.
        max_inflight: outstanding requests per worker before arrivals are dropped.
        requests: requests in the trace; span_s: its last offset (s, unscaled).
        source: the log it came from (for the run's metadata).
    """

    trace_path: str
    base_url: str
    speed: float = 1.0
    duration: float | None = None
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    requests: int = 0
    span_s: float = 0.0
    source: str = ""

    @property
    def planned_duration(self) -> float:
        """Length of the replay schedule in s (the last due time, plus 1 ms so it is inside)."""
        scaled = self.span_s / self.speed + 1e-3
        return min(scaled, self.duration) if self.duration is not None else scaled


def load_share(plan: WorkerPlan) -> Trace:
    """This worker's slice of the plan's trace (read before the start, not on the clock)."""
    spec: ReplaySpec = plan.replay
    return load_trace(spec.trace_path, plan.index, plan.count)


class ReplayRunner:
    """Runs one worker's slice of a :class:`ReplaySpec`; quacks like a workload model."""

    name = "replay"

    def __init__(self, plan: WorkerPlan, recorder: Recorder, share: Share, trace: Trace | None = None) -> None:
        spec: ReplaySpec = plan.replay
        self.spec = spec
        self.trace = trace if trace is not None else load_share(plan)
        self.recorder = recorder
        connect_t, read_t, total_t = plan.timeouts
        self.timeouts = Timeouts(connect_t, read_t, total_t)
        self.pool = ConnectionPool(connect_timeout=connect_t, insecure=plan.insecure)
        self.headers = dict(plan.headers)
        self.planned_duration = spec.planned_duration
        self.runtime = Runtime(scenarios=(), recorder=recorder, make_client=None, share=share,
                               start_ns=recorder.start_ns, seed=plan.seed,
                               slot_ns=plan.options.slot_ns())
        self.grace = plan.options.graceful_stop if plan.options.graceful_stop is not None else 30.0
        self.free: list[Client] = []
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        # Due times in ns from the start, and this worker's arrivals per second (for target_rate).
        self.due_ns = np.rint(self.trace.offsets / spec.speed * NS).astype(np.int64)
        secs = (self.due_ns // NS).astype(np.int64)
        self.per_second = np.bincount(secs) if len(secs) else np.zeros(1, dtype=np.int64)
        self.tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"<ReplayRunner requests={len(self.trace)} speed={self.spec.speed} base={self.spec.base_url}>"

    # -- model interface -----------------------------------------------------
    def target_rate(self, t: float) -> float:
        s = int(t)
        return float(self.per_second[s]) if 0 <= s < len(self.per_second) and t < self.planned_duration else 0.0

    @property
    def active_vus(self) -> int:
        return self.inflight

    async def run(self, rt: Runtime) -> None:
        end_ns = rt.at_ns(self.planned_duration)
        rec = self.recorder
        tr = self.trace
        burst = 0
        slotted = rt.slotted
        for i, due_off in enumerate(self.due_ns.tolist()):
            due = slotted(due_off)
            if due >= end_ns:
                break
            now = monotonic_ns()
            if due > now:
                burst = 0
                # one wake-up per arrival slot, like the arrival dispatcher
                if not await rt.sleep_until_precise(due):
                    break
                now = monotonic_ns()
            elif rt.stop.is_set():
                break
            rt.note_lag(due, now)
            if self.inflight >= self.spec.max_inflight:
                rec.dropped[rec.second_of(due)] += 1
            else:
                rec.started[rec.second_of(due)] += 1
                self._send(tr, i, due)
            burst += 1
            if burst >= BURST:  # far behind schedule: let responses in between
                burst = 0
                await asyncio.sleep(0)
        await self._drain(rt)

    # -- requests --------------------------------------------------------------
    def _client(self) -> Client:
        if self.free:
            return self.free.pop()
        # No cookie jar: a client carries requests of many different users of the log in turn.
        c = Client(self.pool, self.recorder, base_url=self.spec.base_url, headers=self.headers,
                   timeouts=self.timeouts, follow_redirects=False, cookies=False)
        c.scenario = SCENARIO
        return c

    def _send(self, tr: Trace, i: int, due: int) -> None:
        client = self._client()
        client.intended_ns = due  # read synchronously when the request coroutine starts
        h, b = int(tr.headers[i]), int(tr.bodies[i])
        coro = client.request(
            tr.method_table[tr.methods[i]], tr.target_table[tr.targets[i]],
            headers=tr.header_table[h] if h >= 0 else None,
            content=tr.body_table[b] if b >= 0 else None,
            name=tr.name_table[tr.names[i]],
        )
        self.inflight += 1
        self.idle.clear()
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(lambda t, c=client: self._done(t, c))

    def _done(self, task: asyncio.Task, client: Client) -> None:
        self.tasks.discard(task)
        self.inflight -= 1
        if not task.cancelled():
            self.free.append(client)
            exc = task.exception()  # Client.request returns HTTP and network errors; anything else is kept
            if exc is not None and type(exc).__name__ not in self.runtime.tracebacks:
                import traceback

                self.runtime.tracebacks[type(exc).__name__] = "".join(traceback.format_exception(exc)).strip()
        if self.inflight == 0:
            self.idle.set()

    async def _drain(self, rt: Runtime) -> None:
        """Let in-flight requests finish (graceful stop; at most 1 s after an early stop)."""
        grace = min(self.grace, 1.0) if rt.stop.is_set() else self.grace
        try:
            await asyncio.wait_for(self.idle.wait(), timeout=max(grace, 0.0))
        except TimeoutError:
            for t in list(self.tasks):
                t.cancel()
            rt.interrupted += len(self.tasks)
            if self.tasks:
                await asyncio.wait(list(self.tasks), timeout=5.0)


__all__ = ["DEFAULT_MAX_INFLIGHT", "ReplayRunner", "ReplaySpec", "load_share"]
