"""The generator self-check: when is a run generator-bound, and what it says about VM steal."""

from __future__ import annotations

from surge.analysis.generator import STEAL_NOTE, assess


def _rows(n: int, **cols) -> list[dict]:
    return [{k: (v[i] if isinstance(v, list) else v) for k, v in cols.items()} for i in range(n)]


def test_a_quiet_run_is_not_bound_and_reports_the_typical_second():
    rows = _rows(5, cpu_max=40.0, sched_lag_p99_ms_max=[0.4, 0.5, 0.6, 3.0, 0.5], steal_max=0.1)
    h = assess(rows, open_model=True)
    assert not h.bound
    assert h.sched_lag_p99_ms_max == 3.0
    assert h.sched_lag_p99_ms_median == 0.5  # one bad second does not move the typical one
    assert h.steal_note() is None
    assert h.explain() == "generator kept up: the figures describe the server"


def test_steal_is_reported_even_when_the_generator_kept_up():
    rows = _rows(4, cpu_max=30.0, sched_lag_p99_ms_max=[0.5, 4.0, 0.6, 0.5], steal_max=[0.0, 7.5, 0.2, 3.0])
    h = assess(rows, open_model=True)
    assert not h.bound
    assert h.steal_max == 7.5
    assert h.steal_seconds == 2  # 7.5 and 3.0 are above STEAL_NOTE
    assert 3.0 > STEAL_NOTE
    assert "hypervisor took up to 7.5 %" in h.explain()
    assert "2 of 4 s" in h.explain()


def test_sustained_lag_makes_an_open_run_generator_bound_and_keeps_the_steal_note():
    rows = _rows(10, cpu_max=50.0, sched_lag_p99_ms_max=[20.0] * 3 + [0.5] * 7, steal_max=[9.0] * 3 + [0.0] * 7)
    h = assess(rows, open_model=True)
    assert h.bound and h.lag_seconds == 3
    assert h.explain().startswith("GENERATOR-BOUND")
    assert "hypervisor" in h.explain()


def test_closed_models_ignore_schedule_lag_and_missing_steal_is_none():
    rows = _rows(10, cpu_max=50.0, sched_lag_p99_ms_max=20.0)
    h = assess(rows, open_model=False)
    assert not h.bound
    assert h.steal_max is None and h.steal_seconds == 0
