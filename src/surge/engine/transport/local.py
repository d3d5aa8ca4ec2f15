"""Workers as local processes connected by pipes."""

from __future__ import annotations

import multiprocessing as mp
import sys
from multiprocessing.connection import Connection, wait
from typing import Any

from surge.engine.messages import WorkerPlan


def _context():
    # fork starts a worker in ~10 ms instead of ~300 ms; the coordinator forks
    # before it starts any thread or event loop.
    return mp.get_context("fork" if sys.platform == "linux" else "spawn")


def _worker_entry(plan: WorkerPlan, conn: Connection, inherited: list[int]) -> None:
    import os

    from surge.engine.worker import worker_main

    for fd in inherited:
        try:
            os.close(fd)
        except OSError:
            pass
    worker_main(plan, conn)


class LocalProcessTransport:
    """One OS process per worker; messages are pickled over a duplex pipe."""

    def __init__(self) -> None:
        self._procs: list[mp.Process] = []
        self._conns: list[Connection] = []
        self._gone: set[int] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<LocalProcessTransport workers={len(self._procs)}>"

    def start(self, plans: list[WorkerPlan]) -> None:
        ctx = _context()
        for plan in plans:
            parent, child = ctx.Pipe(duplex=True)
            # A forked worker inherits the coordinator's ends of every pipe; it must
            # close them, or it would never see EOF when the coordinator dies.
            forked = ctx.get_start_method() == "fork"
            inherited = [c.fileno() for c in (*self._conns, parent)] if forked else []
            p = ctx.Process(target=_worker_entry, args=(plan, child, inherited),
                            name=f"surge-worker-{plan.index}", daemon=True)
            p.start()
            child.close()
            self._procs.append(p)
            self._conns.append(parent)

    def poll(self, timeout: float) -> list[Any]:
        if self._closed:
            return []
        live = [c for i, c in enumerate(self._conns) if i not in self._gone]
        out: list[Any] = []
        if not live:
            return out
        for c in wait(live, timeout):
            i = self._conns.index(c)
            try:
                while c.poll():
                    out.append(c.recv())
            except (EOFError, OSError):
                self._gone.add(i)
        return out

    def broadcast(self, message: Any) -> None:
        if self._closed:
            return
        for i, c in enumerate(self._conns):
            if i in self._gone:
                continue
            try:
                c.send(message)
            except (BrokenPipeError, OSError):
                self._gone.add(i)

    def dead(self) -> dict[int, str]:
        out = {}
        for i, p in enumerate(self._procs):
            if not p.is_alive() and p.exitcode not in (0, None):
                out[i] = f"exit code {p.exitcode}"
            elif i in self._gone and not p.is_alive():
                out[i] = f"exit code {p.exitcode}"
        return out

    def close(self, kill: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        for p in self._procs:
            if kill and p.is_alive():
                p.kill()
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=2)
        for c in self._conns:
            c.close()
