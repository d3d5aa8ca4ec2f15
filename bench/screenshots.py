"""Screenshots for the docs, from demo runs: docs/img/live.png, report.png and dashboard.png.

    .venv/bin/python bench/screenshots.py [--duration 15s] [--out docs/img]

Starts the demo shop on a free port, runs examples/shop.py against it with
``--dashboard`` and photographs the live view mid-run, then writes the run's HTML
report and photographs it. Then runs the same load against the fixed shop
(``surge demo serve --fixed``), serves the dashboard and photographs the
comparison of the two runs. Everything goes into a temporary directory and
store except the PNGs.
Needs playwright and /usr/bin/chromium (as the browser tests do).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SURGE = [str(Path(sys.executable).parent / "surge")]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 860}
MAX_BYTES = 300_000  # per PNG, to keep the repository small


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([*SURGE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=env["SURGE_WORKDIR"], start_new_session=True)


def wait_for_line(proc: subprocess.Popen, stream: str, pattern: str, timeout: float = 30.0) -> str:
    """Group 1 of the first line of the process's ``stream`` matching ``pattern``."""
    pipe = getattr(proc, stream)
    sel = selectors.DefaultSelector()
    sel.register(pipe, selectors.EVENT_READ)
    try:
        for _ in range(500):
            if not sel.select(timeout):
                break
            line = pipe.readline()
            if not line:
                break
            m = re.search(pattern, line)
            if m:
                return m.group(1)
    finally:
        sel.close()
    raise SystemExit(f"surge {' '.join(proc.args[1:])}: no line matching {pattern!r}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def shoot(page, path: Path) -> None:
    page.screenshot(path=str(path))
    size = path.stat().st_size
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {size / 1000:.0f} KB")
    if size > MAX_BYTES:
        print(f"warning: {path.name} is over {MAX_BYTES // 1000} KB", file=sys.stderr)


def charts_drawn(page) -> None:
    page.wait_for_function("() => document.querySelectorAll('.surge-chart .plot-container').length > 0",
                           timeout=60_000)
    page.wait_for_timeout(500)  # let plotly finish its transitions before the picture


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", default="15s")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="surge-shots-"))
    env = {**os.environ, "SURGE_STORE": f"sqlite:///{work / 'surge.db'}", "SURGE_WORKDIR": str(work),
           "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    shop = start(["demo", "serve", "--port", "0"], env)
    procs = [shop]
    try:
        base_url = wait_for_line(shop, "stderr", r"on (http://127\.0\.0\.1:\d+)")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)

            run = start(["run", str(ROOT / "examples" / "shop.py"), "-b", base_url, "-d", a.duration,
                         "--vus", "30", "--dashboard", "--dashboard-port", "0", "--out", str(work / "runs"),
                         "--quiet"], env)
            procs.append(run)
            live = wait_for_line(run, "stderr", r"live dashboard: (http://\S+/live)")
            page.goto(live)
            page.wait_for_function(
                "() => (document.getElementById('live-throughput').data || [{x: []}])[0].x.length >= 10",
                timeout=120_000)
            shoot(page, a.out / "live.png")
            run.wait(120)

            report = work / "report.html"
            subprocess.run([*SURGE, "report", "latest", "-o", str(report)], env=env, cwd=work, check=True)
            page.goto(report.as_uri())
            charts_drawn(page)
            shoot(page, a.out / "report.png")

            fixed = start(["demo", "serve", "--fixed", "--port", "0"], env)
            procs.append(fixed)
            fixed_url = wait_for_line(fixed, "stderr", r"on (http://127\.0\.0\.1:\d+)")
            subprocess.run([*SURGE, "run", str(ROOT / "examples" / "shop.py"), "-b", fixed_url, "-d", a.duration,
                            "--vus", "30", "--out", str(work / "runs"), "--quiet"], env=env, cwd=work,
                           check=False)  # exit code 3 would only mean a threshold failed

            dash = start(["dashboard", "--port", "0"], env)
            procs.append(dash)
            url = wait_for_line(dash, "stderr", r"on (http://127\.0\.0\.1:\d+)/")
            with urllib.request.urlopen(url + "/api/runs", timeout=10) as resp:
                newest, older = (r["id"] for r in json.load(resp)[:2])
            page.goto(f"{url}/compare?a={older}&b={newest}")
            charts_drawn(page)
            shoot(page, a.out / "dashboard.png")
            browser.close()
    finally:
        for proc in reversed(procs):
            stop(proc)


if __name__ == "__main__":
    main()
