"""One run from spec to summary: hooks, engine, thresholds, run directory.

The CLI parses flags into a :class:`~surge.engine.coordinator.RunSpec` and
calls :func:`run_session`; everything it prints comes from the returned
summary.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surge._version import __version__
from surge.analysis.generator import assess
from surge.analysis.observe import observe
from surge.analysis.summary import build_summary
from surge.analysis.thresholds import Threshold, evaluate
from surge.api.errors import UsageError
from surge.engine.coordinator import Output, RunOutcome, RunSpec, execute, planned_seconds
from surge.engine.hit_native import check_engine_choice, expected_engine
from surge.engine.loader import ScenarioSet
from surge.metrics.aggregate import RunAggregate
from surge.results.meta import git_info, host_info, now_iso, open_schedule, options_dict
from surge.results.rundir import RunDirWriter, drop_if_empty, reserve_run_dir
from surge.sut.spec import MonitorSpec

ABORT_GRACE_S = 5.0  # thresholds are not judged for abort during the first seconds


@dataclass
class SessionResult:
    summary: dict[str, Any]
    run_dir: Path | None
    outcome: RunOutcome
    thresholds_passed: bool | None = None  # None: no thresholds
    teardown_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


HOOK_TIMEOUT_S = 60.0  # s: default limit of setup() and teardown(), as k6's setupTimeout/teardownTimeout


class HookTimeout(Exception):
    """setup() or teardown() did not return within its limit."""


def _invoke_hook(fn: Any, *args: Any) -> Any:
    """Call setup/teardown, sync or async, with as many of ``args`` as it accepts."""
    n = len([p for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty])
    res = fn(*args[:n])
    if inspect.isawaitable(res):
        async def wait() -> Any:
            return await res

        res = asyncio.run(wait())
    return res


def _call_hook(fn: Any, *args: Any, timeout_s: float = HOOK_TIMEOUT_S) -> Any:
    """:func:`_invoke_hook` in a daemon thread, waited for at most ``timeout_s`` s.

    A hook that never returns (an await on nothing, a blocking call) hung the run, and
    after the load that cost the whole run's results; a thread can be abandoned where a
    blocked call cannot be interrupted. Raises HookTimeout, or what the hook raised.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = _invoke_hook(fn, *args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name=f"surge-{getattr(fn, '__name__', 'hook')}", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise HookTimeout(f"did not return within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _hook_timeout(value: float | None) -> float:
    """s a hook may take: the scenario's setup_timeout / teardown_timeout, or the default."""
    return HOOK_TIMEOUT_S if value is None else value


def run_setup(scenarios: ScenarioSet | None) -> Any:
    """Run the scenario's ``setup()`` once, before the load; its result goes to every VU."""
    if scenarios is None or scenarios.setup is None:
        return None
    try:
        return _call_hook(scenarios.setup, timeout_s=_hook_timeout(scenarios.options.setup_timeout))
    except HookTimeout as exc:
        raise UsageError(f"setup() in {scenarios.path} {exc}: fix it, or allow it longer with "
                         "options = {\"setup_timeout\": \"5m\"}") from None
    except Exception as exc:
        raise UsageError(f"setup() in {scenarios.path} raised {type(exc).__name__}: {exc}; fix it and retry") from None


def _sut_monitor(monitor: MonitorSpec | None, spec: RunSpec) -> Any:
    """The run's SUT monitor, opened (None without one); py-spy records after the ramp-up."""
    if monitor is None or not monitor.active:
        return None
    from surge.sut import SutMonitor, steady_window

    stages = spec.options.stages or ()
    first = stages[0].duration if len(stages) > 1 else None
    sut = SutMonitor(monitor, None, steady_window(planned_seconds(spec), first))
    sut.open()
    return sut


def _findings(summary: dict[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    """The run's findings from what its directory holds so far (series, SUT samples, profile).

    A failure here costs the findings, never the run: it becomes a warning.
    """
    from surge.analysis.findings import diagnose
    from surge.results.rundir import read_series
    from surge.results.sut_files import read_profile, read_sut

    try:
        found = diagnose(summary, read_series(run_dir), sut=read_sut(run_dir), stacks=read_profile(run_dir))
        return [f.to_json() for f in found]
    except Exception as exc:  # noqa: BLE001 - diagnosis is advisory
        summary["warnings"].append(f"findings could not be computed: {type(exc).__name__}: {exc}")
        return []


def run_session(
    spec: RunSpec,
    *,
    label: str,
    thresholds: tuple[Threshold, ...] = (),
    abort_on_fail: bool = False,
    out_root: Path | None = Path("runs"),
    outputs: list[Output] | None = None,
    scenarios: ScenarioSet | None = None,
    argv: list[str] | None = None,
    monitor: MonitorSpec | None = None,
) -> SessionResult:
    """Run ``spec`` and return its summary; writes a run directory under ``out_root``."""
    sut = _sut_monitor(monitor, spec)  # launches the SUT and checks --monitor targets, before setup() calls it
    try:
        setup_data = run_setup(scenarios)
    except BaseException:
        if sut is not None:
            sut.close()
        raise
    if setup_data is not None:
        from dataclasses import replace

        spec = replace(spec, setup_data=setup_data)
    if spec.hit is not None:
        check_engine_choice(spec.hit.url)
    model = "hit" if spec.hit is not None else "replay" if spec.replay is not None else spec.options.resolved_model()
    opts = options_dict(spec.options)
    meta = {
        "run_id": None,
        "surge_version": __version__,
        "started_at": now_iso(),
        "argv": argv if argv is not None else sys.argv,
        "scenario": {"path": scenarios.path, "sha256": scenarios.sha256,
                     "names": [s.name for s in scenarios.scenarios]} if scenarios
        # a replay is grouped in the store by the log it replays
        else {"path": spec.replay.source, "sha256": None, "names": []} if spec.replay is not None else None,
        "hit": {"method": spec.hit.method, "url": spec.hit.url, "connections": spec.hit.connections,
                "engine": expected_engine(spec.hit.url)}
        if spec.hit else None,
        "replay": {"source": spec.replay.source, "requests": spec.replay.requests, "speed": spec.replay.speed,
                   "base_url": spec.replay.base_url, "max_inflight": spec.replay.max_inflight}
        if spec.replay is not None else None,
        "model": model,
        "options": opts,
        # open models: arrivals due within a slot of this length start together at its start
        "arrival_slot_ms": spec.options.slot_ns() / 1e6 if open_schedule(model, opts) else None,
        "planned_duration_s": planned_seconds(spec),
        "workers": spec.workers,
        "host": host_info(),
        "git": git_info(),
        "thresholds": [t.source for t in thresholds],
    }
    outs = list(outputs or [])
    writer = None
    run_dir = None
    if out_root is not None:
        run_dir = reserve_run_dir(out_root, label)
        meta["run_id"] = run_dir.name
        writer = RunDirWriter(run_dir)
        outs.insert(0, writer)

    def should_abort(agg: RunAggregate, elapsed: float) -> str | None:
        if elapsed < ABORT_GRACE_S:
            return None
        for th in thresholds:
            if th.fails_early(observe(th, agg, elapsed)):
                return f"threshold {th.source} failed during the run"
        return None

    try:
        with sut if sut is not None else nullcontext():  # stops the SUT monitoring on any exit
            if sut is not None:
                sut.attach(run_dir)
                outs.append(sut)
            outcome = execute(spec, outs, meta=meta,
                              should_abort=should_abort if abort_on_fail and thresholds else None)
    except BaseException:
        if run_dir is not None:
            drop_if_empty(run_dir)  # a run that never started leaves no empty directory behind
        raise
    if sut is not None:
        outcome.warnings.extend(sut.warnings)
    results = evaluate(thresholds, lambda th: observe(th, outcome.agg, outcome.duration_s)) if thresholds else []
    teardown_error = None
    if scenarios is not None and scenarios.teardown is not None:
        try:
            _call_hook(scenarios.teardown, setup_data, timeout_s=_hook_timeout(scenarios.options.teardown_timeout))
        except HookTimeout as exc:
            teardown_error = (f"teardown() {exc} and was abandoned; the run's results are kept "
                              "(allow it longer with options = {\"teardown_timeout\": \"5m\"})")
            outcome.warnings.append(teardown_error)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM while it ran: keep what the load measured
            teardown_error = "teardown() was interrupted; the run's results are kept"
            outcome.warnings.append(teardown_error)
            outcome.status = "interrupted"
        except Exception as exc:
            teardown_error = f"teardown() raised {type(exc).__name__}: {exc}"
            outcome.warnings.append(teardown_error)
    open_model = model in ("constant-arrival-rate", "ramping-arrival-rate") or (
        spec.hit is not None and spec.options.rate is not None) or spec.replay is not None
    if outcome.stop_reason and outcome.status == "aborted":
        outcome.warnings.append(f"aborted: {outcome.stop_reason}")
    summary = build_summary(
        outcome.agg,
        duration_s=outcome.duration_s,
        generator=assess(outcome.agg.rows, open_model),
        status=outcome.status,
        interrupted_iterations=outcome.interrupted_iterations,
        thresholds=[
            {"threshold": r.threshold.source, "metric": r.threshold.metric, "op": r.threshold.op,
             "limit": r.threshold.value, "observed": r.observed, "observed_text": r.observed_text(),
             "passed": r.passed}
            for r in results
        ],
        warnings=outcome.warnings,
        iteration_tracebacks=outcome.tracebacks,
    )
    if spec.hit is not None or spec.replay is not None:
        summary["iterations"]["completed"] = summary["requests"]  # a hit/replay iteration is one request
    if outcome.fatal:
        summary["error"] = outcome.fatal
    summary["model"] = model
    summary["open_model"] = open_model
    summary["connections_opened"] = outcome.connects
    summary["workers_lost"] = outcome.workers_lost
    summary["run_dir"] = str(run_dir) if run_dir else None
    if sut is not None and sut.summary() is not None:
        summary["sut"] = sut.summary()
    if run_dir is not None:
        summary["findings"] = _findings(summary, run_dir)
    meta_update = {"status": outcome.status, "ended_at": now_iso(), "duration_s": outcome.duration_s}
    for o in outs:
        o.finish(summary, outcome.agg, meta_update)
    passed = all(r.passed for r in results) if results else None
    return SessionResult(summary, run_dir, outcome, passed, teardown_error)
