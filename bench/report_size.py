"""Size and build time of `surge report` for a long run, measured on a real run directory.

Writes a synthetic run directory with the real writer (default: 3600 s, 8 request
names, 3 error types, ~240 req/s), reads it back as `surge report` does, renders the
report and prints the size of each part. Nothing is timed in the test suite; the
< 5 MB assertion lives in tests/test_report.py.

    .venv/bin/python bench/report_size.py [--seconds 3600] [--names 8] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from surge.analysis.generator import assess
from surge.analysis.summary import build_summary
from surge.metrics.aggregate import RunAggregate
from surge.metrics.stats import RequestStats, SecondStats
from surge.report.views import report_html
from surge.results.rundata import read_run_dir
from surge.results.rundir import RunDirWriter

KINDS = ("http_5xx", "timeout", "reset")


def _piece(rng: np.random.Generator, n: int, median_ms: float, errors: int, kind: str) -> RequestStats:
    lat = (rng.lognormal(np.log(median_ms), 0.4, n) * 1e6).astype(np.int64)
    st = RequestStats(count=n, errors=Counter({kind: errors} if errors else {}), bytes_in=512 * n)
    st.latency.record_many(lat)
    st.service.record_many((lat * 0.85).astype(np.int64))
    st.ttfb.record_many((lat * 0.7).astype(np.int64))
    return st


def write_run(path: Path, seconds: int, names: int) -> None:
    rng = np.random.default_rng(0)
    # a pool of distinct seconds, reused: the file sizes are those of a real run
    pool = [_piece(rng, 30, 4.0 + (k % 11), k % 4, KINDS[k % 3]) for k in range(64)]
    w = RunDirWriter(path)
    w.start({"run_id": path.name, "started_at": "2026-11-23T10:00:00+00:00", "model": "constant-arrival-rate",
             "planned_duration_s": float(seconds), "scenario": {"path": "bench.py", "names": ["shop"]}})
    agg = RunAggregate()
    for s in range(seconds):
        st = SecondStats(second=s, vus=100, target_rate=240.0, started=240, iterations=240, cpu=[35.0, 41.0],
                         loop_lag_ms=[1.0, 1.5], sched_lag_p99_ms=[0.4, 0.6], checks={"status 200": [238, 2]})
        for i in range(names):
            st.requests[("shop", f"/api/endpoint/{i}", "GET", "2xx")] = pool[(s * 7 + i * 13) % len(pool)]
        w.second(st, agg.add(st))
    summary = build_summary(agg, duration_s=float(seconds), generator=assess(agg.rows, True), status="completed")
    w.finish(summary, agg, {"status": "completed", "duration_s": float(seconds)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=3600)
    ap.add_argument("--names", type=int, default=8)
    ap.add_argument("--keep", type=Path, help="write the run directory and report here and keep them")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="surge-report-size-"))
    run_dir = root / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    try:
        t0 = time.perf_counter()
        write_run(run_dir, args.seconds, args.names)
        t1 = time.perf_counter()
        run = read_run_dir(run_dir)
        t2 = time.perf_counter()
        text = report_html(run)
        t3 = time.perf_counter()
        (root / "report.html").write_text(text)
        series_mb = (run_dir / "series.jsonl").stat().st_size / 1e6
        plotly = re.search(r'id="surge-plotly-gz">([^<]*)<', text)
        plotly_b = len(plotly.group(1)) if plotly else 0
        figs_b = sum(len(m) for m in re.findall(r'data-figure="[^"]*"', text))
        total = len(text.encode())
        print(f"run: {args.seconds} s x {args.names} names; series.jsonl {series_mb:.1f} MB")
        print(f"report: {total / 1e6:.2f} MB = plotly.js (gzip+base64) {plotly_b / 1e6:.2f} MB "
              f"+ figures {figs_b / 1e6:.2f} MB + rest {(total - plotly_b - figs_b) / 1e6:.2f} MB")
        print(f"time: write run {t1 - t0:.1f} s, read it {t2 - t1:.1f} s, render {t3 - t2:.1f} s")
        print(f"under 5 MB: {'yes' if total < 5_000_000 else 'NO'}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
