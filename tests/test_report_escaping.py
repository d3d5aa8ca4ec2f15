"""The report never lets text from a run become markup: request names, URLs, error
labels, tags, scenario names, metadata, thresholds, findings and profiles are escaped,
and chart JSON survives the attribute escaping intact."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from html.parser import HTMLParser

import numpy as np

from surge.analysis.generator import assess
from surge.analysis.summary import build_summary
from surge.metrics.aggregate import RunAggregate
from surge.metrics.stats import RequestStats, SecondStats
from surge.report.views import render_run_body, report_html
from surge.results.rundata import read_run_dir
from surge.results.rundir import RunDirWriter

SCRIPT = "<script>alert(1)</script>"
IMG = "\"'><img src=x onerror=alert(1)>"
EVIL = SCRIPT + IMG
FAKE_PLOTLY = "window.Plotly = {react: function () {}};"


def _evil_run(path):
    rng = np.random.default_rng(0)
    w = RunDirWriter(path)
    w.start({"run_id": path.name, "started_at": "2026-11-23T10:00:00+00:00", "model": "constant-vus",
             "scenario": {"path": f"/tmp/{EVIL}.py", "sha256": EVIL, "names": [EVIL]},
             "hit": None, "argv": ["surge", "run", EVIL], "options": {"base_url": f"http://x/{EVIL}"},
             "host": {"hostname": EVIL}, "tags": {EVIL: EVIL}, "custom": EVIL, "planned_duration_s": 6.0})
    agg = RunAggregate()
    for s in range(6):
        st = SecondStats(second=s, vus=2, checks={EVIL: [3, 1]}, iteration_errors=Counter({EVIL: 1}), cpu=[5.0])
        for name in (EVIL, f"http://127.0.0.1/{EVIL}?q={IMG}"):
            lat = (rng.lognormal(np.log(5.0), 0.3, 20) * 1e6).astype(np.int64)
            rs = RequestStats(count=20, errors=Counter({EVIL: 2}))
            rs.latency.record_many(lat)
            rs.service.record_many(lat)
            st.requests[(EVIL, name, EVIL, "5xx")] = rs
        w.second(st, agg.add(st))
    summary = build_summary(
        agg, duration_s=6.0, generator=assess(agg.rows, False), status="completed",
        thresholds=[{"threshold": EVIL, "observed_text": EVIL, "passed": False}], warnings=[EVIL],
        iteration_tracebacks={EVIL: EVIL})
    summary["error"] = EVIL
    summary["findings"] = [{"title": EVIL, "detail": EVIL, "severity": EVIL, "evidence": [EVIL],
                            "t_range": [1, 3]}]
    w.finish(summary, agg, {"status": "completed"})
    (path / "profile.collapsed").write_text(f"main;{EVIL} 5\nmain;other 3\n")
    (path / "sut.jsonl").write_text(json.dumps({"t": 1.0, "dt": 1.0, "procs": {EVIL: {"cpu_pct": 10.0}}}) + "\n")
    return path


class _Tags(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_text.append(data)


def _check(doc: str) -> _Tags:
    p = _Tags()
    p.feed(doc)
    # no tag the run's text could have produced: no <img>, no script but ours
    assert not [t for t, _ in p.tags if t == "img"]
    scripts = [a for t, a in p.tags if t == "script"]
    assert all(a.get("type") in (None, "application/octet-stream") for a in scripts)
    assert not any("alert(1)" in s for s in p.script_text)
    # no attribute handler anywhere (onerror=..., onclick=...)
    assert not [(t, k) for t, a in p.tags for k in a if k.startswith("on")]
    # the raw text never appears unescaped
    assert "<script>alert" not in doc and "<img" not in doc
    return p


def test_run_text_is_escaped_everywhere(tmp_path):
    run = read_run_dir(_evil_run(tmp_path / "evil"))
    body = render_run_body(run)
    p = _check(body)
    # the text is there, visibly, as text
    assert html.escape(EVIL) in body
    for sid in ("verdict", "findings", "requests", "checks", "sut", "profile", "metadata"):
        assert f'<section id="{sid}">' in body, sid
    # every chart's JSON parses back, with the names intact
    figs = {a["id"]: json.loads(a["data-figure"]) for t, a in p.tags if "surge-chart" in (a.get("class") or "")}
    assert figs and "chart-spectrum" in figs
    assert EVIL in [tr["name"] for tr in figs["chart-errors"]["data"]]
    assert any(SCRIPT in json.dumps(f) for k, f in figs.items() if k.startswith("chart-flame"))


def test_whole_page_and_comparison_are_escaped(tmp_path):
    a = read_run_dir(_evil_run(tmp_path / "a"))
    b = read_run_dir(_evil_run(tmp_path / "b"))
    doc = report_html(b, a, plotly_js=FAKE_PLOTLY)
    p = _check(doc)
    assert '<section id="comparison">' in doc
    fig = next(json.loads(a["data-figure"]) for t, a in p.tags if a.get("id") == "chart-comparison")
    assert any(y.startswith(f"{EVIL} {EVIL}") for y in fig["data"][0]["y"])  # "METHOD name · metric"
    # the figure attribute holds no raw quote or angle bracket
    for m in re.finditer(r'data-figure="([^"]*)"', doc):
        assert "<" not in m.group(1) and ">" not in m.group(1)
