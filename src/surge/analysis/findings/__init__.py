"""Findings: a rule-based diagnosis of a run in plain language, each citing its evidence.

:func:`diagnose` is pure: the run's summary, its per-second series, and optionally
the SUT resource samples and the profile's stacks in; a list of :class:`Finding`
out, most severe first. Each rule lives in its own module.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from surge.analysis.findings.base import SEVERITIES, Finding, Timeline
from surge.analysis.findings.drift import latency_drift, memory_growth, steady_seconds
from surge.analysis.findings.endpoints import endpoint_signatures
from surge.analysis.findings.errors import error_onset
from surge.analysis.findings.hotspots import hot_functions
from surge.analysis.findings.resources import cpu_or_waiting, proc_series
from surge.analysis.findings.saturation import saturation_knee
from surge.metrics.stats import SecondStats

__all__ = ["Finding", "diagnose", "diagnose_run"]

_PROCESS = re.compile(r"process (\d+)")


def _generator(summary: dict[str, Any]) -> Finding | None:
    gen = summary.get("generator") or {}
    if not gen.get("bound"):
        return None
    return Finding(
        kind="generator_bound", severity="critical",
        title="The load generator was the bottleneck, not only the server",
        detail=gen.get("explanation") or "the generator could not keep up",
        evidence=tuple(gen.get("reasons") or ()))


def profiled_cpu_s(sut: list[dict[str, Any]], stacks: dict[str, int]) -> float | None:
    """CPU s over the run of the monitored unit that the profile sampled (matched by the PID
    in py-spy's ``process N`` frames), or of the only unit; None when it cannot be told.

    With the hot functions' shares it estimates what one request of an endpoint costs.
    """
    pids = {int(m.group(1)) for stack in stacks if (m := _PROCESS.match(stack))}
    cpu: dict[str, float] = {}
    unit_pids: dict[str, set[int]] = {}
    for s in sut:
        dt = float(s.get("dt") or 1.0)  # s covered by the sample (a late sampler covers more)
        for label, p in (s.get("procs") or {}).items():
            if p.get("cpu_pct") is None:
                continue
            cpu[label] = cpu.get(label, 0.0) + float(p["cpu_pct"]) * dt / 100.0
            if p.get("pid"):
                unit_pids.setdefault(label, set()).add(int(p["pid"]))
    profiled = [label for label in cpu if unit_pids.get(label, set()) & pids]
    if len(profiled) == 1:
        return cpu[profiled[0]]
    return next(iter(cpu.values())) if len(cpu) == 1 else None


def diagnose(
    summary: dict[str, Any],
    series: list[SecondStats],
    *,
    sut: list[dict[str, Any]] | None = None,
    stacks: dict[str, int] | None = None,
    ncpu: int | None = None,
) -> list[Finding]:
    """All findings for one run, most severe first.

    Args:
        summary: the run's summary (summary.json).
        series: merged per-second stats (series.jsonl), tail seconds included.
        sut: resource samples of the system under test (sut.jsonl), if monitored.
        stacks: py-spy collapsed stacks {stack: samples}, if profiled.
        ncpu: cores of the SUT's machine (default: this machine's).
    """
    tl = Timeline.from_series(series)
    open_model = bool(summary.get("open_model"))
    out: list[Finding] = []
    for f in (_generator(summary), error_onset(tl, series), saturation_knee(tl, open_model=open_model)):
        if f is not None:
            out.append(f)
    hot_finding, hot_names, hot_shares = hot_functions(stacks) if stacks else (None, [], {})
    procs = proc_series(sut or [], ncpu or os.cpu_count() or 1)
    sut_cpu_s = profiled_cpu_s(sut or [], stacks or {})
    cpu_f, cpu_frac = cpu_or_waiting(tl, procs, open_model=open_model, hot=hot_names)
    if cpu_f is not None:
        out.append(cpu_f)
    if hot_finding is not None:
        out.append(hot_finding)
    out.extend(endpoint_signatures(summary, sut_cpu_fraction=cpu_frac, hot=hot_names, hot_shares=hot_shares,
                                   sut_cpu_s=sut_cpu_s))
    drift = latency_drift(tl, open_model=open_model)
    if drift is not None:
        out.append(drift)
    steady = steady_seconds(tl, open_model)
    for label, d in procs.items():
        m = np.isin(d["second"], steady)
        g = memory_growth(d["second"][m], d["rss_mb"][m], label)
        if g is not None:
            out.append(g)
    return sorted(out, key=lambda f: SEVERITIES.index(f.severity))


def diagnose_run(run: Any) -> list[Finding]:
    """Findings for a loaded run (:class:`surge.results.rundata.RunData`), with its SUT samples
    and profile when its run directory has them."""
    from surge.results.sut_files import read_profile, read_sut

    summary = dict(run.summary or {})
    if "open_model" not in summary:
        summary["open_model"] = (run.meta or {}).get("model") in ("constant-arrival-rate", "ramping-arrival-rate")
    sut = read_sut(run.run_dir) if run.run_dir else []
    stacks = read_profile(run.run_dir) if run.run_dir else None
    ncpu = ((run.meta or {}).get("host") or {}).get("cpus")
    return diagnose(summary, run.series, sut=sut, stacks=stacks, ncpu=ncpu)
