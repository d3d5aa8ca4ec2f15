"""Findings on synthetic runs with a known story: each rule fires on its signature and
stays quiet on a healthy run."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from surge.analysis.findings import diagnose, profiled_cpu_s
from surge.metrics.stats import RequestStats, SecondStats


def _second(t, *, n, lat_ms, vus=0, rate=0.0, errors=None, name="/a", rng=None, service_ms=None):
    rng = rng or np.random.default_rng(t)
    st = RequestStats(count=n)
    lat = np.maximum(rng.normal(lat_ms, lat_ms * 0.05, n), 0.01)
    st.latency.record_many((lat * 1e6).astype(np.int64))
    svc = lat if service_ms is None else np.maximum(rng.normal(service_ms, service_ms * 0.05, n), 0.01)
    st.service.record_many((svc * 1e6).astype(np.int64))
    if errors:
        st.errors = Counter(errors)
    return SecondStats(second=t, requests={("s", name, "GET", "2xx"): st}, vus=vus, target_rate=rate, started=n)


def _summary(**kw):
    base = {"names": [], "generator": {"bound": False}, "open_model": False}
    base.update(kw)
    return base


def _kinds(fs):
    return [f.kind for f in fs]


def test_healthy_constant_run_has_no_findings():
    series = [_second(t, n=100, lat_ms=20, vus=10) for t in range(30)]
    assert diagnose(_summary(), series) == []


def test_saturation_knee_found_in_stepped_closed_run():
    # closed model, 5 steps of 6 s: throughput grows linearly to 20 VUs, then flattens
    series, t = [], 0
    for vus in (5, 10, 20, 40, 80):
        x = 50 * min(vus, 20)  # req/s
        lat = vus / x * 1000  # Little's law, ms
        for _ in range(6):
            series.append(_second(t, n=x, lat_ms=lat, vus=vus))
            t += 1
    fs = diagnose(_summary(), series)
    sat = [f for f in fs if f.kind == "saturation"]
    assert len(sat) == 1
    assert "1000 req/s" in sat[0].title and "20 VUs" in sat[0].title
    assert sat[0].t_range[0] >= 18  # the 40-VU level starts at 18 s


def test_no_knee_when_throughput_keeps_scaling():
    series, t = [], 0
    for vus in (5, 10, 20, 40):
        for _ in range(6):
            series.append(_second(t, n=50 * vus, lat_ms=20, vus=vus))
            t += 1
    assert "saturation" not in _kinds(diagnose(_summary(), series))


def test_error_onset_dates_sustained_errors_not_a_blip():
    series = []
    for t in range(40):
        errs = {"timeout": 30} if t >= 25 else ({"reset": 1} if t == 3 else None)
        series.append(_second(t, n=100, lat_ms=20, vus=10, errors=errs))
    fs = diagnose(_summary(), series)
    err = [f for f in fs if f.kind == "errors"][0]
    assert "at 25 s" in err.title
    assert err.severity == "critical"
    assert "timeout" in err.detail and err.subject == "GET /a"


def _sut(samples_cpu, rss=None):
    return [{"t": float(i + 1), "procs": {"app": {"alive": True, "procs": 1, "cpu_pct": c,
                                                   "rss_mb": (rss[i] if rss is not None else 100.0)}}}
            for i, c in enumerate(samples_cpu)]


def test_cpu_bound_versus_waiting():
    # latency doubles in the second half of the run
    series = [_second(t, n=100, lat_ms=20 if t < 20 else 60, vus=10) for t in range(40)]
    busy = _sut([40.0] * 20 + [98.0] * 20)
    fs = diagnose(_summary(), series, sut=busy, ncpu=2)
    assert "cpu_bound" in _kinds(fs) and "waiting" not in _kinds(fs)
    idle = _sut([15.0] * 40)
    fs = diagnose(_summary(), series, sut=idle, ncpu=2)
    assert "waiting" in _kinds(fs) and "cpu_bound" not in _kinds(fs)


def test_hot_function_names_the_deepest_function_holding_the_time():
    stacks = {
        "<module> (app.py:1);serve (/usr/lib/python3.11/asyncio/base_events.py:10);"
        "recommendations (/src/shop/app.py:380);compute_similarity_scores (/src/shop/app.py:120);"
        "shingles (/src/shop/app.py:100)": 500,
        "<module> (app.py:1);serve (/usr/lib/python3.11/asyncio/base_events.py:10);"
        "recommendations (/src/shop/app.py:380);compute_similarity_scores (/src/shop/app.py:121);"
        "jaccard (/src/shop/app.py:110)": 200,
        "<module> (app.py:1);serve (/usr/lib/python3.11/asyncio/base_events.py:10);"
        "list_products (/src/shop/app.py:290)": 300,
    }
    series = [_second(t, n=100, lat_ms=20, vus=10) for t in range(10)]
    hot = [f for f in diagnose(_summary(), series, stacks=stacks) if f.kind == "hot_functions"][0]
    assert hot.subject == "compute_similarity_scores (app.py)"
    assert "70%" in hot.title
    assert not any("base_events" in e for e in hot.evidence)


def test_endpoint_signatures_tell_n_plus_one_from_a_heavy_tail():
    def name(n, p50, p99):
        return {"name": n, "method": "GET", "requests": 500, "service": {"p50": p50, "p99": p99}}

    summary = _summary(names=[name("/health", 1.0, 2.0), name("/products", 25.0, 35.0),
                              name("/products/{id}", 2.0, 4.0), name("/checkout", 30.0, 400.0)])
    series = [_second(t, n=100, lat_ms=20, vus=10) for t in range(10)]
    fs = diagnose(summary, series, sut=_sut([20.0] * 10), ncpu=2)
    slow = [f for f in fs if f.kind == "slow_endpoint"]
    tail = [f for f in fs if f.kind == "heavy_tail"]
    assert [f.subject for f in slow] == ["GET /products"]
    assert "N+1" in slow[0].detail and "waiting, not working" in slow[0].detail
    assert [f.subject for f in tail] == ["GET /checkout"]


def test_latency_drift_and_memory_growth_in_a_soak():
    rng = np.random.default_rng(7)
    series = [_second(t, n=50, lat_ms=20 + 0.1 * t, vus=10, rng=rng) for t in range(180)]
    rss = [100 + 0.05 * i + rng.normal(0, 0.2) for i in range(180)]  # 3 MiB/min = 180 MiB/h
    fs = diagnose(_summary(), series, sut=_sut([30.0] * 180, rss), ncpu=2)
    kinds = _kinds(fs)
    assert "latency_drift" in kinds and "memory_growth" in kinds
    mem = [f for f in fs if f.kind == "memory_growth"][0]
    assert 150 <= float(mem.title.split("grows ")[1].split(" ")[0]) <= 210


def test_flat_soak_has_no_drift():
    rng = np.random.default_rng(3)
    series = [_second(t, n=50, lat_ms=20, vus=10, rng=rng) for t in range(180)]
    rss = [100 + rng.normal(0, 0.5) for _ in range(180)]
    fs = diagnose(_summary(), series, sut=_sut([30.0] * 180, rss), ncpu=2)
    assert "latency_drift" not in _kinds(fs) and "memory_growth" not in _kinds(fs)


def test_generator_bound_is_reported_first():
    series = [_second(t, n=100, lat_ms=20, vus=10) for t in range(10)]
    s = _summary(generator={"bound": True, "explanation": "GENERATOR-BOUND: cpu", "reasons": ["cpu 99%"]})
    fs = diagnose(s, series)
    assert fs[0].kind == "generator_bound" and fs[0].severity == "critical"


def test_hot_functions_skip_the_frames_that_host_the_framework():
    # py-spy's short paths: a CLI that starts uvicorn, idle loop samples, and the request path
    launcher = ("<module> (surge);main (surge/cli/main.py);Command.main (click/core.py);serve_cmd (shop/cli.py);"
                "run_app (shop/server.py);Server.run (uvicorn/server.py);Runner.run (asyncio/runners.py)")
    stacks = {
        launcher: 400,  # the event loop waiting
        launcher + ";Route.handle (starlette/routing.py);Shop.recommendations (shop/app.py);"
                   "compute_similarity_scores (shop/app.py);compute_similarity_scores.<locals>.<listcomp> "
                   "(shop/app.py);shingles (shop/app.py)": 450,
        launcher + ";Route.handle (starlette/routing.py);Shop.list_products (shop/app.py);"
                   "JSONResponse.render (starlette/responses.py);dumps (json/__init__.py)": 150,
    }
    series = [_second(t, n=100, lat_ms=20, vus=10) for t in range(10)]
    hot = [f for f in diagnose(_summary(), series, stacks=stacks) if f.kind == "hot_functions"][0]
    assert "compute_similarity_scores" in hot.title and "45%" in hot.title
    assert not any(x in e for e in hot.evidence for x in ("serve_cmd", "run_app", "main ("))
    assert any(e.startswith("Shop.list_products") for e in hot.evidence)


def _shop_summary(reco_requests=100):
    def name(n, p50, p99, requests=500):
        return {"name": n, "method": "GET", "requests": requests, "service": {"p50": p50, "p99": p99}}

    return _summary(names=[name("/health", 1.0, 2.0), name("/products", 25.0, 35.0),
                           name("/products/{id}", 2.0, 4.0),
                           name("/products/{id}/recommendations", 18.0, 30.0, reco_requests)])


def _slow_endpoints(stacks, sut=None):
    """The slow_endpoint findings of the shop summary over 10 s, by subject."""
    series = [_second(t, n=100, lat_ms=20, vus=10) for t in range(10)]
    fs = diagnose(_shop_summary(), series, sut=sut, ncpu=2, stacks=stacks)
    return {f.subject: f for f in fs if f.kind == "slow_endpoint"}


def test_a_slow_endpoint_whose_handler_is_hot_code_computes():
    stacks = {"run (asyncio/runners.py);handle (starlette/routing.py);Shop.recommendations (shop/app.py);"
              "compute_similarity_scores (shop/app.py)": 300,
              "run (asyncio/runners.py)": 700}
    # 60 % of a core for 10 s, 30 % of it in the handler: 18 ms of CPU in each of its 100 requests
    slow = _slow_endpoints(stacks, _sut([60.0] * 10))
    reco = slow["GET /products/{id}/recommendations"]
    assert "computes" in reco.title and any("18 ms of CPU per request" in e for e in reco.evidence), reco
    assert "N+1" in slow["GET /products"].detail
    # without SUT samples the CPU per request is unknown: the name match alone decides
    assert "computes" in _slow_endpoints(stacks)["GET /products/{id}/recommendations"].title


def test_a_handler_in_the_profile_that_mostly_waits_is_not_computing():
    # the demo's N+1 list handler: 13 % of the samples, but ~1 ms of CPU in a 25 ms request
    stacks = {"run (asyncio/runners.py);handle (starlette/routing.py);Shop.list_products (shop/app.py);"
              "Database.fetchone (shop/db.py)": 130,
              "run (asyncio/runners.py)": 870}
    products = _slow_endpoints(stacks, _sut([40.0] * 10))["GET /products"]
    assert "computes" not in products.title and "N+1" in products.detail, products
    assert any("waits more than it computes" in e for e in products.evidence), products.evidence


def test_a_tail_shared_by_most_endpoints_is_one_finding():
    def name(n, p50, p99):
        return {"name": n, "method": "GET", "requests": 500, "service": {"p50": p50, "p99": p99}}

    summary = _summary(names=[name("/a", 2.0, 250.0), name("/b", 3.0, 300.0), name("/c", 40.0, 420.0),
                              name("/d", 2.5, 260.0), name("/e", 2.0, 3.0)])
    series = [_second(t, n=100, lat_ms=20, vus=10) for t in range(10)]
    fs = diagnose(summary, series)
    assert [f.kind for f in fs].count("shared_tail") == 1
    assert "heavy_tail" not in _kinds(fs)
    slow = [f for f in fs if f.kind == "slow_endpoint"]
    assert [f.subject for f in slow] == ["GET /c"] and "on its own" in slow[0].title


def test_the_profiled_unit_and_every_endpoint_of_a_handler_share_its_cpu():
    # a busy database next to the profiled app: the app's CPU (matched by py-spy's PID) counts
    sut = [{"t": float(i + 1), "dt": 1.0, "procs": {
        "postgres:10": {"pid": 10, "alive": True, "procs": 1, "cpu_pct": 95.0, "rss_mb": 100.0},
        "python3:42": {"pid": 42, "alive": True, "procs": 1, "cpu_pct": 40.0, "rss_mb": 50.0}}}
        for i in range(10)]
    stacks = {"process 42 (python3 app.py);run (asyncio/runners.py);handle (starlette/routing.py);"
              "Shop.list_products (shop/app.py);Database.fetchone (shop/db.py)": 130,
              "process 42 (python3 app.py);run (asyncio/runners.py);handle (starlette/routing.py);"
              "Shop.recommendations (shop/app.py);compute_similarity_scores (shop/app.py)": 150,
              "process 42 (python3 app.py);run (asyncio/runners.py)": 720}
    assert profiled_cpu_s(sut, stacks) == pytest.approx(4.0)
    assert profiled_cpu_s(sut, {}) is None  # two units and no PID to tell them apart
    slow = _slow_endpoints(stacks, sut)
    # /products and /products/{id} both match Shop.list_products: 0.52 s over 1,000 requests
    assert "computes" not in slow["GET /products"].title
    assert any("0.52 ms of CPU" in e for e in slow["GET /products"].evidence), slow["GET /products"].evidence
    # the path's last word picks the handler (Shop.list_products is hotter and matches "products"):
    # 0.6 s over its 100 requests, a third of its 18 ms
    reco = slow["GET /products/{id}/recommendations"]
    assert "computes" in reco.title and any("Shop.recommendations" in e and "6 ms of CPU" in e
                                            for e in reco.evidence), reco.evidence
