"""The coordinator: starts workers, merges their seconds, feeds outputs, stops on time.

It never measures anything itself; it only merges what workers measured and
decides when the run ends (schedule done, Ctrl-C, a failed threshold with
abort-on-fail, or the hard deadline).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from time import monotonic_ns
from typing import Any, Protocol

from surge.api.errors import RunError, UsageError
from surge.api.options import Options
from surge.engine.messages import Failed, HitSpec, Ready, Start, Stop, Tick, WorkerPlan
from surge.engine.models import build_model
from surge.engine.transport.base import WorkerTransport
from surge.metrics.aggregate import RunAggregate
from surge.metrics.stats import SecondStats

NS = 1_000_000_000
READY_TIMEOUT = 30.0  # s for workers to import the scenario and report
START_DELAY = 0.15  # s between Start and the common start time
DEADLINE_MARGIN = 10.0  # s past schedule + graceful stop before workers are told to stop
KILL_AFTER = 5.0  # s after a stop before unresponsive workers are killed


class Output(Protocol):
    """Receives the run as it happens. Calls must return quickly (no blocking I/O beyond a flush)."""

    def start(self, meta: dict[str, Any]) -> None: ...

    def second(self, st: SecondStats, row: dict[str, Any]) -> None: ...

    def finish(self, summary: dict[str, Any], agg: RunAggregate, meta_update: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class RunSpec:
    """What to run. ``scenario_path`` xor ``hit`` xor ``replay`` (a ReplaySpec)."""

    options: Options
    workers: int = 1
    scenario_path: str | None = None
    hit: HitSpec | None = None
    timeouts: tuple[float, float, float] = (10.0, 30.0, 60.0)
    insecure: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    seed: int = 0
    follow_redirects: bool = False
    setup_data: Any = None
    replay: Any = None


@dataclass
class RunOutcome:
    """What the coordinator saw: the aggregate plus how the run ended."""

    agg: RunAggregate
    status: str  # completed | interrupted | aborted | failed
    duration_s: float
    interrupted_iterations: int = 0
    warnings: list[str] = field(default_factory=list)
    tracebacks: dict[str, str] = field(default_factory=dict)
    connects: int = 0
    stop_reason: str = ""
    fatal: str | None = None  # a usage error raised during the run; the CLI exits 2 with it
    workers_lost: list[str] = field(default_factory=list)  # why workers died or were killed (also in warnings)


def planned_seconds(spec: RunSpec) -> float:
    """The schedule's length in s (for the hard deadline and the live panel)."""
    if spec.replay is not None:
        return spec.replay.planned_duration
    if spec.hit is not None:
        o = spec.options
        if o.duration is not None:
            return o.duration
        if o.shape is not None and getattr(o.shape, "kind", None) == "trace":  # the trace sets the length
            from surge.engine.models.shapes import open_curve

            return open_curve(o).duration
        return 10.0
    return build_model(spec.options).planned_duration


def execute(
    spec: RunSpec,
    outputs: list[Output],
    *,
    transport: WorkerTransport | None = None,
    meta: dict[str, Any] | None = None,
    should_abort: Callable[[RunAggregate, float], str | None] | None = None,
) -> RunOutcome:
    """Run ``spec`` to the end; returns the outcome (outputs get ``finish`` from the caller).

    ``should_abort(agg, elapsed_s)`` is asked after each second; a non-empty
    string stops the run early with that reason (abort-on-fail thresholds).
    """
    if transport is None:
        from surge.engine.transport.local import LocalProcessTransport

        transport = LocalProcessTransport()
    n = max(1, spec.workers)
    plans = [
        WorkerPlan(index=i, count=n, options=spec.options, scenario_path=spec.scenario_path, hit=spec.hit,
                   seed=spec.seed, timeouts=spec.timeouts, insecure=spec.insecure, headers=spec.headers,
                   setup_data=spec.setup_data, follow_redirects=spec.follow_redirects, replay=spec.replay)
        for i in range(n)
    ]
    planned = planned_seconds(spec)
    grace = spec.options.graceful_stop if spec.options.graceful_stop is not None else 30.0
    transport.start(plans)
    try:
        _await_ready(transport, n)
        start_ns = monotonic_ns() + int(START_DELAY * NS)
        transport.broadcast(Start(start_ns))
        for o in outputs:
            o.start({**(meta or {}), "start_ns": start_ns})
        return _collect(transport, n, start_ns, planned, grace, outputs, should_abort)
    finally:
        transport.close(kill=True)


def _await_ready(transport: WorkerTransport, n: int) -> None:
    ready: set[int] = set()
    deadline = time.monotonic() + READY_TIMEOUT
    while len(ready) < n:
        if time.monotonic() > deadline:
            raise RunError(f"workers did not start within {READY_TIMEOUT:.0f} s (is the scenario's import slow?)")
        for msg in transport.poll(0.1):
            if isinstance(msg, Ready):
                ready.add(msg.worker)
            elif isinstance(msg, Failed):
                transport.broadcast(Stop("failed"))
                raise (UsageError if msg.usage else RunError)(msg.message)
        dead = transport.dead()
        if dead:
            i, why = next(iter(dead.items()))
            raise RunError(f"worker {i} exited before starting ({why})")


def _collect(
    transport: WorkerTransport,
    n: int,
    start_ns: int,
    planned: float,
    grace: float,
    outputs: list[Output],
    should_abort: Callable[[RunAggregate, float], str | None] | None,
) -> RunOutcome:
    agg = RunAggregate()
    pending: dict[int, SecondStats] = {}
    last_tick = dict.fromkeys(range(n), 0)
    finished: set[int] = set()
    interrupted: dict[int, int] = {}
    connects: dict[int, int] = {}
    tracebacks: dict[str, str] = {}
    warnings: list[str] = []
    lost: list[str] = []  # the warnings that say a worker died or was killed
    next_second = 0
    fatal: str | None = None
    status, reason = "completed", ""
    stop_sent_at: float | None = None
    deadline = start_ns / NS + planned + grace + DEADLINE_MARGIN
    end_ns = start_ns

    def stop(why: str, new_status: str) -> None:
        nonlocal stop_sent_at, status, reason
        if stop_sent_at is None:
            stop_sent_at = time.monotonic()
            status, reason = new_status, why
            transport.broadcast(Stop(why))

    while True:
        try:
            for msg in transport.poll(0.1):
                if isinstance(msg, Tick):
                    for st in msg.seconds:
                        if st.second < next_second:
                            agg.add_late(st)  # a second already written: keep it in the totals
                            continue
                        if st.second in pending:
                            pending[st.second].merge(st)
                        else:
                            pending[st.second] = st
                    last_tick[msg.worker] = max(last_tick[msg.worker], msg.tick)
                    tracebacks.update({k: v for k, v in msg.tracebacks.items() if k not in tracebacks})
                    interrupted[msg.worker] = msg.interrupted
                    connects[msg.worker] = msg.connects
                    if msg.folded_names and not any("(other)" in w for w in warnings):
                        warnings.append("more than 2000 request names: the rest were grouped as '(other)'; use name= to group URLs")
                    if msg.fatal and fatal is None:
                        fatal = msg.fatal
                        stop("usage error in the scenario", "failed")
                    if msg.final:
                        finished.add(msg.worker)
                        end_ns = max(end_ns, monotonic_ns())
                elif isinstance(msg, Failed):
                    warnings.append(msg.message.splitlines()[0])
                    finished.add(msg.worker)
            for i, why in transport.dead().items():
                if i not in finished:
                    finished.add(i)
                    lost.append(f"worker {i} died ({why}) after second {last_tick[i]}; its data up to then is kept")
                    warnings.append(lost[-1])
            live = [last_tick[i] for i in range(n) if i not in finished]
            upto = min(live) if live else max(pending, default=-1) + 1
            while next_second < upto:
                st = pending.pop(next_second, None) or SecondStats(second=next_second)
                row = agg.add(st)
                for o in outputs:
                    o.second(st, row)
                next_second += 1
                if should_abort is not None and stop_sent_at is None:
                    why = should_abort(agg, float(next_second))
                    if why:
                        stop(why, "aborted")
            if not live:
                break
            now = time.monotonic()
            if stop_sent_at is None and now > deadline:
                warnings.append(f"workers overran the schedule by {DEADLINE_MARGIN:.0f} s and were stopped")
                stop("deadline", status)
            if stop_sent_at is not None and now - stop_sent_at > KILL_AFTER + min(grace, 1.0):
                lost.append("workers did not stop in time and were killed")
                warnings.append(lost[-1])
                transport.close(kill=True)
                for i in range(n):
                    finished.add(i)
        except KeyboardInterrupt:
            if stop_sent_at is None:
                stop("interrupted", "interrupted")
            else:  # a second Ctrl-C: stop waiting
                transport.close(kill=True)
                finished.update(range(n))
    if end_ns == start_ns:
        end_ns = monotonic_ns()
    return RunOutcome(
        agg=agg, status=status, duration_s=max((end_ns - start_ns) / NS, 1e-3),
        interrupted_iterations=sum(interrupted.values()), warnings=warnings, tracebacks=tracebacks,
        connects=sum(connects.values()), stop_reason=reason, fatal=fatal, workers_lost=lost,
    )


def replace_options(spec: RunSpec, **kw: Any) -> RunSpec:
    return dataclasses.replace(spec, options=dataclasses.replace(spec.options, **kw))
