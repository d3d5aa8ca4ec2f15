#!/usr/bin/env python3
"""Instructions per request of surge's hot paths, counted by valgrind (callgrind).

CPU-time figures on this VM drift 1.5-2x within an hour, so a change to the hot
path that saves 5 % cannot be seen in `bench/peers.py` without many interleaved
rounds. Instruction counts drift far less: the same code doing the same work
executes nearly the same instructions. Back to back, two runs agreed within
0.3 %; across an hour, with other work on the machine, the same revision read
144k-160k per scripted request, because a generator slowed down (valgrind runs it
~50x slower) finds more events per loop wake-up and pays fewer wake-ups per
request. So compare revisions back to back, on a quiet machine (A B A B).

For each variant surge runs under callgrind against a private nginx with one
VU / connection, once at each of two fixed rates (default 100 and 300 req/s);
once requests flow, the worker's counters are zeroed and dumped ``--window``
seconds later (``callgrind_control``, so the coordinator killing the worker at
the end does not matter). Instructions per request = the difference in
instructions between the two rates over the difference in requests nginx
counted: the worker's fixed costs per second (aggregation, self-monitor) cancel.
User-space instructions only: system calls and the kernel are not counted, and
neither are cache misses, which is why CPU time per request at a fixed, low rate
(caches cold after each idle wake-up) is worth several times this figure.

Usage:  .venv/bin/python bench/instructions.py [--variants run,hit,hit-py] [--window 10]
Needs valgrind (apt-get install valgrind) and nginx (bench/setup.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from peers import RESULTS, Nginx, surge_binary  # noqa: E402

SCENARIO = BENCH / "scenario_hello.py"
WARM_TIMEOUT = 180.0  # s: python + numpy start ~20x slower under valgrind
KEEP: Path | None = None  # --keep DIR: where the dumps are copied
SETTLE_S = 6.0  # s after requests flow before counting: a late start's backlog is caught up


SLOT: str | None = None  # --arrival-slot: passed to surge


def variant_command(name: str, exe: str, url: str, rate: int) -> tuple[list[str], dict[str, str]]:
    """The surge command line and extra environment of a variant at ``rate`` req/s (1 worker)."""
    common = ["-d", "300s", "--workers", "1", "--json", "--rate", str(rate)]
    if SLOT is not None:
        common += ["--arrival-slot", SLOT]
    if name == "run":
        return [exe, "run", str(SCENARIO), "--base-url", url, "--vus", "1", *common, "--quiet"], {}
    if name == "hit":
        return [exe, "hit", url + "/", "-c", "1", *common], {}
    if name == "hit-py":
        return [exe, "hit", url + "/", "-c", "1", *common], {"SURGE_HIT_ENGINE": "python"}
    raise SystemExit(f"unknown variant {name!r}: choose from run, hit, hit-py")


def worker_pid(root: psutil.Process) -> int | None:
    """The load worker: of the coordinator's descendants, the one that has used the most CPU
    (forked workers share the coordinator's command line; helpers such as git use little)."""
    best, best_cpu = None, -1.0
    try:
        kids = root.children(recursive=True)
    except psutil.Error:
        return None
    for k in kids:
        try:
            t = k.cpu_times()
        except psutil.Error:
            continue
        if t.user + t.system > best_cpu:
            best, best_cpu = k.pid, t.user + t.system
    return best


def flowing(nginx: Nginx, pid: int | None, wait_s: float = 2.0) -> bool:
    """True once requests reach nginx steadily (two successive counts rise)."""
    if pid is None:
        return False
    a = nginx.requests()
    time.sleep(wait_s)
    b = nginx.requests()
    time.sleep(wait_s)
    c = nginx.requests()
    return b - a > 2 and c - b > 2


def read_dump(path: Path) -> tuple[int, Counter]:
    """Total Ir of a callgrind dump and its self cost per object file (library)."""
    names: dict[str, str] = {}
    by_obj: Counter = Counter()
    obj = "?"
    skip = False
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
        elif line.startswith(("ob=", "cob=")):
            # Names are compressed: "(7) /path" defines id 7, later "(7)" refers to it,
            # and a definition may come first in a cob= (called object) line.
            ref = line.split("=", 1)[1]
            m = re.match(r"\((\d+)\)(?: (.*))?", ref)
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("ob="):
                obj = names.get(m.group(1), ref) if m else ref
        elif line.startswith("calls="):
            skip = True  # the next cost line is a call's inclusive cost, not self cost
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip:
                skip = False
                continue
            parts = line.split()
            if len(parts) >= 2:
                by_obj[Path(obj).name.split(".cpython")[0]] += int(parts[1])
    return total, by_obj


def count(name: str, exe: str, nginx: Nginx, rate: int, window: float, workdir: Path) -> dict:
    """Instructions of the worker and requests nginx served in ``window`` s of steady load."""
    cmd, env = variant_command(name, exe, nginx.url, rate)
    out = Path(tempfile.mkdtemp(prefix=f"{name}-{rate}-", dir=workdir))
    vg = ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out}/cg.%p"]
    proc = subprocess.Popen(vg + cmd, cwd=out, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        root = psutil.Process(proc.pid)
        deadline = time.monotonic() + WARM_TIMEOUT
        pid = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return {"error": f"surge exited early (code {proc.returncode})"}
            pid = worker_pid(root)
            if flowing(nginx, pid):
                # Pick again now that requests flow: before the load starts a short-lived
                # helper (git, run under valgrind too) may have used more CPU than the worker.
                pid = worker_pid(root)
                break
        else:
            return {"error": "no steady requests within the warm-up timeout"}
        time.sleep(SETTLE_S)
        subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
        r0 = nginx.requests()
        time.sleep(window)
        subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
        r1 = nginx.requests()
        dumps: list[Path] = []
        for _ in range(100):  # the dump is written asynchronously, when the worker next runs
            dumps = sorted(out.glob(f"cg.{pid}.*"))
            if dumps and dumps[-1].stat().st_size > 0:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        if not dumps:
            return {"error": "callgrind wrote no dump"}
        total, by_obj = read_dump(dumps[-1])
        if KEEP is not None:  # for callgrind_annotate / kcachegrind
            KEEP.mkdir(parents=True, exist_ok=True)
            shutil.copy(dumps[-1], KEEP / f"callgrind.{name}.{rate}")
    finally:
        proc.terminate()  # surge stops gracefully and writes its run directory
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"requests": r1 - r0 - 2, "ir": total, "by_object": by_obj}  # -2: this script's status requests


def measure(name: str, exe: str, nginx: Nginx, rates: tuple[int, int], window: float, workdir: Path) -> dict:
    """Instructions per request of a variant: the difference between two rates over equal
    windows, so the worker's fixed costs per second (aggregation, self-monitor) cancel."""
    lo = count(name, exe, nginx, rates[0], window, workdir)
    hi = count(name, exe, nginx, rates[1], window, workdir)
    for r in (lo, hi):
        if "error" in r:
            return {"variant": name, "error": r["error"]}
    dn = hi["requests"] - lo["requests"]
    if dn <= 0:
        return {"variant": name, "error": "the higher rate served no more requests (generator saturated?)"}
    diff = hi["by_object"] - lo["by_object"]  # Counter subtraction keeps positive parts
    top = {k: round(v / max(sum(diff.values()), 1), 3) for k, v in diff.most_common(6)}
    fixed = (lo["ir"] - lo["requests"] * (hi["ir"] - lo["ir"]) / dn) / window
    return {"variant": name, "rates": list(rates), "requests": [lo["requests"], hi["requests"]],
            "ir": [lo["ir"], hi["ir"]], "ir_per_request": round((hi["ir"] - lo["ir"]) / dn),
            "fixed_ir_per_s": round(fixed), "share_by_object": top}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default="run,hit,hit-py", help="comma-separated: run, hit, hit-py")
    ap.add_argument("--window", type=float, default=15.0, help="seconds counted per rate (default 15)")
    ap.add_argument("--rates", default="100,300", help="the two fixed rates, req/s (default 100,300)")
    ap.add_argument("--keep", type=Path, help="copy the callgrind dumps here (callgrind.VARIANT.RATE)")
    ap.add_argument("--surge", help="the surge executable to measure (default .venv/bin/surge); e.g. a "
                                    "wrapper that runs another revision, to compare back to back")
    ap.add_argument("--arrival-slot", help="surge's --arrival-slot (default its own, 2ms). A slot long enough "
                                           "to hold several arrivals at both rates (e.g. 20ms) gives both the "
                                           "same wake-ups a second, so the difference is the cost per request "
                                           "alone, as at 5,000 req/s where a slot holds ten")
    args = ap.parse_args()
    global KEEP, SLOT
    KEEP, SLOT = args.keep, args.arrival_slot
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install valgrind")
    lo, _, hi = args.rates.partition(",")
    try:
        rates = (int(lo), int(hi))
    except ValueError:
        raise SystemExit(f"--rates {args.rates!r}: give two integers, e.g. 100,400") from None
    exe = args.surge or surge_binary()
    if exe is None:
        raise SystemExit("surge is not installed in .venv: run `make demo` (or `make venv`) first")
    nginx = Nginx()
    nginx.start()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="surge-bench-cg-", ignore_cleanup_errors=True) as tmp:
            for name in args.variants.split(","):
                r = measure(name.strip(), exe, nginx, rates, args.window, Path(tmp))
                results.append(r)
                print(json.dumps(r), file=sys.stderr)
    finally:
        nginx.stop()
    print(f"\n{'variant':<8} {'requests':>13} {'instructions/req':>17} {'fixed/s':>11}  where (share of the difference)")
    for r in results:
        if "error" in r:
            print(f"{r['variant']:<8} {'n/a':>13} {'n/a':>17} {'n/a':>11}  {r['error']}")
            continue
        where = ", ".join(f"{k} {v:.0%}" for k, v in list(r["share_by_object"].items())[:4])
        n = "/".join(f"{x:,}" for x in r["requests"])
        print(f"{r['variant']:<8} {n:>13} {r['ir_per_request']:>17,} {r['fixed_ir_per_s']:>11,}  {where}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"instructions-{stamp}.json"
    meta = {"python": sys.version.split()[0], "window_s": args.window, "rates": list(rates), "when": stamp}
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"\nsaved {path.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
