"""surge report: loading runs (complete, crashed, empty), the run page's sections and
figures, the page's size for a 1-hour run, and the CLI (report, run --report)."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_no_traceback, surge_cli
from surge.analysis.generator import assess
from surge.analysis.summary import build_summary
from surge.api.errors import UsageError
from surge.metrics.aggregate import RunAggregate
from surge.metrics.histogram import Histogram
from surge.metrics.stats import RequestStats, SecondStats
from surge.report import figures as F
from surge.report.html import page
from surge.report.views import compare_runs, render_run_body, report_html
from surge.results.rundata import RunData, load_run_data, read_run_dir
from surge.results.rundir import RunDirWriter

SECTIONS = ("verdict", "key-numbers", "timeseries", "distribution", "requests", "checks", "metadata")
FAKE_PLOTLY = "window.Plotly = {react: function () {}};"


def _stats(rng: np.random.Generator, n: int, median_ms: float, errors: int = 0) -> RequestStats:
    lat = (rng.lognormal(np.log(median_ms), 0.3, n) * 1e6).astype(np.int64)
    st = RequestStats(count=n, errors=Counter({"http_5xx": errors} if errors else {}), bytes_in=100 * n)
    st.latency.record_many(lat)
    st.service.record_many((lat * 0.8).astype(np.int64))
    st.ttfb.record_many((lat * 0.7).astype(np.int64))
    return st


def make_run(path: Path, *, seconds: int = 12, names: tuple[str, ...] = ("/a", "/b"), median_ms: float = 10.0,
             scenario: str = "shop", seed: int = 0, meta_extra: dict | None = None,
             thresholds: list | None = None, finish: bool = True) -> Path:
    """A run directory written by the real writer, with lognormal latencies and a few errors."""
    rng = np.random.default_rng(seed)
    w = RunDirWriter(path)
    w.start({"run_id": path.name, "started_at": "2026-11-23T10:00:00+00:00", "model": "constant-arrival-rate",
             "scenario": {"path": f"/tmp/{scenario}.py", "sha256": "ab" * 32, "names": [scenario]},
             "planned_duration_s": float(seconds), "options": {"rate": 50.0}, "workers": 1,
             "argv": ["surge", "run", f"{scenario}.py"], "thresholds": ["p95<300ms"], **(meta_extra or {})})
    agg = RunAggregate()
    for s in range(seconds):
        st = SecondStats(second=s, vus=5, target_rate=50.0, started=50, iterations=50, cpu=[12.0],
                         loop_lag_ms=[0.5], sched_lag_p99_ms=[1.0], checks={"status 200": [49, 1]})
        for i, name in enumerate(names):
            st.requests[(scenario, name, "GET", "2xx")] = _stats(rng, 50, median_ms * (i + 1))
        st.requests[(scenario, names[0], "GET", "5xx")] = _stats(rng, 1, 1.0, errors=1)
        w.second(st, agg.add(st))
    if finish:
        summary = build_summary(agg, duration_s=float(seconds), generator=assess(agg.rows, True),
                                status="completed", thresholds=thresholds or [])
        w.finish(summary, agg, {"status": "completed", "duration_s": float(seconds)})
    elif w._series is not None:
        w._series.close()
    return path


def _figures(text: str) -> dict[str, dict]:
    """Every chart's id -> figure, parsed back from its HTML-escaped data-figure attribute."""
    out = {}
    for m in re.finditer(r'<div class="surge-chart[^"]*" id="([^"]+)" data-figure="([^"]*)"></div>', text):
        out[m.group(1)] = json.loads(html.unescape(m.group(2)))
    return out


# --------------------------------------------------------------------------- loading


def test_complete_run_renders_every_section(tmp_path):
    run = read_run_dir(make_run(tmp_path / "r1", thresholds=[
        {"threshold": "p95<300ms", "observed_text": "25 ms", "passed": True}]))
    assert run.notes == [] and run.status == "completed"
    body = render_run_body(run)
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in body, sid
    assert 'id="comparison"' not in body  # only with a baseline
    figs = _figures(body)
    assert {"chart-throughput", "chart-latency", "chart-errors", "chart-load", "chart-generator",
            "chart-histogram", "chart-spectrum"} <= set(figs)
    # the key numbers are the exact merged percentiles of the run's histograms
    p99 = run.totals().latency.percentile(99) / 1e6
    assert F.r4(p99) is not None and f"{p99:.3g} ms" in body
    assert "p95&lt;300ms" in body and "PASS" in body
    # the per-request table: one row per name, sortable by numbers
    assert body.count("<td class=\"text\">/a</td>") >= 1 and 'class="sortable"' in body


def test_latency_chart_draws_latency_beside_service_time(tmp_path):
    run = read_run_dir(make_run(tmp_path / "r"))
    fig = _figures(render_run_body(run))["chart-latency"]
    by_name = {t["name"]: t for t in fig["data"]}
    assert by_name["latency p99"]["line"]["dash"] == "solid"
    assert by_name["service p99"]["line"]["dash"] == "dash"
    assert by_name["latency p50"]["x"] == list(range(12))
    # second 3's p99 is exactly that second's merged histogram's p99
    st3 = run.series[3].totals()
    assert by_name["latency p99"]["y"][3] == F.r4(st3.latency.percentile(99) / 1e6)


def test_crashed_run_without_summary_or_histograms_still_renders(tmp_path):
    d = make_run(tmp_path / "crashed", finish=False)
    with open(d / "series.jsonl", "a") as f:
        f.write('{"row": {"t": 12}, "second": 12, "requests": [{"scen')  # cut short mid-line
    run = read_run_dir(d)
    assert run.summary is None and run.status == "incomplete"
    assert len(run.series) == 12
    assert any("summary.json is missing" in n for n in run.notes)
    assert any("1 line(s) of series.jsonl" in n for n in run.notes)
    assert any("histograms.json is missing" in n for n in run.notes)
    # histograms rebuilt by merging the seconds: the same counts as the series
    assert sum(st.count for st in run.histograms.values()) == sum(s.totals().count for s in run.series)
    body = render_run_body(run)
    assert "did not finish" in body and "thresholds were not evaluated" in body
    assert "chart-spectrum" in body and "status 200" in body  # checks summed from the series


def test_run_with_zero_requests_renders_a_clear_page(tmp_path):
    d = tmp_path / "empty"
    w = RunDirWriter(d)
    w.start({"run_id": "empty", "started_at": "2026-11-23T10:00:00+00:00", "planned_duration_s": 2.0})
    agg = RunAggregate()
    for s in range(2):
        st = SecondStats(second=s, iterations=5, iteration_errors=Counter({"AttributeError": 5}), cpu=[1.0])
        w.second(st, agg.add(st))
    w.finish(build_summary(agg, duration_s=2.0, generator=assess(agg.rows, False), status="completed",
                           iteration_tracebacks={"AttributeError": "Traceback ...\nAttributeError: x"}),
             agg, {"status": "completed"})
    body = render_run_body(read_run_dir(d))
    assert "no request completed in this run" in body
    assert "no requests: no distribution" in body
    assert "AttributeError" in body and "first AttributeError traceback" in body
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in body


def test_series_only_directory_and_unreadable_json(tmp_path):
    d = make_run(tmp_path / "r")
    (d / "meta.json").unlink()
    (d / "histograms.json").write_text("{not json")
    run = read_run_dir(d)
    assert run.run_id == "r" and run.meta == {}
    assert any("histograms.json is unreadable" in n for n in run.notes)
    assert "meta.json is missing: no run metadata" in run.notes
    assert sum(st.count for st in run.histograms.values()) > 0
    assert '<section id="metadata">' in render_run_body(run)


def test_verdict_says_generator_bound_interrupted_and_dropped(tmp_path):
    run = read_run_dir(make_run(tmp_path / "r"))
    run.summary["status"] = "interrupted"
    run.summary["generator"] = {"bound": True, "explanation": "GENERATOR-BOUND: cpu above 90 %"}
    run.summary["iterations"]["dropped"] = 17
    run.summary["thresholds"] = [{"threshold": "p95<1ms", "observed_text": "25 ms", "passed": False}]
    body = render_run_body(run)
    verdict = body[body.index('<section id="verdict">'):body.index('<section id="key-numbers">')]
    assert "GENERATOR-BOUND: cpu above 90 %" in verdict
    assert "interrupted (Ctrl-C)" in verdict and "17 iterations were dropped" in verdict
    assert "FAIL" in verdict and "threshold p95&lt;1ms failed" in verdict


def test_comparison_chart_keeps_the_worst_rows_when_there_are_many():
    rows = [{"name": f"GET /{i}", "metric": "p50", "ratio": 1.0 + i / 1000, "ci_low": 0.9, "ci_high": 1.2,
             "verdict": "SAME"} for i in range(200)]
    rows[150]["verdict"] = "REGRESSED"
    fig = F.comparison_figure(rows, 0.05)
    labels = fig["data"][0]["y"]
    assert len(labels) == F.MAX_COMPARISON_ROWS and "GET /150 · p50" in labels and "GET /199 · p50" in labels


def test_not_a_run_directory_and_unknown_id_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="not a run directory"):
        load_run_data(str(tmp_path))
    with pytest.raises(UsageError, match="no run store is open"):
        load_run_data("20990101-nope", None)


def test_load_from_store_matches_the_directory(tmp_path):
    from surge.results.store import Store

    d = make_run(tmp_path / "20261123-100000-shop")
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        run_id = store.record_run(d, tags={"env": "staging"})
        run = load_run_data(run_id[:12], store)
        with pytest.raises(UsageError, match="no run"):
            load_run_data("19990101", store)
    finally:
        store.close()
    direct = read_run_dir(d)
    assert run.run_id == run_id and run.tags == {"env": "staging"} and run.run_dir == d.resolve()
    assert len(run.series) == len(direct.series)
    assert run.totals().latency.percentile(99) == direct.totals().latency.percentile(99)
    assert "env=staging" in render_run_body(run)


# --------------------------------------------------------------------------- figures


def test_spectrum_axis_is_one_over_one_minus_q():
    h = Histogram()
    h.record_many(np.arange(1, 1001) * 1_000_000)  # 1..1000 ms, one each
    x, y = F.spectrum_xy(h)
    assert x[0] == 1.0 and y[0] == 1.0
    # each point (x, y): y is the value at percentile q = 1 - 1/x (within the histogram's 0.4 %)
    vals = np.arange(1, 1001)
    for xi, yi in list(zip(x, y, strict=True))[1:-1]:
        q = 1 - 1 / xi
        assert np.mean(vals <= yi * 1.004) >= q - 0.002, (xi, yi)
        assert np.mean(vals < yi / 1.004) < q + 0.002, (xi, yi)
    assert x[-1] == pytest.approx(1000, rel=0.01) and y[-1] == 1000.0  # the max, exact
    fig = F.spectrum_figure(RequestStats(count=1000, latency=h, service=h))
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert fig["layout"]["xaxis"]["ticktext"][:4] == ["0%", "50%", "90%", "99%"]


def test_long_runs_are_bucketed_with_exact_bucket_percentiles():
    rng = np.random.default_rng(1)
    pieces = [_stats(rng, 20, 5.0 + k) for k in range(10)]
    series = [SecondStats(second=s, requests={("x", "/a", "GET", "2xx"): pieces[s % 10]}) for s in range(3600)]
    tl = F.timeline(series)
    assert tl.step == 2 and len(tl.t) == 1800 and tl.t[:3] == [0, 2, 4]
    merged = RequestStats().merge(pieces[2]).merge(pieces[3])
    assert tl.lat[99][1] == F.r4(merged.latency.percentile(99) / 1e6)
    assert tl.rps[1] == 20.0


def test_figure_json_has_no_nan_and_is_attribute_safe():
    fig = {"data": [{"y": [F.r4(float("nan")), F.r4(1.23456789)], "name": "a\"b</script>"}]}
    attr = F.figure_attr(fig)
    assert '"' not in attr and "<" not in attr
    assert json.loads(html.unescape(attr)) == {"data": [{"y": [None, 1.235], "name": "a\"b</script>"}]}


# --------------------------------------------------------------------------- comparison


def test_comparison_section_with_verdicts_and_ci_chart(tmp_path):
    base = read_run_dir(make_run(tmp_path / "base", seconds=20, median_ms=10.0, seed=1))
    slow = read_run_dir(make_run(tmp_path / "slow", seconds=20, median_ms=14.0, seed=2))
    cmp = compare_runs(base, slow)
    rows = {(r["name"], r["metric"]): r for r in cmp["rows"]}
    assert rows[("GET /a", "p50")]["verdict"] == "REGRESSED"
    body = render_run_body(slow, base, comparison=cmp)
    assert '<section id="comparison">' in body and "REGRESSED" in body
    figs = _figures(body)
    ci = figs["chart-comparison"]
    trace = ci["data"][0]
    i = trace["y"].index("GET /a · p50")
    r = rows[("GET /a", "p50")]
    assert trace["x"][i] == F.r4((r["ratio"] - 1) * 100)
    assert trace["error_x"]["array"][i] == F.r4((r["ci_high"] - r["ratio"]) * 100)
    band = ci["layout"]["shapes"][0]
    assert (band["x0"], band["x1"]) == (-5.0, 5.0)
    # the baseline is overlaid on the time series and on the spectrum
    assert any(t["name"] == "baseline latency p99" for t in figs["chart-latency"]["data"])
    assert any(t["name"] == "baseline latency" for t in figs["chart-spectrum"]["data"])
    assert "FAIL" in body  # a regression fails the gate verdict


def _row(name: str, metric: str, verdict: str, ratio: float) -> dict:
    return {"name": name, "metric": metric, "a": 100.0, "b": 100.0 * ratio, "ratio": ratio,
            "ci_low": ratio * 0.9, "ci_high": ratio * 1.1, "p_value": 0.01, "p_adjusted": 0.02,
            "verdict": verdict, "reason": f"{verdict.lower()} because", "higher_is_worse": metric != "throughput"}


def _verdict_html(body: str) -> str:
    return body[body.index('<section id="verdict">'):body.index("</section>")]


@pytest.mark.parametrize("verdicts, badge, overall", [
    # a big improvement with inconclusive throughput rows: not hidden behind WARN
    ({"IMPROVED": 2, "SAME": 1, "INCONCLUSIVE": 3}, "PASS · improved", "IMPROVED"),
    ({"SAME": 2, "INCONCLUSIVE": 1}, "WARN", "INCONCLUSIVE"),
    ({"SAME": 3}, "PASS", "SAME"),
    ({"REGRESSED": 1, "IMPROVED": 4, "INCONCLUSIVE": 2}, "FAIL", "REGRESSED"),
])
def test_verdict_shows_counts_and_regressions_set_the_tone(tmp_path, verdicts, badge, overall):
    base = read_run_dir(make_run(tmp_path / "base", seconds=6))
    run = read_run_dir(make_run(tmp_path / "run", seconds=6, seed=1))
    rows = [_row(f"GET /e{v}{i}", "p50" if v != "INCONCLUSIVE" else "throughput", v,
                 {"REGRESSED": 2.0, "IMPROVED": 0.2}.get(v, 1.0))
            for v, n in verdicts.items() for i in range(n)]
    cmp = {"a": {"label": "base"}, "b": {"label": "run"}, "rows": rows, "worst": "INCONCLUSIVE",
           "delta": 0.05, "method": "m", "warnings": [], "only_in_a": [], "only_in_b": []}
    v = _verdict_html(render_run_body(run, base, comparison=cmp))
    css = {"PASS · improved": "pass", "PASS": "pass", "WARN": "warn", "FAIL": "fail"}[badge]
    assert f'<span class="badge {css}">{html.escape(badge)}</span>' in v
    c = {k: verdicts.get(k, 0) for k in ("REGRESSED", "IMPROVED", "SAME", "INCONCLUSIVE")}
    tally = (f"{c['REGRESSED']} regressed · {c['IMPROVED']} improved · {c['SAME']} same · "
             f"{c['INCONCLUSIVE']} inconclusive")
    assert html.escape(tally) in v
    assert f'<span class="badge {overall}">{overall}</span>' in v
    assert "worst verdict" not in v


def test_compare_runs_counts_rows_per_verdict(tmp_path):
    base = read_run_dir(make_run(tmp_path / "base", seconds=12, median_ms=10.0, seed=1))
    fast = read_run_dir(make_run(tmp_path / "fast", seconds=12, median_ms=5.0, seed=2))
    cmp = compare_runs(base, fast)
    assert sum(cmp["counts"].values()) == len(cmp["rows"]) and cmp["counts"]["IMPROVED"] >= 2
    assert cmp["counts"]["REGRESSED"] == 0


# --------------------------------------------------------------------------- page and size


def test_page_inlines_compressed_plotly_or_links_the_dashboard_asset():
    import base64
    import gzip

    doc = page("t <x>", "<p>body</p>", plotly_js="/*plotly*/ var x = '</script>';")
    assert doc.startswith("<!doctype html>") and "<title>t &lt;x&gt;</title>" in doc
    m = re.search(r'<script type="application/octet-stream" id="surge-plotly-gz">([^<]*)</script>', doc)
    assert gzip.decompress(base64.b64decode(m.group(1))).decode() == "/*plotly*/ var x = '</script>';"
    assert "Plotly.react" in doc and "DecompressionStream" in doc  # surge.js, inline
    dash = page("t", "<p>b</p>", plotly_js=None)
    assert '<script src="/assets/plotly.min.js"></script>' in dash and 'id="surge-plotly-gz"' not in dash


def test_one_hour_run_report_stays_under_5_mb():
    """3600 s, 8 request names, errors of 3 types: the real plotly.js inlined."""
    rng = np.random.default_rng(2)
    pieces = [_stats(rng, 30, 4.0 + k % 7, errors=k % 3) for k in range(40)]
    kinds = ["http_5xx", "timeout", "reset"]
    for k, p in enumerate(pieces):
        p.errors = Counter({kinds[k % 3]: p.error_count}) if p.error_count else Counter()
    names = [f"/api/endpoint/{i}" for i in range(8)]
    series = []
    for s in range(3600):
        reqs = {("shop", n, "GET", "2xx"): pieces[(s + 3 * i) % 40] for i, n in enumerate(names)}
        series.append(SecondStats(second=s, requests=reqs, vus=100, target_rate=240.0, started=240,
                                  cpu=[35.0, 40.0], loop_lag_ms=[1.0, 2.0], sched_lag_p99_ms=[0.5, 0.7]))
    agg = RunAggregate()
    for st in series:
        agg.add_late(st)
    run = RunData("one-hour", {"planned_duration_s": 3600.0}, None, series, agg.by_key, None)
    text = report_html(run)
    size = len(text.encode())
    assert size < 5_000_000, size
    figs = _figures(text)
    assert len(figs["chart-latency"]["data"][0]["x"]) == 1800


# --------------------------------------------------------------------------- CLI


def test_cli_report_of_a_run_directory(tmp_path):
    d = make_run(tmp_path / "r")
    base = make_run(tmp_path / "b", seed=3)
    out = tmp_path / "out" / "report.html"
    res = surge_cli("report", str(d), "--baseline", str(base), "-o", str(out))
    assert res.rc == 0, res.stderr
    assert_no_traceback(res.stderr)
    assert f"report: {out}" in res.stdout
    text = out.read_text()
    assert '<section id="comparison">' in text and "surge-plotly-gz" in text


def test_cli_report_errors_are_one_line(tmp_path):
    res = surge_cli("report", str(tmp_path))
    assert res.rc == 2 and "is not a run directory" in res.stderr
    assert_no_traceback(res.stderr)
    res = surge_cli("report", "20990101-no-such-run", "-o", str(tmp_path / "x.html"))
    assert res.rc == 2 and "no run" in res.stderr
    assert_no_traceback(res.stderr)


def test_run_with_report_writes_it_into_the_run_directory(test_server, scenario_file, tmp_path):
    scen = scenario_file("""
        from surge import scenario

        @scenario
        async def one(vu):
            await vu.get("/")
    """)
    res = surge_cli("run", str(scen), "-b", test_server, "--iterations", "20", "-w", "1", "-q",
                    "--out", str(tmp_path / "runs"), "--no-store", "--report")
    assert res.rc == 0, res.stderr
    assert_no_traceback(res.stderr)
    run_dir = next((tmp_path / "runs").iterdir())
    assert f"report: {run_dir / 'report.html'}" in res.stderr
    text = (run_dir / "report.html").read_text()
    assert "<td class=\"text\">/</td>" in text
    res = surge_cli("run", str(scen), "-b", test_server, "--iterations", "5", "--no-save", "--report")
    assert res.rc == 2 and "--report needs the run directory" in res.stderr


def test_comparison_axis_is_not_stretched_by_one_huge_interval():
    from surge.report.figures import comparison_figure

    rows = [{"name": f"/n{i}", "metric": "p50", "ratio": 1 + 0.02 * i, "ci_low": 0.98 + 0.02 * i,
             "ci_high": 1.02 + 0.02 * i, "verdict": "SAME"} for i in range(12)]
    rows.append({"name": "/rec", "metric": "p99", "ratio": 1.4, "ci_low": 0.3, "ci_high": 67.0,
                 "verdict": "INCONCLUSIVE"})
    lo, hi = comparison_figure(rows, 0.05)["layout"]["xaxis"]["range"]
    assert lo >= -100 and 40 < hi < 100  # every estimate visible, the +6,600 % bar runs off the edge


def test_cli_report_takes_the_gates_per_metric_delta(tmp_path):
    d = make_run(tmp_path / "r")
    base = make_run(tmp_path / "b", seed=3)
    out = tmp_path / "cmp.html"
    res = surge_cli("report", str(d), "--baseline", str(base), "--metric-delta", "p50=40%", "--warmup", "1",
                    "-o", str(out))
    assert res.rc == 0, res.stderr
    bad = surge_cli("report", str(d), "--baseline", str(base), "--metric-delta", "nonsense", "-o", str(out))
    assert bad.rc == 2 and "--metric-delta" in bad.stderr
    assert_no_traceback(bad.stderr)


def test_hypervisor_steal_is_a_callout_when_the_generator_kept_up(tmp_path):
    run = read_run_dir(make_run(tmp_path / "r"))
    run.summary["generator"] = {"bound": False, "explanation": "generator kept up: the figures describe the "
                                "server; the hypervisor took up to 7.5 % of this host's CPU time"}
    assert 'class="callout ">generator kept up: the figures describe the server; the hypervisor' in render_run_body(run)
    run.summary["generator"] = {"bound": False, "explanation": "generator kept up: the figures describe the server"}
    assert "generator kept up" not in render_run_body(run)  # nothing to say: no callout
