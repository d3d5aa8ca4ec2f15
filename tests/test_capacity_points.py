"""Points from per-second run data: plateaus, warm-up, throughput and latency."""

from __future__ import annotations

import pytest

from surge.analysis.capacity.points import plateaus, points_from_csv, points_from_series
from surge.api.errors import UsageError
from surge.metrics.stats import RequestStats, SecondStats

KEY = ("s", "/work", "GET", "2xx")


def second(t: int, vus: int = 0, rate: float = 0.0, n: int = 0, lat_ms: float = 10.0) -> SecondStats:
    rs = RequestStats(count=n)
    rs.latency.record_many([int(lat_ms * 1e6)] * n)
    return SecondStats(second=t, requests={KEY: rs} if n else {}, vus=vus, target_rate=rate)


def stepped(levels: list[tuple[int, int, float]]) -> list[SecondStats]:
    """[(vus, seconds, latency ms)] -> a series at 50 req/s per VU."""
    out, t = [], 0
    for vus, secs, lat in levels:
        for _ in range(secs):
            out.append(second(t, vus=vus, n=50 * vus, lat_ms=lat))
            t += 1
    return out


def test_one_point_per_plateau_with_warmup_dropped():
    series = stepped([(1, 6, 10), (2, 6, 11), (4, 4, 12), (8, 7, 30)])
    # The first 2 s of the 8-VU step are slow (warm-up): they must not count.
    for st in series[16:18]:
        st.requests[KEY].latency.record_many([int(900e6)] * 1000)
    pts = points_from_series(series, by="vus", latency="p95", source="r1")
    assert [p.load for p in pts] == [1, 2, 8]  # the 4-s step is too short
    assert [p.seconds for p in pts] == [4, 4, 5]
    assert [p.throughput for p in pts] == [50, 100, 400]
    assert pts[2].latency_ms == pytest.approx(30, rel=0.02)
    assert pts[0].source == "r1#1"
    assert pts[1].concurrency == pytest.approx(100 * 0.011, rel=0.02)  # Little's law


def test_by_rate_and_zero_levels_skipped():
    series = [second(t, rate=0.0) for t in range(6)]
    series += [second(6 + t, rate=100.0, n=100) for t in range(6)]
    series += [second(12 + t, rate=200.0, n=190, lat_ms=40) for t in range(6)]
    pts = points_from_series(series, by="rate", latency="mean")
    assert [p.load for p in pts] == [100, 200]
    assert pts[1].throughput == 190 and pts[1].latency_ms == pytest.approx(40, rel=0.02)
    assert points_from_series(series, by="vus") == []  # no VUs in an open-model run


def test_gap_in_seconds_splits_a_plateau():
    series = [second(t, vus=3, n=10) for t in range(4)] + [second(t, vus=3, n=10) for t in range(10, 14)]
    assert plateaus(series, "vus") == []


def test_bad_by():
    with pytest.raises(UsageError, match="--by"):
        points_from_series([], by="cpu")


def test_csv_with_other_column_names_and_optional_latency(tmp_path):
    f = tmp_path / "prod.csv"
    f.write_text("concurrency,rps\n1,100\n2,190\n4,350\n")
    pts = points_from_csv(f)
    assert [(p.load, p.throughput, p.latency_ms) for p in pts] == [(1, 100, None), (2, 190, None), (4, 350, None)]


@pytest.mark.parametrize(("text", "words"), [
    ("load,throughput,latency_ms\n1,100,10\n32,1420\n", "line 3: 2 field(s) where the header has 3"),
    ("load,throughput,latency_ms\n1,100,10\n64,1850,88,99\n", "line 3: 4 field(s) where the header has 3"),
    ("load,load,throughput\n1,1,100\n", "column 'load' appears twice"),
])
def test_ragged_rows_and_repeated_columns_are_refused(tmp_path, text, words):
    # QA: they were accepted, a shifted row's values read under the wrong columns.
    f = tmp_path / "points.csv"
    f.write_text(text)
    with pytest.raises(UsageError) as err:
        points_from_csv(f)
    assert words in str(err.value), str(err.value)


def test_an_empty_latency_cell_is_still_fine(tmp_path):
    f = tmp_path / "points.csv"
    f.write_text("load,throughput,latency_ms\n1,100,10\n2,190,\n")
    assert [p.latency_ms for p in points_from_csv(f)] == [10.0, None]
