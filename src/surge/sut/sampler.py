"""The sampler thread: once a second, every monitored process and the machine.

It runs in the CLI process beside the coordinator, on its own thread (never on
an event loop), and is started only after the workers were forked. Sample
times are ``start_ns + k * interval`` on the monotonic clock the coordinator
used for the run's seconds, so the sample at ``t = k`` covers series second
``k - 1`` (see docs/monitoring.md).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any

import psutil

from surge.results.sut_files import SUT_FILE
from surge.sut.procs import Tracked

NS = 1_000_000_000
MIN_LAST_DT = 0.2  # s: a shorter final interval is too noisy to record


class SystemStats:
    """Machine-wide CPU (total and per core), memory and network rates from counter deltas."""

    def __init__(self) -> None:
        self._cpu = psutil.cpu_times(percpu=True)
        self._net = psutil.net_io_counters()

    def sample(self, dt: float) -> dict[str, Any]:
        cpu = psutil.cpu_times(percpu=True)
        net = psutil.net_io_counters()
        per_core = []
        busy_all = total_all = 0.0
        for a, b in zip(self._cpu, cpu, strict=False):
            total = sum(b) - sum(a)
            idle = (b.idle - a.idle) + (getattr(b, "iowait", 0.0) - getattr(a, "iowait", 0.0))
            busy = max(total - idle, 0.0)
            per_core.append(round(100.0 * busy / total, 1) if total > 0 else 0.0)
            busy_all += busy
            total_all += total
        dt = max(dt, 1e-6)
        out = {
            "cpu_pct": round(100.0 * busy_all / total_all, 1) if total_all > 0 else 0.0,
            "per_core": per_core,
            "mem_used_pct": round(psutil.virtual_memory().percent, 1),
            "net_rx_bps": round((net.bytes_recv - self._net.bytes_recv) / dt, 1) if net and self._net else None,
            "net_tx_bps": round((net.bytes_sent - self._net.bytes_sent) / dt, 1) if net and self._net else None,
        }
        self._cpu, self._net = cpu, net
        return out


class Sampler:
    """Samples ``tracked`` every ``interval`` s from ``start_ns`` until :meth:`stop`.

    Each record is appended to ``run_dir/sut.jsonl`` and flushed (a crash loses
    at most one sample) and kept in :attr:`samples`.
    """

    def __init__(self, tracked: list[Tracked], start_ns: int, run_dir: Path | None,
                 interval: float = 1.0) -> None:
        self.tracked, self.start_ns, self.run_dir, self.interval = tracked, start_ns, run_dir, interval
        self.samples: list[dict[str, Any]] = []
        self.exits: list[tuple[str, int, float]] = []  # (label, pid, t) of processes that ended
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="surge-sut-sampler", daemon=True)
        self._file: IO[str] | None = None
        self._last_t = 0.0
        self._sys: SystemStats | None = None

    def __repr__(self) -> str:
        return f"<Sampler {[t.label for t in self.tracked]} every {self.interval}s, {len(self.samples)} samples>"

    def _t(self) -> float:
        return (time.monotonic_ns() - self.start_ns) / NS

    def start(self) -> None:
        if self.run_dir is not None:
            self._file = open(self.run_dir / SUT_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling; records the final partial interval; returns when the thread is done."""
        self._stop.set()
        self._thread.join(timeout=10.0)
        if self._file is not None:
            self._file.close()
            self._file = None

    def _prime(self) -> None:
        self._sys = SystemStats()
        for tr in self.tracked:
            tr.sample(1.0)  # sets the counter baseline; the record is discarded

    def _run(self) -> None:
        try:
            # The baseline is taken at the run's start (the workers start then too).
            self._stop.wait(max(-self._t(), 0.0))
            self._prime()
            self._last_t = max(self._t(), 0.0)
            k = 1
            while not self._stop.wait(max(k * self.interval - self._t(), 0.0)):
                self._record()
                k = max(k + 1, int(self._t() / self.interval) + 1)  # skip slots missed under heavy load
            if self._t() - self._last_t >= MIN_LAST_DT:
                self._record()
        except Exception as exc:  # a sampler failure must never take the run with it
            self.error = f"resource sampling stopped: {type(exc).__name__}: {exc}"

    def _record(self) -> None:
        t = self._t()
        dt = t - self._last_t
        procs = {}
        for tr in self.tracked:
            rec = tr.sample(dt)
            if not rec["alive"] and tr.exited_at is None:
                tr.exited_at = t
                self.exits.append((tr.label, tr.pid, t))
            procs[tr.label] = rec
        assert self._sys is not None
        sample = {"t": round(t, 3), "dt": round(dt, 3), "procs": procs, "sys": self._sys.sample(dt)}
        self._last_t = t
        self.samples.append(sample)
        if self._file is not None:
            self._file.write(json.dumps(sample, separators=(",", ":")) + "\n")
            self._file.flush()
