"""Monitored processes: resolving ``--monitor`` targets, and sampling a process
with all its descendants (a uvicorn master and its workers) as one unit."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import psutil

from surge.api.errors import UsageError

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)
_MB = 1024 * 1024
_FIELDS = ("cpu_pct", "cpu_share_pct", "rss_mb", "threads", "fds", "read_bps", "write_bps",
           "ctx_vol_ps", "ctx_invol_ps")


def _own_line() -> set[int]:
    """This process and its ancestors (their command lines hold the --monitor word): never matched."""
    me = psutil.Process()
    pids = {me.pid}
    try:
        pids.update(p.pid for p in me.parents())
    except _GONE:
        pass
    return pids


def _matches(proc: psutil.Process, name: str) -> bool:
    try:
        if name in proc.name():
            return True
        return any(name in os.path.basename(arg) or name == arg for arg in proc.cmdline())
    except (psutil.Error, OSError):
        return False


def find_by_name(name: str) -> list[psutil.Process]:
    """Top-level processes whose name or a command-line word contains ``name``.

    A match whose parent also matches is left out: it is counted as a child of
    that parent. surge and its ancestors (a shell, a CI runner) never match.
    """
    own = _own_line()
    found = [p for p in psutil.process_iter() if p.pid not in own and _matches(p, name)]
    pids = {p.pid for p in found}
    roots = []
    for p in found:
        try:
            if not any(a.pid in pids for a in p.parents()):
                roots.append(p)
        except _GONE:
            continue
    return roots


def resolve(target: str) -> tuple[str, list[psutil.Process]]:
    """A ``--monitor`` value (PID or name) into (label, root processes).

    Raises UsageError when nothing matches: monitoring is checked before the load starts.
    """
    target = target.strip()
    if target.isdigit():
        pid = int(target)
        try:
            proc = psutil.Process(pid)
            label = f"{proc.name()}:{pid}"
        except psutil.NoSuchProcess:
            raise UsageError(f"--monitor {pid}: no process with that PID; check it with `ps -p {pid}`") from None
        except psutil.AccessDenied:
            label = f"pid:{pid}"
        return label, [proc]
    if not target:
        raise UsageError("--monitor needs a PID or a process name, e.g. --monitor uvicorn")
    roots = find_by_name(target)
    if not roots:
        raise UsageError(f"--monitor {target!r}: no running process has that name or command-line word; "
                         "check with `ps aux`, or give a PID")
    return target, roots


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except _GONE:
        return False


@dataclass
class _Counters:
    cpu: float  # user + system s
    read: int | None
    write: int | None
    vol: int
    invol: int


def _read(p: psutil.Process) -> tuple[_Counters, float, int, int | None] | None:
    """Counters, RSS (bytes), threads and fds of one process; None when it is gone."""
    try:
        with p.oneshot():
            t = p.cpu_times()
            ctx = p.num_ctx_switches()
            try:
                io = p.io_counters()
                rd, wr = io.read_bytes, io.write_bytes
            except (psutil.AccessDenied, AttributeError):
                rd = wr = None
            try:
                fds = p.num_fds()
            except (psutil.AccessDenied, AttributeError):
                fds = None
            return (_Counters(t.user + t.system, rd, wr, ctx.voluntary, ctx.involuntary),
                    p.memory_info().rss, p.num_threads(), fds)
    except (*_GONE, psutil.AccessDenied):
        return None


@dataclass
class Tracked:
    """A monitored unit: root processes plus their descendants, sampled together.

    Rates are computed from counter deltas between two samples; a process first
    seen in this sample (a new worker) contributes all its counters, one gone
    since the last sample contributes nothing more.
    """

    label: str
    roots: list[psutil.Process]
    exited_at: float | None = None
    _last: dict[int, _Counters] = field(default_factory=dict)
    _primed: bool = False

    @property
    def pid(self) -> int:
        return self.roots[0].pid

    def alive(self) -> bool:
        return any(_alive(r) for r in self.roots)

    def _members(self) -> list[psutil.Process]:
        out = []
        for r in self.roots:
            if not _alive(r):
                continue
            out.append(r)
            try:
                out.extend(r.children(recursive=True))
            except _GONE:
                pass
        return out

    def sample(self, dt: float) -> dict[str, Any]:
        """One record of this unit (see docs/monitoring.md); ``dt``: s since the previous sample."""
        alive = self.alive()
        now: dict[int, _Counters] = {}
        rss = 0
        threads = 0
        fds: int | None = 0
        for p in self._members():
            got = _read(p)
            if got is None:
                continue
            c, r, th, fd = got
            now[p.pid] = c
            rss += r
            threads += th
            fds = None if fd is None or fds is None else fds + fd
        deltas = {"cpu": 0.0, "read": 0, "write": 0, "vol": 0, "invol": 0}
        io_known = True
        for pid, c in now.items():
            base = self._last.get(pid) if self._primed else c
            if base is None:  # new since the last sample: all it did happened in this interval
                base = _Counters(0.0, 0, 0, 0, 0)
            deltas["cpu"] += max(c.cpu - base.cpu, 0.0)
            if c.read is None or c.write is None:
                io_known = False
            else:
                deltas["read"] += max(c.read - (base.read or 0), 0)
                deltas["write"] += max(c.write - (base.write or 0), 0)
            deltas["vol"] += max(c.vol - base.vol, 0)
            deltas["invol"] += max(c.invol - base.invol, 0)
        self._last, self._primed = now, True
        if not now:  # gone (or unreadable): no figures rather than zeros
            return {"pid": self.pid, "alive": alive, "procs": 0, **dict.fromkeys(_FIELDS)}
        dt = max(dt, 1e-6)
        ncpu = psutil.cpu_count() or 1
        cpu_pct = 100.0 * deltas["cpu"] / dt
        return {
            "pid": self.pid,
            "alive": alive,
            "procs": len(now),
            "cpu_pct": round(cpu_pct, 2),
            "cpu_share_pct": round(cpu_pct / ncpu, 2),
            "rss_mb": round(rss / _MB, 3),
            "threads": threads,
            "fds": fds,
            "read_bps": round(deltas["read"] / dt, 1) if io_known else None,
            "write_bps": round(deltas["write"] / dt, 1) if io_known else None,
            "ctx_vol_ps": round(deltas["vol"] / dt, 1),
            "ctx_invol_ps": round(deltas["invol"] / dt, 1),
        }
