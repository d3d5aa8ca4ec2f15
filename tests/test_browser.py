"""The report and the dashboard in a real browser: charts drawn with data, no console errors, live updates.

Playwright drives Debian's Chromium (/usr/bin/chromium; Playwright's own browser
download does not work here). Without playwright or Chromium the module is
skipped, unless SURGE_REQUIRE_BROWSER=1 (CI), which makes the tests fail instead.
Each test saves a screenshot under tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import assert_no_traceback, surge_cli
from surge.results.store import Store
from surge.web.app import create_app
from surge.web.server import DashboardServer, bind, url_of
from test_dashboard import SCENARIO, T0, _finish, _popen, _url_from, stored_run
from test_dashboard_security import hostile_runs

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REQUIRED = os.environ.get("SURGE_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WAIT_MS = 30_000  # upper bound for a page to draw its charts (the report decompresses 4.8 MB of plotly.js)

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

_MISSING = ("playwright is not installed" if sync_playwright is None
            else f"{CHROMIUM} is missing" if not os.path.exists(CHROMIUM) else "")
if _MISSING and not REQUIRED:
    pytest.skip(f"browser tests: {_MISSING} (SURGE_REQUIRE_BROWSER=1 makes this a failure)",
                allow_module_level=True)

# Predicates are written as functions: Playwright polls a bare expression with eval(), which the
# dashboard's Content-Security-Policy forbids (as it should).
CHARTS_DRAWN = "() => document.querySelectorAll('.surge-chart .plot-container').length > 0"
ALL_CHARTS_DRAWN = ("() => document.querySelectorAll('.surge-chart').length == "
                    "document.querySelectorAll('.surge-chart .plot-container').length")
CHARTS_WITH_POINTS = """() => Array.from(document.querySelectorAll('.surge-chart'))
    .filter(el => el.data && el.data.some(t => (t.x || t.y || []).length > 0)).length"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if _MISSING:
        pytest.fail(f"SURGE_REQUIRE_BROWSER=1 but {_MISSING}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Tab:
    """A browser page that records console errors and uncaught exceptions."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def open(self, url: str, *, charts: bool = True) -> int:
        """Load ``url``; with ``charts``, wait for them and return how many have data points."""
        self.page.goto(url)
        if not charts:
            return 0
        self.page.wait_for_function(CHARTS_DRAWN, timeout=WAIT_MS)
        return self.page.evaluate(CHARTS_WITH_POINTS)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def tab(browser, request) -> Iterator[Tab]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    t = Tab(page)
    try:
        yield t
    finally:
        try:
            t.shot(request.node.name)
        finally:
            page.close()


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    """A store with twelve runs of one scenario (p95 tripled from the seventh on) and one other."""
    root = tmp_path_factory.mktemp("browser-store")
    store = Store.open(f"sqlite:///{root / 'surge.db'}")
    for i in range(12):
        stored_run(store, root, f"20261101-{10 + i}0000-shop", started=T0 + timedelta(hours=i), seconds=30,
                   latency_ms=10.0 if i < 6 else 30.0, error_kind="refused" if i == 11 else None)
    store.close()
    return root


@pytest.fixture(scope="module")
def dashboard(store_dir) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of the dashboard over ``store_dir``'s store, in a thread."""
    app = create_app(f"sqlite:///{store_dir / 'surge.db'}")
    sock = bind("127.0.0.1", 0)
    server = DashboardServer(app, sock, on_stop=app.state.close, loop="asyncio")
    server.start_background()
    try:
        yield url_of(sock, "127.0.0.1")
    finally:
        server.stop()


def test_report_file_draws_its_charts(tab, store_dir, tmp_path):
    out = tmp_path / "report.html"
    res = surge_cli("report", "20261101-210000-shop", "--baseline", "20261101-100000-shop", "-o", str(out),
                    "--store", f"sqlite:///{store_dir / 'surge.db'}")
    assert res.rc == 0, res
    assert_no_traceback(res.stderr)
    drawn = tab.open(out.as_uri())
    assert drawn >= 3, "fewer than 3 charts with data points"
    x = tab.page.evaluate("document.querySelector('#timeseries .surge-chart').data[0].x.length")
    assert x > 0
    assert tab.errors == []


def test_dashboard_runs_list_and_run_detail(tab, dashboard):
    tab.open(dashboard + "/", charts=False)
    rows = tab.page.evaluate("document.querySelectorAll('table.sortable tbody tr').length")
    assert rows == 12
    tab.page.click("text=20261101-160000-shop")
    tab.page.wait_for_url(re.compile(r"/runs/20261101-160000-shop$"))
    tab.page.wait_for_function(CHARTS_DRAWN, timeout=WAIT_MS)
    assert tab.page.evaluate(CHARTS_WITH_POINTS) >= 3
    assert tab.errors == []


def test_dashboard_trend_shows_the_change_point(tab, dashboard):
    assert tab.open(dashboard + "/trend?metric=p95") >= 1
    first = "document.querySelector('.surge-chart')"
    assert tab.page.evaluate(f"{first}.data[0].x.length") == 12
    assert tab.page.evaluate(f"{first}.layout.shapes.length") >= 1  # the change point's line
    assert tab.page.locator("text=20261101-160000-shop").count() >= 1
    assert tab.errors == []


def test_dashboard_compare_form_and_result(tab, dashboard):
    tab.open(dashboard + "/compare", charts=False)
    tab.page.select_option("select[name=a]", "20261101-100000-shop")
    tab.page.select_option("select[name=b]", "20261101-200000-shop")
    tab.page.click("button:has-text('Compare')")
    tab.page.wait_for_selector("#comparison")
    tab.page.wait_for_function(CHARTS_DRAWN, timeout=WAIT_MS)
    assert tab.page.evaluate(CHARTS_WITH_POINTS) >= 3
    assert "REGRESSED" in tab.page.inner_text("#comparison")
    assert tab.errors == []


def test_payloads_stay_text_in_the_browser(browser, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'x.db'}")
    ids = hostile_runs(store, tmp_path)
    app = create_app(store)
    sock = bind("127.0.0.1", 0)
    server = DashboardServer(app, sock, loop="asyncio")
    server.start_background()
    base = url_of(sock, "127.0.0.1")
    page = browser.new_page()
    t = Tab(page)
    q = urllib.parse.quote
    try:
        for path in ("/", f"/runs/{q(ids[0], safe='')}", f"/runs/{q(ids[-1], safe='')}", "/trend?metric=p95",
                     f"/compare?a={q(ids[0])}&b={q(ids[-1])}", "/nothing/%3Cscript%3Ewindow.__xss=1%3C/script%3E"):
            resp = page.goto(base + path)  # returns after 'load': img onerror handlers have had their turn
            page.wait_for_function(ALL_CHARTS_DRAWN, timeout=WAIT_MS)  # plotly's labels too
            assert page.evaluate("window.__xss") is None, path
            if resp.status == 404:  # the browser logs the 404 of the page itself
                t.errors = [e for e in t.errors if "status of 404" not in e]
        assert t.errors == []  # not even a blocked inline script (CSP would log one)
        t.shot("test_payloads_stay_text_in_the_browser")
    finally:
        page.close()
        server.stop()
        store.close()


def test_live_view_updates_while_the_run_goes_on(tab, test_server, scenario_file, tmp_path):
    path = scenario_file(SCENARIO)
    proc = _popen("run", str(path), "-b", test_server, "--vus", "2", "-d", "8s", "--workers", "1",
                  "--dashboard", "--dashboard-port", "0", "--out", str(tmp_path / "runs"), "--no-store")
    try:
        base = _url_from(proc, r"live dashboard: (http://127\.0\.0\.1:\d+)/live")
        tab.open(base + "/live", charts=False)
        points = "(document.getElementById('live-throughput').data || [{x: []}])[0].x.length"
        tab.page.wait_for_function(f"() => {points} > 0", timeout=WAIT_MS)
        first = tab.page.evaluate(f"() => {points}")
        # two more seconds arrive without a reload
        tab.page.wait_for_function(f"n => {points} >= n + 2", arg=first, timeout=WAIT_MS)
        assert tab.page.evaluate(f"() => {points}") >= first + 2
        assert tab.page.evaluate("document.getElementById('live-latency').data[2].y.some(v => v > 0)")
        status = tab.page.inner_text("#live-status")
        assert "running" in status or "completed" in status
        errors = list(tab.errors)  # before the run ends and the dashboard goes away
    finally:
        rc, _, err = _finish(proc)
    assert rc == 0, err
    assert_no_traceback(err)
    assert errors == []
