#!/usr/bin/env python3
"""Measure surge against peer load generators on a 2-core machine.

nginx (one worker) runs pinned to core 0, each generator runs pinned to core 1.
For every tool two figures are taken:

  * max req/s   -- unthrottled, `--connections` keep-alive connections;
  * CPU us/req  -- user+sys CPU of the generator's process tree per request
                   while it holds a fixed `--rate` (5,000 req/s).

Both are measured the same way for every tool, independent of what the tool
itself reports: requests are counted by nginx (stub_status) and CPU is sampled
from the generator's process tree (psutil), over a steady-state window that
skips start-up/ramp-up and shutdown.  Tool-reported counts and the whole-run
CPU (wait4 rusage, start-up included) are kept in the JSON for cross-checks.

Tools run interleaved in rounds (A B C ... A B C) and the median per tool is
reported, because the VM's speed drifts; only ratios within one run mean much.

Usage:  bash bench/setup.sh && .venv/bin/python bench/peers.py [--tools ...]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

try:
    import psutil

    PsutilError = psutil.Error
except ImportError:  # pragma: no cover - psutil is a surge dependency
    psutil = None
    PsutilError = OSError

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
SERVER_CORE = 0
CLIENT_CORE = 1
SAMPLE_EVERY = 0.2  # seconds between server-counter / CPU samples
EXTRA_PATH = os.pathsep.join(["/usr/sbin", "/sbin", str(BENCH / "node_modules" / ".bin")])

# Targets from the spec (checked after the table).
HIT_VS_WRK_RPS = 0.9
SCENARIO_MIN_RPS = 40_000
SCENARIO_MAX_CPU_US = 30.0
NOISY = 0.1  # flag a tool when other processes/steal took more than this share of a core


# --------------------------------------------------------------------------- helpers


def which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + EXTRA_PATH)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_line(text: str, limit: int = 90) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "no output")[:limit]


def fmt_num(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --------------------------------------------------------------------------- nginx


NGINX_CONF = """\
worker_processes 1;
worker_cpu_affinity {affinity};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        default_type text/plain;
        location = /__status {{ stub_status; }}
        location / {{ return 200 "hello world\\n"; }}
    }}
}}
"""


class Nginx:
    """A private nginx: one worker pinned to SERVER_CORE, request counter via stub_status."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="surge-bench-nginx-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._status_url = f"{self.url}/__status"

    def start(self) -> None:
        binary = which("nginx")
        if not binary:
            raise SystemExit("nginx not found: run `bash bench/setup.sh` first")
        affinity = format(1 << SERVER_CORE, "b")
        conf = self.tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=self.tmp, port=self.port, affinity=affinity))
        cmd = ["taskset", "-c", str(SERVER_CORE), binary, "-p", str(self.tmp), "-c", str(conf)]
        cmd += ["-e", str(self.tmp / "error.log")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"nginx failed to start: {self.proc.stderr.read().decode()}")
            try:
                self.requests()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("nginx did not come up within 10 s")

    def requests(self) -> int:
        """Total requests nginx has handled (includes these status requests)."""
        with urllib.request.urlopen(self._status_url, timeout=2) as resp:
            body = resp.read().decode()
        # "server accepts handled requests\n 12 12 345 \n"
        return int(body.splitlines()[2].split()[2])

    def worker(self):
        if psutil is None or self.proc is None:
            return None
        kids = psutil.Process(self.proc.pid).children()
        return kids[0] if kids else None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- tool adapters


@dataclass
class Ctx:
    url: str  # base URL, no trailing slash
    duration: int
    connections: int
    rate: int | None  # None = unthrottled
    workdir: Path

    @property
    def per_conn_rate(self) -> str:
        return f"{self.rate / self.connections:g}"


@dataclass
class Parsed:
    requests: int | None = None
    errors: int | None = None
    rps: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Tool:
    name: str
    binary: Callable[[], str | None]  # path to the executable, None if missing
    command: Callable[[str, Ctx], list[str]]
    parse: Callable[[str, str, Ctx], Parsed]  # (stdout, stderr, ctx)
    no_rate: str | None = None  # reason when the tool cannot hold a fixed rate
    env: Callable[[Ctx], dict] = lambda ctx: {}  # extra environment for the tool


def _int(pattern: str, text: str) -> int | None:
    m = re.search(pattern, text)
    return int(m.group(1)) if m else None


# wrk --------------------------------------------------------------------------


def wrk_command(exe: str, ctx: Ctx) -> list[str]:
    return [exe, "-t1", f"-c{ctx.connections}", f"-d{ctx.duration}s", ctx.url + "/"]


def wrk_parse(out: str, err: str, ctx: Ctx) -> Parsed:
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = sum(map(int, socket_errors.groups())) if socket_errors else 0
    errors += _int(r"Non-2xx or 3xx responses: (\d+)", out) or 0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return Parsed(_int(r"(\d+) requests in", out), errors, float(rps.group(1)) if rps else None)


# h2load -----------------------------------------------------------------------


def h2load_command(exe: str, ctx: Ctx) -> list[str]:
    cmd = [exe, "--h1", "-t1", f"-c{ctx.connections}", f"-D{ctx.duration}"]
    if ctx.rate:
        cmd.append(f"--rps={ctx.per_conn_rate}")  # --rps is per client; -r is conn/s
    return cmd + [ctx.url + "/"]


def h2load_parse(out: str, err: str, ctx: Ctx) -> Parsed:
    m = re.search(
        r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
        out,
    )
    if not m:
        return Parsed()
    done, failed, errored = int(m.group(2)), int(m.group(4)), int(m.group(5))
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    return Parsed(done, failed + errored, float(rps.group(1)) if rps else None)


# hey --------------------------------------------------------------------------


def hey_command(exe: str, ctx: Ctx) -> list[str]:
    cmd = [exe, "-z", f"{ctx.duration}s", "-c", str(ctx.connections), "-cpus", "1"]
    if ctx.rate:
        cmd += ["-q", ctx.per_conn_rate]  # -q is QPS per worker
    return cmd + [ctx.url + "/"]


def hey_parse(out: str, err: str, ctx: Ctx) -> Parsed:
    ok = sum(int(n) for n in re.findall(r"\[\d{3}\]\s+(\d+) responses", out))
    errors = sum(int(n) for n in re.findall(r"\[(\d+)\]\s+Get", out))
    non2xx = sum(
        int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out) if c[0] != "2"
    )
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        return Parsed()
    return Parsed(ok + errors, errors + non2xx, float(rps.group(1)))


# autocannon -------------------------------------------------------------------


def autocannon_command(exe: str, ctx: Ctx) -> list[str]:
    cmd = [exe, "-c", str(ctx.connections), "-d", str(ctx.duration), "--json"]
    if ctx.rate:
        cmd += ["--overallRate", str(ctx.rate)]
    return cmd + [ctx.url + "/"]


def autocannon_parse(out: str, err: str, ctx: Ctx) -> Parsed:
    data = last_json(out)
    if data is None:
        return Parsed()
    reqs = data.get("requests", {})
    errors = (data.get("errors") or 0) + (data.get("non2xx") or 0) + (data.get("timeouts") or 0)
    return Parsed(reqs.get("total"), errors, reqs.get("average"))


# Locust -----------------------------------------------------------------------


def locust_binary() -> str | None:
    exe = BENCH / ".venv-locust" / "bin" / "locust"
    return str(exe) if exe.exists() else None


def locust_command(user_class: str) -> Callable[[str, Ctx], list[str]]:
    def command(exe: str, ctx: Ctx) -> list[str]:
        return [
            exe, "-f", str(BENCH / "locustfile.py"), "--headless",
            "-u", str(ctx.connections), "-r", str(ctx.connections),
            "-t", f"{ctx.duration}s", "--host", ctx.url,
            "--csv", str(ctx.workdir / "locust"), "--only-summary",
            "--loglevel", "WARNING", "--exit-code-on-error", "0", user_class,
        ]  # fmt: skip

    return command


def locust_env(ctx: Ctx) -> dict:
    return {"BENCH_PER_USER_RATE": ctx.per_conn_rate} if ctx.rate else {}


def locust_parse(out: str, err: str, ctx: Ctx) -> Parsed:
    import csv

    stats = ctx.workdir / "locust_stats.csv"
    if not stats.exists():
        return Parsed()
    with stats.open() as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "Aggregated":
                return Parsed(
                    int(row["Request Count"]),
                    int(row["Failure Count"]),
                    float(row["Requests/s"]),
                )
    return Parsed()


# surge ------------------------------------------------------------------------


def surge_binary() -> str | None:
    exe = ROOT / ".venv" / "bin" / "surge"
    return str(exe) if exe.exists() else None


def surge_hit_command(exe: str, ctx: Ctx) -> list[str]:
    cmd = [exe, "hit", ctx.url + "/", "-c", str(ctx.connections), "-d", f"{ctx.duration}s"]
    cmd += ["--workers", "1", "--json"]
    if ctx.rate:
        cmd += ["--rate", str(ctx.rate)]
    return cmd


def surge_run_command(exe: str, ctx: Ctx) -> list[str]:
    cmd = [exe, "run", str(BENCH / "scenario_hello.py"), "--base-url", ctx.url]
    cmd += ["--vus", str(ctx.connections), "-d", f"{ctx.duration}s", "--workers", "1"]
    cmd += ["--json", "--quiet"]
    if ctx.rate:
        cmd += ["--rate", str(ctx.rate)]
    return cmd


def surge_parse(out: str, err: str, ctx: Ctx) -> Parsed:
    data = last_json(out)
    if not isinstance(data, dict) or "requests" not in data:
        return Parsed()
    extra = {k: data[k] for k in ("p50", "p90", "p95", "p99", "max") if k in data}
    gen = data.get("generator") or {}
    for k in ("sched_lag_p99_ms_max", "sched_lag_p99_ms_median", "steal_max"):
        if gen.get(k) is not None:  # open model: how late arrivals went out (worst, typical second)
            extra[k] = gen[k]
    return Parsed(data.get("requests"), data.get("errors"), data.get("rps"), extra)


SLOT_VARIANTS = ("0", "500us", "2ms", "10ms")  # --arrival-slot values of the surge-*-slot* variants


def with_slot(command: Callable[[str, Ctx], list[str]], slot: str) -> Callable[[str, Ctx], list[str]]:
    """``command`` with ``--arrival-slot slot`` (only matters with --rate)."""
    return lambda exe, ctx: command(exe, ctx) + (["--arrival-slot", slot] if ctx.rate else [])


def last_json(text: str):
    """The last JSON object in `text` (whole text first, then line by line from the end)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    start = text.rfind("\n{")
    while start != -1:
        try:
            return json.loads(text[start + 1 :])
        except ValueError:
            start = text.rfind("\n{", 0, start)
    return None


def _bin(name: str) -> Callable[[], str | None]:
    return lambda: which(name)


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in [
        Tool("wrk", _bin("wrk"), wrk_command, wrk_parse, no_rate="no fixed-rate option"),
        Tool("h2load", _bin("h2load"), h2load_command, h2load_parse),
        Tool("hey", _bin("hey"), hey_command, hey_parse),
        Tool("autocannon", _bin("autocannon"), autocannon_command, autocannon_parse),
        Tool(
            "locust-fast", locust_binary, locust_command("FastUser"), locust_parse, env=locust_env
        ),
        Tool(
            "locust-http", locust_binary, locust_command("SlowUser"), locust_parse, env=locust_env
        ),
        Tool("surge-hit", surge_binary, surge_hit_command, surge_parse),
        # The same build with the compiled loop switched off: what the C loop buys, interleaved.
        Tool("surge-hit-py", surge_binary, surge_hit_command, surge_parse,
             env=lambda ctx: {"SURGE_HIT_ENGINE": "python"}),
        # Other arrival slots (the default is 2 ms): 0 wakes for each arrival; 10 ms is
        # h2load's burstiness (its 50 per-connection --rps timers fire together, 50
        # requests every 10 ms), to compare engines like for like.
        *(Tool(f"surge-hit-slot{slot}", surge_binary, with_slot(surge_hit_command, slot), surge_parse)
          for slot in SLOT_VARIANTS),
        Tool("surge-run", surge_binary, surge_run_command, surge_parse),
        *(Tool(f"surge-run-slot{slot}", surge_binary, with_slot(surge_run_command, slot), surge_parse)
          for slot in SLOT_VARIANTS),
    ]
}


# tuning comparisons, only when named
# surge-hit-slot10ms runs by default: h2load's own --rps burst shape (~50 requests every
# 10 ms here), for the like-for-like CPU target below.
LIKE_H2LOAD = "surge-hit-slot10ms"
VARIANTS = tuple(n for n in (f"surge-{cmd}-slot{slot}" for cmd in ("hit", "run") for slot in SLOT_VARIANTS)
                 if n != LIKE_H2LOAD)


def compile_extension(c_file: Path) -> bool:
    """Build one of surge's single-file C modules in place (what setup.py does); True on success."""
    python = ROOT / ".venv" / "bin" / "python"
    info = subprocess.run([str(python), "-c", "import sysconfig as s; print(s.get_paths()['include']); "
                           "print(s.get_config_var('EXT_SUFFIX'))"], capture_output=True, text=True)
    if info.returncode != 0:
        return False
    include, suffix = info.stdout.split()
    out = c_file.with_name(c_file.stem + suffix)
    cc = subprocess.run(["cc", "-O2", "-Wall", "-shared", "-fPIC", f"-I{include}", str(c_file), "-o", str(out)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cc.returncode == 0


def add_base_revision(rev: str) -> list[str]:
    """Register surge-hit@base / surge-run@base: surge at git revision ``rev``, checked out in a
    temporary worktree and run with this venv, so a change is measured against its parent
    interleaved in one run (A B A B), the only comparison this VM's drift allows."""
    wt = Path(tempfile.mkdtemp(prefix="surge-bench-base-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--quiet", "--detach", str(wt), rev], check=True,
                   stdout=subprocess.DEVNULL)
    atexit.register(subprocess.run, ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for c_file in sorted((ROOT / "src/surge/engine").rglob("_*.c")):
        src = c_file.relative_to(ROOT)
        if not (wt / src).is_file():
            continue
        # Compiled modules are not in git. Same C source as here: this build's module is
        # that revision's; otherwise it is compiled from that revision's source as setup.py
        # would, and where that fails the base runs its fallback (for _hitloop, surge-hit@base
        # runs its Python path), and says so.
        same = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", rev, "--", str(src)]).returncode == 0
        built = sorted((ROOT / src.parent).glob(f"{src.stem}*.so"))
        if same and built:
            shutil.copy2(built[-1], wt / src.parent / built[-1].name)
        elif not compile_extension(wt / src):
            print(f"note: {src.name} does not build at {rev}: the base runs without it")
    wrapper = wt / "surge-base"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={wt / 'src'} exec {ROOT / '.venv' / 'bin' / 'python'} "
                       "-c 'from surge.cli.main import main; main()' \"$@\"\n")
    wrapper.chmod(0o755)
    names = []
    for name, cmd in (("surge-hit@base", surge_hit_command), ("surge-run@base", surge_run_command)):
        TOOLS[name] = Tool(name, lambda w=wrapper: str(w), cmd, surge_parse)
        names.append(name)
    return names


# --------------------------------------------------------------------------- running one measurement


@dataclass
class Sample:
    t: float  # seconds since launch
    served: int  # nginx request counter
    cpu: float | None  # generator process-tree CPU seconds
    server_cpu: float | None  # nginx worker CPU seconds
    system: tuple[float, float] | None = None  # machine-wide (user+nice+system, steal) seconds
    harness_cpu: float | None = None  # this script's own CPU seconds
    wakeups: int | None = None  # voluntary context switches of every thread of the generator's tree


@dataclass
class Run:
    tool: str
    mode: str  # "max" or "rate"
    round: int
    ok: bool = False
    reason: str | None = None
    rps: float | None = None  # server-counted, steady window
    cpu_us_per_req: float | None = None  # tree CPU / server requests, steady window
    cpu_us_per_req_whole: float | None = None  # wait4 rusage / all requests served
    server_busy: float | None = None  # nginx worker CPU share during the window
    other_busy: float | None = None  # cores used by anything else (other processes) in the window
    steal: float | None = None  # cores stolen by the hypervisor in the window
    wakeups_per_s: float | None = None  # generator threads' voluntary context switches per s, steady window
    window_s: float | None = None
    served_total: int | None = None
    tool_requests: int | None = None
    tool_errors: int | None = None
    tool_rps: float | None = None
    wall_s: float | None = None
    exit_code: int | None = None
    extra: dict = field(default_factory=dict)


def process_tree(proc) -> list | None:
    """`proc` and its live descendants (psutil processes), or None when it cannot be read."""
    if proc is None:
        return None
    try:
        return [proc, *proc.children(recursive=True)]
    except PsutilError:
        return None


def tree_cpu(procs: list | None) -> float | None:
    """user+sys seconds of a :func:`process_tree` (live processes, plus children they reaped)."""
    if procs is None:
        return None
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except PsutilError:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def tree_wakeups(procs: list | None) -> int | None:
    """Voluntary context switches of every thread of a :func:`process_tree`: each is one
    sleep and wake-up. Per thread, from /proc (psutil counts the main thread only, and
    surge hit's compiled loop runs in another). None off Linux."""
    if procs is None:
        return None
    total, seen = 0, False
    for p in procs:
        for status in Path(f"/proc/{p.pid}/task").glob("*/status"):
            try:
                text = status.read_text()
            except OSError:  # the thread or process ended
                continue
            m = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", text, re.M)
            if m:
                total += int(m.group(1))
                seen = True
    return total if seen else None


def proc_cpu(proc) -> float | None:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except (PsutilError, AttributeError):
        return None


def system_cpu() -> tuple[tuple[float, float] | None, float | None]:
    """Machine-wide (user+nice+system, steal) CPU seconds, and this harness's own."""
    if psutil is None:
        return None, None
    t = psutil.cpu_times()
    return (t.user + t.nice + t.system, getattr(t, "steal", 0.0)), proc_cpu(psutil.Process())


def launch(cmd: list[str], ctx: Ctx, env: dict) -> tuple[subprocess.Popen, object, object]:
    out = (ctx.workdir / "stdout").open("w+")
    err = (ctx.workdir / "stderr").open("w+")
    full_env = {**os.environ, **env}
    full_env["PATH"] = full_env.get("PATH", "") + os.pathsep + EXTRA_PATH
    proc = subprocess.Popen(
        ["taskset", "-c", str(CLIENT_CORE), *cmd],
        stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ctx.workdir, env=full_env,
        start_new_session=True,
    )  # fmt: skip
    return proc, out, err


def sample_until_exit(proc: subprocess.Popen, nginx: Nginx, t0: float, limit: float):
    """Sample counters until the child exits; returns (samples, wait status, rusage)."""
    ps_child = psutil.Process(proc.pid) if psutil else None
    worker = nginx.worker()
    samples: list[Sample] = []
    next_at = 0.0
    killed = False
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return samples, status, rusage
        now = time.monotonic() - t0
        if now >= next_at:
            tree = process_tree(ps_child)  # walked once per sample, for both counters
            samples.append(Sample(now, nginx.requests(), tree_cpu(tree), proc_cpu(worker), *system_cpu(),
                                  wakeups=tree_wakeups(tree)))
            next_at = now + SAMPLE_EVERY
        if now > limit and not killed:
            os.killpg(proc.pid, signal.SIGINT)
            killed = True
        elif now > limit + 5:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.02)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        pass


def steady_window(samples: list[Sample], duration: int) -> tuple[Sample, Sample] | None:
    """First/last sample of the steady phase: traffic start + warm-up .. end - margin."""
    if len(samples) < 3:
        return None
    base = samples[0].served
    started = next((s.t for i, s in enumerate(samples) if s.served - base - i > 5), None)
    if started is None:
        return None
    warm = min(2.0, 0.2 * duration)
    lo, hi = started + warm, started + duration - 0.4
    inside = [s for s in samples if lo <= s.t <= hi and s.cpu is not None]
    if len(inside) < 2 or inside[-1].t - inside[0].t < 0.5:
        return None
    return inside[0], inside[-1]


def measure(tool: Tool, mode: str, rnd: int, nginx: Nginx, args) -> Run:
    run = Run(tool.name, mode, rnd)
    if mode == "rate" and tool.no_rate:
        run.reason = tool.no_rate
        return run
    exe = tool.binary()
    if not exe:
        run.reason = "not installed (bash bench/setup.sh)"
        return run
    rate = args.rate if mode == "rate" else None
    with tempfile.TemporaryDirectory(prefix=f"surge-bench-{tool.name}-") as wd:
        ctx = Ctx(nginx.url, args.duration, args.connections, rate, Path(wd))
        served_before = nginx.requests()
        t0 = time.monotonic()
        proc, out_f, err_f = launch(tool.command(exe, ctx), ctx, tool.env(ctx))
        try:
            samples, status, rusage = sample_until_exit(proc, nginx, t0, args.duration + 30)
        except BaseException:  # harness error or Ctrl-C: don't leave the tool running
            kill_group(proc)
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        run.wall_s = round(time.monotonic() - t0, 2)
        served = nginx.requests() - served_before - len(samples) - 1
        out_f.seek(0), err_f.seek(0)
        stdout, stderr = out_f.read(), err_f.read()
        out_f.close(), err_f.close()
        parsed = tool.parse(stdout, stderr, ctx)
    run.exit_code = proc.returncode
    run.served_total = served
    run.tool_requests, run.tool_errors, run.tool_rps = parsed.requests, parsed.errors, parsed.rps
    run.extra = parsed.extra
    if parsed.requests is None and served < 100:
        run.reason = f"exit {proc.returncode}: {last_line(stderr or stdout)}"
        return run
    if served > 0:
        run.cpu_us_per_req_whole = (rusage.ru_utime + rusage.ru_stime) / served * 1e6
    fill_window(run, samples, args.duration)
    run.ok = run.rps is not None
    if not run.ok:
        run.reason = f"no steady window; exit {proc.returncode}: {last_line(stderr or stdout)}"
    return run


def fill_window(run: Run, samples: list[Sample], duration: int) -> None:
    window = steady_window(samples, duration)
    if window is None:
        return
    a, b = window
    span = b.t - a.t
    served = (b.served - a.served) - (samples.index(b) - samples.index(a))  # minus status hits
    run.window_s = round(span, 2)
    run.rps = served / span
    if served > 0 and a.cpu is not None and b.cpu is not None:
        run.cpu_us_per_req = (b.cpu - a.cpu) / served * 1e6
    if a.server_cpu is not None and b.server_cpu is not None:
        run.server_busy = (b.server_cpu - a.server_cpu) / span
    if a.wakeups is not None and b.wakeups is not None and b.wakeups >= a.wakeups:
        run.wakeups_per_s = (b.wakeups - a.wakeups) / span
    if None not in (
        a.system,
        b.system,
        a.harness_cpu,
        b.harness_cpu,
        a.cpu,
        b.cpu,
        a.server_cpu,
        b.server_cpu,
    ):
        ours = (b.cpu - a.cpu) + (b.server_cpu - a.server_cpu) + (b.harness_cpu - a.harness_cpu)
        run.other_busy = max(0.0, (b.system[0] - a.system[0]) - ours) / span
        run.steal = (b.system[1] - a.system[1]) / span


# --------------------------------------------------------------------------- summary


@dataclass
class Summary:
    tool: str
    rps: float | None = None
    cpu_us: float | None = None
    cpu_us_whole: float | None = None
    rate_achieved: float | None = None
    server_busy: float | None = None  # nginx worker core share at max req/s
    client_busy: float | None = None  # generator core share at max req/s
    other_busy: float | None = None  # worst noise (other processes + steal) in the runs used
    rounds_ok: str = ""  # runs used for the medians / successful / attempted
    rps_reason: str | None = None
    cpu_reason: str | None = None
    lag_p99_ms: float | None = None  # surge at the fixed rate: typical second's schedule-lag p99 (median of runs)
    wakeups_per_s: float | None = None  # generator wake-ups per s at the fixed rate (median of runs)
    notes: list[str] = field(default_factory=list)


def median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def noise(r: Run) -> float:
    """Share of a core taken by other processes plus steal during the run's window."""
    return (r.other_busy or 0.0) + (r.steal or 0.0)


def usable(runs: list[Run]) -> list[Run]:
    """Successful runs, without the noisy ones when at least one quiet run exists."""
    ok = [r for r in runs if r.ok]
    return [r for r in ok if noise(r) <= NOISY] or ok


def summarize(tool: str, runs: list[Run], rate: int) -> Summary:
    mine = [r for r in runs if r.tool == tool]
    mx = usable([r for r in mine if r.mode == "max"])
    rt = usable([r for r in mine if r.mode == "rate"])
    s = Summary(tool)
    s.rps = median([r.rps for r in mx])
    s.server_busy = median([r.server_busy for r in mx])
    s.client_busy = median([r.rps * r.cpu_us_per_req / 1e6 for r in mx if r.cpu_us_per_req])
    s.cpu_us = median([r.cpu_us_per_req for r in rt])
    s.cpu_us_whole = median([r.cpu_us_per_req_whole for r in rt])
    s.rate_achieved = median([r.rps for r in rt])
    s.wakeups_per_s = median([r.wakeups_per_s for r in rt])
    if s.rps is None:
        s.rps_reason = next((r.reason for r in mine if r.mode == "max" and r.reason), "failed")
    if s.cpu_us is None:
        s.cpu_reason = next((r.reason for r in mine if r.mode == "rate" and r.reason), "failed")
    s.notes = summary_notes(s, mine, mx + rt, rate)
    return s


def summary_notes(s: Summary, mine: list[Run], used: list[Run], rate: int) -> list[str]:
    notes = []
    if s.server_busy is not None and s.client_busy is not None:
        notes.append(f"max: gen {s.client_busy:.0%}/nginx {s.server_busy:.0%} core")
    s.other_busy = max((noise(r) for r in used), default=None)
    if s.other_busy is not None and s.other_busy > NOISY:
        notes.append(f"noisy: others used up to {s.other_busy:.0%} core")
    ok = [r for r in mine if r.ok]
    if len(used) < len(ok):
        notes.append(f"{len(ok) - len(used)} noisy run(s) dropped")
    attempted = [r for r in mine if not (r.mode == "rate" and TOOLS[r.tool].no_rate)]
    if 0 < len(ok) < len(attempted):
        notes.append(f"{len(attempted) - len(ok)} run(s) failed")
    s.rounds_ok = f"{len(used)} used, {len(ok)} ok, {len(mine)} runs"
    if s.rate_achieved is not None and s.rate_achieved < 0.95 * rate:
        notes.append(f"@{rate // 1000}k reached only {s.rate_achieved:,.0f} req/s")
    # Schedule lag: the typical second's p99 (the target's "when not saturated") and the
    # worst second's, which on a VM is set by hypervisor steal bursts (steal_max shows them).
    lag = median([r.extra.get("sched_lag_p99_ms_median") for r in mine if r.ok and r.mode == "rate"])
    worst = median([r.extra.get("sched_lag_p99_ms_max") for r in mine if r.ok and r.mode == "rate"])
    steal = max((r.extra.get("steal_max") or 0.0 for r in mine if r.ok and r.mode == "rate"), default=None)
    s.lag_p99_ms = lag
    if lag is not None:
        notes.append(f"@{rate // 1000}k sched lag p99 {lag:.2f} ms typical, {worst:.2f} worst second"
                     + (f" (steal up to {steal:.1f}%)" if steal else ""))
    if s.wakeups_per_s is not None:
        # On these VMs each wake-up of an idle vCPU costs tens of us of CPU: the main
        # term of CPU per request at a fixed rate (docs/benchmarks.md).
        notes.append(f"@{rate // 1000}k {s.wakeups_per_s:,.0f} wake-ups/s")
    errs = sum(r.tool_errors or 0 for r in mine)
    if errs:
        notes.append(f"{errs:,} errors reported")
    return notes


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}x"


def table_rows(summaries: list[Summary]) -> list[list[str]]:
    by = {s.tool: s for s in summaries}
    wrk_rps = by["wrk"].rps if "wrk" in by else None
    h2_cpu = by["h2load"].cpu_us if "h2load" in by else None
    rows = []
    for s in summaries:
        rps = fmt_num(s.rps) if s.rps is not None else f"n/a ({s.rps_reason})"
        cpu = fmt_num(s.cpu_us, 1) if s.cpu_us is not None else f"n/a ({s.cpu_reason})"
        whole = fmt_num(s.cpu_us_whole, 1)
        rows.append(
            [s.tool, rps, ratio(s.rps, wrk_rps), cpu, ratio(s.cpu_us, h2_cpu), whole,
             "; ".join(s.notes)]
        )  # fmt: skip
    return rows


def targets(summaries: list[Summary]) -> list[dict]:
    by = {s.tool: s for s in summaries}

    def get(tool: str, attr: str) -> float | None:
        return getattr(by[tool], attr) if tool in by else None

    def check(name: str, value, limit, ok: Callable[[float, float], bool], unit: str) -> dict:
        if value is None or limit is None:
            verdict = "n/a"
        else:
            verdict = "PASS" if ok(value, limit) else "MISS"
        return {"target": name, "value": value, "limit": limit, "unit": unit, "verdict": verdict}

    wrk_rps = get("wrk", "rps")
    return [
        check("surge hit >= 0.9x wrk req/s", get("surge-hit", "rps"),
              wrk_rps * HIT_VS_WRK_RPS if wrk_rps else None, lambda v, lim: v >= lim, "req/s"),
        check("surge hit CPU/req @rate <= h2load (default 2 ms slots: 5x finer bursts than h2load's)",
              get("surge-hit", "cpu_us"), get("h2load", "cpu_us"), lambda v, lim: v <= lim, "us/req"),
        check("surge hit CPU/req @rate <= h2load at h2load's burst shape (10 ms slots)",
              get(LIKE_H2LOAD, "cpu_us"), get("h2load", "cpu_us"), lambda v, lim: v <= lim, "us/req"),
        check("surge hit sched lag p99 @rate < 1 ms (typical second)", get("surge-hit", "lag_p99_ms"), 1.0,
              lambda v, lim: v < lim, "ms"),
        check(f"scenario >= {SCENARIO_MIN_RPS:,} req/s on 1 core", get("surge-run", "rps"),
              SCENARIO_MIN_RPS, lambda v, lim: v >= lim, "req/s"),
        check(f"scenario CPU/req @rate <= {SCENARIO_MAX_CPU_US:g} us", get("surge-run", "cpu_us"),
              SCENARIO_MAX_CPU_US, lambda v, lim: v <= lim, "us/req"),
    ]  # fmt: skip


HEADERS = ["tool", "max req/s", "vs wrk", "CPU us/req @{k}k", "vs h2load", "incl. startup", "notes"]


def print_report(summaries: list[Summary], checks: list[dict], args) -> None:
    headers = [h.format(k=args.rate // 1000) for h in HEADERS]
    rows = table_rows(summaries)
    title = (
        f"{args.connections} conns, {args.duration}s x {args.rounds} rounds (median), "
        f"server core {SERVER_CORE}, generator core {CLIENT_CORE}"
    )
    target_lines = [
        f"{c['verdict']:<4}  {c['target']}: "
        f"{fmt_num(c['value'], d)} (limit {fmt_num(c['limit'], d)} {c['unit']})"
        for c in checks
        for d in [0 if c["unit"] == "req/s" else 1]
    ]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
        for r in [headers, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        print("\n" + "\n".join(target_lines))
        return
    table = Table(title=title)
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i in (0, 6) else "right")
    for r in rows:
        table.add_row(*r)
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(table)
    colour = {"PASS": "green", "MISS": "red", "n/a": "yellow"}
    for c, line in zip(checks, target_lines, strict=True):
        console.print(line, style=colour[c["verdict"]], highlight=False)


# --------------------------------------------------------------------------- main


def warn_if_noisy(runs: list[Run]) -> None:
    measured = [r for r in runs if r.ok and r.other_busy is not None]
    noisy = [r for r in measured if r.other_busy + (r.steal or 0) > NOISY]
    if noisy:
        print(
            f"warning: in {len(noisy)} of {len(measured)} runs other processes (or steal) used "
            f"more than {NOISY:.0%} of a core; max req/s is unreliable, rerun on a quiet machine",
            file=sys.stderr,
        )


def parse_args(argv: list[str] | None = None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_tools = [t for t in TOOLS if t not in VARIANTS]
    p.add_argument("--tools", default=",".join(default_tools),
                   help="comma list from: " + ",".join(TOOLS) + f" (default: all but {', '.join(VARIANTS)})")
    p.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    p.add_argument(
        "--connections", type=int, default=50, help="keep-alive connections (default 50)"
    )
    p.add_argument(
        "--rate", type=int, default=5000, help="fixed rate for the CPU figure (default 5000)"
    )
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    p.add_argument("--base-rev", metavar="REV",
                   help="also run surge at git revision REV (e.g. HEAD~1) as surge-hit@base / surge-run@base")
    args = p.parse_args(argv)
    if args.base_rev:
        args.tools += "," + ",".join(add_base_revision(args.base_rev))
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in args.tools if t not in TOOLS]
    if unknown:
        p.error(f"unknown tool(s) {unknown}; choose from {list(TOOLS)}")
    return args


def check_machine() -> None:
    global SERVER_CORE, CLIENT_CORE
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        print("warning: only one core available; server and generator share it", file=sys.stderr)
        SERVER_CORE = CLIENT_CORE = cores[0]
    else:
        SERVER_CORE, CLIENT_CORE = cores[0], cores[1]
    if not which("taskset"):
        raise SystemExit("taskset not found (util-linux)")
    # Keep this harness (a light sampler) off the generator's core.
    os.sched_setaffinity(0, {SERVER_CORE})


def save(runs: list[Run], summaries: list[Summary], checks: list[dict], args) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}.json"
    doc = {
        "timestamp": stamp,
        "host": {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release()},
        "config": {
            k: getattr(args, k) for k in ("tools", "duration", "rounds", "connections", "rate")
        }
        | {"server_core": SERVER_CORE, "client_core": CLIENT_CORE},
        "summary": [asdict(s) for s in summaries],
        "targets": checks,
        "runs": [asdict(r) for r in runs],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_machine()
    nginx = Nginx()
    nginx.start()
    runs: list[Run] = []
    try:
        for rnd in range(1, args.rounds + 1):
            for name in args.tools:
                for mode in ("max", "rate"):
                    try:
                        run = measure(TOOLS[name], mode, rnd, nginx, args)
                    except (OSError, ValueError, PsutilError) as exc:
                        run = Run(name, mode, rnd, reason=f"harness error: {exc!r}"[:90])
                    runs.append(run)
                    shown = fmt_num(run.rps) + " req/s" if run.ok else f"n/a ({run.reason})"
                    cpu = f", {run.cpu_us_per_req:.1f} us/req" if run.cpu_us_per_req else ""
                    print(f"[round {rnd}] {name:<12} {mode:<4} {shown}{cpu}", file=sys.stderr)
                    if run.exit_code is not None:
                        time.sleep(1)  # let sockets settle between runs
    except KeyboardInterrupt:
        print("interrupted; reporting what was measured", file=sys.stderr)
    finally:
        nginx.stop()
    summaries = [summarize(name, runs, args.rate) for name in args.tools]
    checks = targets(summaries)
    print_report(summaries, checks, args)
    warn_if_noisy(runs)
    if not args.no_save:
        print(f"results: {save(runs, summaries, checks, args).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
