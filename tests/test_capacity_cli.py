"""`surge capacity` end to end: from a CSV, from a real stepped run, and bad input."""

from __future__ import annotations

import pytest

from conftest import assert_no_traceback, error_lines, surge_cli

SPEC_CSV = "load,throughput,latency_ms\n1,64.9,10\n18,995.9,12\n36,1652.4,15\n72,1853.2,30\n108,1828.9,55\n144,1775.0,80\n216,1702.2,120\n"

SCEN = """
async def a(client):
    await client.get("/delay/20", name="/work")
"""


def test_csv_fit_sizing_growth_json(tmp_path):
    f = tmp_path / "spec.csv"
    f.write_text(SPEC_CSV)
    res = surge_cli("capacity", f, "--json", "--target-rate", "5000", "--slo", "300ms", "--growth", "5%",
                    "--peak-load", "1000", "--instances", "2", "--headroom", "20%")
    assert res.rc == 0, res
    d = res.data
    assert len(d["points"]) == 7
    assert d["usl"]["sigma"]["value"] == pytest.approx(0.0277285, rel=0.02)
    assert d["usl"]["limit"] == "coherency"
    assert d["knee"] is not None and d["knee"]["load"] in (18.0, 36.0, 72.0)
    assert d["per_instance_capacity"] == pytest.approx(1853.2)
    assert d["sizing"]["instances"] >= 3 and d["sizing"]["p_within_slo"] >= 0.95
    g = d["growth"]
    assert g["capacity"] == pytest.approx(1853.2 * 2 * 0.8)
    assert g["months_left"] > 0 and g["runs_out"]


def test_csv_text_and_plot(tmp_path):
    f = tmp_path / "spec.csv"
    f.write_text(SPEC_CSV)
    out = tmp_path / "cap.html"
    res = surge_cli("capacity", f, "--plot", out)
    assert res.rc == 0, res
    assert "coherency-limited" in res.stdout and "knee:" in res.stdout
    page = out.read_text()
    assert "Plotly.newPlot" in page and "USL fit" in page and "<script src" not in page  # plotly.js inlined


# The tutorial's four-step run (20261123-040916-shop): throughput flattens, p95 52 ms -> ~2 s.
SHOP_CSV = "load,throughput,latency_ms\n100,235.5,52\n300,610.8,75\n600,686.3,880\n900,785.6,2050\n"


def test_saturated_run_is_not_called_near_linear(tmp_path):
    f = tmp_path / "shop.csv"
    f.write_text(SHOP_CSV)
    res = surge_cli("capacity", f)
    assert res.rc == 0, res
    out = " ".join(res.stdout.split())  # undo rich's wrapping
    assert "near-linear" not in out
    assert ("too few points to separate contention from coherency: efficiency fell to 37% at 900 "
            "(throughput per unit of load, vs load 100); measure more load levels") in out
    assert "knee: latency starts to climb at load 300" in out
    assert "plan by the knee: stay below load 300" in out
    js = surge_cli("capacity", f, "--json")
    assert js.rc == 0, js
    assert js.data["usl"]["limit"] == "unresolved" and js.data["knee"]["load"] == 300.0
    assert js.data["usl"]["efficiency"] == {"value": pytest.approx(0.3707, abs=1e-4), "load": 900.0,
                                            "base_load": 100.0}


@pytest.mark.parametrize("content,msg", [
    ("", "empty"),
    ("users,latency_ms\n1,10\n2,11\n4,12\n", "no throughput column"),
    ("load,throughput\n1,10\n2,abc\n4,30\n", "line 3: throughput 'abc' is not a number"),
    ("load,throughput\n4,10\n2,20\n1,30\n", "not in increasing order"),
    ("load,throughput\n1,10\n2,20\n", "distinct loads"),
])
def test_bad_csv_is_one_clear_line(tmp_path, content, msg):
    f = tmp_path / "m.csv"
    f.write_text(content)
    res = surge_cli("capacity", f)
    assert res.rc == 2, res
    assert_no_traceback(res.stderr)
    lines = error_lines(res.stderr)
    assert len(lines) == 1 and msg in lines[0], res.stderr


def test_unknown_run_and_missing_file(tmp_path):
    res = surge_cli("capacity", "nosuchrun")
    assert res.rc == 2 and "nosuchrun" in res.stderr
    assert_no_traceback(res.stderr)
    res = surge_cli("capacity", tmp_path / "absent.csv")
    assert res.rc == 2 and "no such file" in res.stderr
    assert_no_traceback(res.stderr)


def test_sizing_needs_slo(tmp_path):
    f = tmp_path / "spec.csv"
    f.write_text(SPEC_CSV)
    res = surge_cli("capacity", f, "--target-rate", "100")
    assert res.rc == 2 and "--slo" in res.stderr
    res = surge_cli("capacity", f, "--growth", "5%")
    assert res.rc == 2 and "--peak-load" in res.stderr


def test_from_a_stepped_run(test_server, scenario_file, tmp_path):
    """One closed-model run with three VU steps gives three points and a fit."""
    scen = scenario_file(SCEN)
    res = surge_cli("run", scen, "--base-url", test_server, "--stages", "0s:1,6s:1,0s:2,6s:2,0s:4,6s:4",
                    "-w", "1", "--out", tmp_path / "runs", "--json", timeout=60)
    assert res.rc == 0, res
    cap = surge_cli("capacity", "latest", "--by", "vus", "--json")
    assert cap.rc == 0, cap
    pts = cap.data["points"]
    assert [p["load"] for p in pts] == [1.0, 2.0, 4.0]
    for p in pts:  # closed loop, 20 ms per request: about 50 req/s per VU
        assert 20 * p["load"] < p["throughput"] < 55 * p["load"]
        assert p["latency_ms"] >= 20 and p["seconds"] >= 3
    assert cap.data["usl"]["lambda"]["value"] > 0
    assert cap.data["usl"]["verdict"]
    # The same run by target rate has no rate plateaus: a clear message, not a crash.
    bad = surge_cli("capacity", "latest", "--by", "rate")
    assert bad.rc == 2 and "--by vus" in bad.stderr
    assert_no_traceback(bad.stderr)


def test_figure_is_valid_plotly():
    """The figure dict passes plotly's own schema validation (the HTML report reuses it)."""
    import plotly.graph_objects as go

    from surge.analysis.capacity import find_knee, fit_usl
    from surge.analysis.capacity.points import Point
    from surge.report.capacity_plot import capacity_figure

    pts = [Point(load=float(n), throughput=x, latency_ms=lat) for n, x, lat in
           [(1, 64.9, 10), (18, 995.9, 12), (36, 1652.4, 15), (72, 1853.2, 30), (108, 1828.9, 55), (144, 1775.0, 80)]]
    fit = fit_usl([p.load for p in pts], [p.throughput for p in pts])
    knee = find_knee([p.throughput for p in pts[:4]], [p.latency_ms for p in pts[:4]])
    fig = go.Figure(capacity_figure(pts, fit, knee))  # raises on an invalid property
    names = [t.name for t in fig.data]
    assert names[:3] == ["measured", "USL fit", "peak N*"] and "latency" in names
    assert max(fig.data[1].x) > fit.n_peak.value  # the curve is drawn past the peak
