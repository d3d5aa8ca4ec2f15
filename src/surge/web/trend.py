"""The data of the trend page: one metric per request name across runs, with change points.

Same source and method as ``surge history``: ``Store.metric_history`` for the
values, :func:`surge.analysis.changepoints.detect` for the shifts; this module
only picks which names to show and caps the history so a page stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from surge.analysis.changepoints import ChangePoint, ChangePointConfig, detect
from surge.results.store import RunRecord, Store

TREND_METRICS = ("p50", "p95", "p99", "rps", "error_rate")
MAX_RUNS = 300  # latest runs per series: detection is O(n^2) per segment
MAX_NAMES = 8  # series drawn when no name is picked
LOWER_IS_BETTER = {"p50": True, "p95": True, "p99": True, "error_rate": True, "rps": False}
UNITS = {"p50": "ms", "p95": "ms", "p99": "ms", "rps": "req/s", "error_rate": "fraction"}


@dataclass(frozen=True)
class TrendSeries:
    """One request name's history: ``points`` oldest first, change points indexing into it."""

    name: str | None  # None: all requests together
    metric: str
    points: list[tuple[RunRecord, float]]
    change_points: list[ChangePoint]

    @property
    def label(self) -> str:
        return self.name if self.name is not None else "all requests"

    def is_regression(self, cp: ChangePoint) -> bool:
        """Whether a shift goes the bad way for this metric (up for latency, down for throughput)."""
        return (cp.direction == "up") == LOWER_IS_BETTER.get(self.metric, True)


def request_names(store: Store, *, scenario: str | None, branch: str | None, limit: int = 200) -> list[str]:
    """Request names of the latest runs, most frequent first (the choices of the name picker)."""
    counts: dict[str, int] = {}
    for r in store.list_runs(scenario=scenario, branch=branch, limit=limit):
        for n in r.names:
            counts[n] = counts.get(n, 0) + 1
    return sorted(counts, key=lambda n: (-counts[n], n))


def series_for(store: Store, *, name: str | None, metric: str, scenario: str | None, branch: str | None,
               since: datetime | None, min_segment: int = 3) -> TrendSeries:
    """The history of ``metric`` for ``name`` (None: all requests), with its change points."""
    points = store.metric_history(name=name, metric=metric, branch=branch, since=since,
                                  scenario=scenario)[-MAX_RUNS:]
    values = [v for _, v in points]
    cps = detect(values, ChangePointConfig(min_segment=min_segment)) if len(values) >= 2 * min_segment else []
    return TrendSeries(name, metric, points, cps)


def scenario_keys(store: Store, text: str | None, *, limit: int = 500) -> list[str]:
    """Scenario keys of the latest runs that contain ``text`` (all of them for None), most recent first."""
    out: list[str] = []
    for r in store.list_runs(scenario=text, limit=limit):
        if r.scenario not in out:
            out.append(r.scenario)
    return out


def resolve_scenario(store: Store, text: str | None) -> str | None:
    """The scenario filter as the runs list reads it (a part of the key: ``checkout``), made exact
    when it names one scenario; otherwise as given (``metric_history`` matches keys and their ends)."""
    if not text:
        return None
    keys = scenario_keys(store, text)
    return keys[0] if len(keys) == 1 else text


def trend(store: Store, *, metric: str, name: str | None, scenario: str | None, branch: str | None,
          since: datetime | None) -> list[TrendSeries]:
    """The series of the trend page: the picked name, or all requests plus the most common names."""
    scenario = resolve_scenario(store, scenario)
    kw: dict[str, Any] = {"metric": metric, "scenario": scenario, "branch": branch, "since": since}
    if name:
        return [series_for(store, name=name, **kw)]
    out = [series_for(store, name=None, **kw)]
    for n in request_names(store, scenario=scenario, branch=branch)[:MAX_NAMES]:
        s = series_for(store, name=n, **kw)
        if s.points:
            out.append(s)
    return out
