"""Memory figures for surge: RSS with 10,000 concurrent VUs, and RSS growth of a long run.

Usage (after `bash bench/setup.sh`):

    .venv/bin/python bench/memory.py [--vus 10000] [--soak 60] [--rate 10000] [--soak-models hit,run]

Starts nginx on 127.0.0.1 (one worker, core 0), then

1. runs 10,000 VUs (each holds its own keep-alive connection and sleeps 1 s
   between requests) and reports the peak RSS summed over the coordinator and
   its workers;
2. runs `surge hit --rate` and a scripted scenario (`surge run --rate`, one GET and
   a check) at --rate req/s for --soak s each, samples the total RSS every second
   and fits a line to the second half: the slope, extrapolated to one hour.

Targets (issue "Foundation"): < 1 GiB total for 10k VUs; < 50 MiB/hour growth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
SURGE = str(ROOT / ".venv" / "bin" / "surge")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def start_nginx(tmp: Path, port: int) -> subprocess.Popen:
    conf = tmp / "nginx.conf"
    (tmp / "logs").mkdir(exist_ok=True)
    conf.write_text(
        textwrap.dedent(f"""
        worker_processes 1;
        daemon off;
        pid {tmp}/nginx.pid;
        error_log {tmp}/logs/error.log;
        worker_rlimit_nofile 40000;
        events {{ worker_connections 30000; }}
        http {{
          access_log off;
          keepalive_requests 100000000;
          keepalive_timeout 300s;
          server {{ listen 127.0.0.1:{port} backlog=16384; location / {{ return 200 "hello world\\n"; }} }}
        }}
    """)
    )
    proc = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", str(conf), "-p", str(tmp)])
    time.sleep(0.5)
    return proc


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def sample_run(args: list[str], seconds: float) -> tuple[list[float], str]:
    p = subprocess.Popen([SURGE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(p.pid)
    samples = []
    while p.poll() is None:
        samples.append(tree_rss(ps) / 2**20)
        time.sleep(1.0)
    out, err = p.communicate()
    return samples, out if p.returncode == 0 else err


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--vus", type=int, default=10_000)
    ap.add_argument("--soak", type=float, default=60.0, help="s of the growth run")
    ap.add_argument("--rate", type=float, default=10_000.0)
    ap.add_argument("--port", type=int, default=18391)
    ap.add_argument("--soak-models", default="hit,run",
                    help="comma list: hit (surge hit --rate) and/or run (a scripted scenario, open model)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ngx = start_nginx(tmp, a.port)
        url = f"http://127.0.0.1:{a.port}"
        scen = tmp / "idle_vus.py"
        scen.write_text(
            "from surge import sleep\n\nasync def idle(client):\n"
            "    await client.get('/')\n    await sleep(1.0)\n"
        )
        try:
            samples, out = sample_run(
                [
                    "run",
                    str(scen),
                    "--base-url",
                    url,
                    "--vus",
                    str(a.vus),
                    "-d",
                    "20s",
                    "--graceful-stop",
                    "2s",
                    "--no-save",
                    "--json",
                ],
                20,
            )
            try:
                s = json.loads(out)
                detail = f"requests {s['requests']:,}, errors {s['errors']:,}, connections {s['connections_opened']:,}"
            except ValueError:
                detail = out.strip().splitlines()[-1] if out.strip() else "no output"
            peak = max(samples) if samples else float("nan")
            print(
                f"{a.vus:,} VUs: peak RSS {peak:,.0f} MiB total (target < 1024 MiB) "
                f"{'PASS' if peak < 1024 else 'MISS'}  [{detail}]"
            )
            hello = tmp / "hello.py"
            hello.write_text(
                "from surge import check\n\nasync def hello(client):\n"
                "    r = await client.get('/')\n    check(r, {'200': lambda r: r.status == 200})\n"
            )
            soaks = {
                "hit": ["hit", url + "/", "-c", "200"],
                "run": ["run", str(hello), "--base-url", url, "--vus", "200"],
            }
            for label in a.soak_models.split(","):
                cmd = soaks[label.strip()]
                samples, out = sample_run(
                    [*cmd, "--rate", str(a.rate), "-d", f"{a.soak}s", "--no-save", "--json", "--quiet"]
                    if label.strip() == "run"
                    else [*cmd, "--rate", str(a.rate), "-d", f"{a.soak}s", "--no-save", "--json"],
                    a.soak,
                )
                half = samples[len(samples) // 2 :]
                if len(half) < 3:
                    print(f"surge {label}: soak too short to fit a slope")
                    continue
                slope = np.polyfit(np.arange(len(half)), np.array(half), 1)[0]  # MiB per s
                per_hour = slope * 3600
                try:
                    achieved = f", achieved {json.loads(out)['rps']:,.0f} req/s"
                except (ValueError, KeyError):
                    achieved = ""
                print(
                    f"surge {label} at {a.rate:,.0f} req/s for {a.soak:.0f} s{achieved}: RSS {samples[0]:.0f} -> "
                    f"{samples[-1]:.0f} MiB (peak {max(samples):.0f}), growth {per_hour:+.1f} MiB/hour extrapolated "
                    f"from the second half (target < 50) {'PASS' if per_hour < 50 else 'MISS'}"
                )
        finally:
            ngx.terminate()
            ngx.wait(timeout=10)


if __name__ == "__main__":
    main()
