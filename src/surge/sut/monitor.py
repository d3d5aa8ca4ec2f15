"""One run's SUT monitoring: launch, sample, profile, pull Prometheus, clean up.

:class:`SutMonitor` is a context manager around the engine's ``execute()`` and
one of its outputs:

- ``open()`` / ``__enter__``: starts the ``--launch`` command and waits until it listens,
  resolves every ``--monitor`` target and the ``--py-spy`` PID; a target that
  does not exist is a UsageError before any load is sent;
- ``start(meta)`` (called by the coordinator once the workers are forked, with
  the run's ``start_ns``): starts the sampler thread and arms the profiler, on
  the same monotonic time axis as the run's seconds;
- ``close()`` / ``__exit__`` (also on Ctrl-C and errors): stops py-spy, the sampler and the
  launched process, then pulls Prometheus. Failures become :attr:`warnings`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psutil

from surge.api.errors import UsageError
from surge.results.sut_files import PROMETHEUS_FILE
from surge.sut.launch import Launched, launch
from surge.sut.procs import Tracked, resolve
from surge.sut.prometheus import pull
from surge.sut.pyspy import Profiler
from surge.sut.sampler import NS, Sampler
from surge.sut.spec import LAUNCHED, MonitorSpec
from surge.sut.summary import sut_summary


class SutMonitor:
    """Monitoring of the system under test for one run (see the module docstring).

    ``window``: (start, end) of the py-spy recording in s since the run's start
    (:func:`surge.sut.spec.steady_window`).
    """

    def __init__(self, spec: MonitorSpec, run_dir: Path | None, window: tuple[float, float] = (0.0, 1.0)) -> None:
        self.spec, self.run_dir, self.window = spec, run_dir, window
        self.warnings: list[str] = []
        self.launched: Launched | None = None
        self.tracked: list[Tracked] = []
        self.sampler: Sampler | None = None
        self.profiler: Profiler | None = None
        self._py_spy_pid: int | None = None
        self._start_unix: float | None = None
        self._opened = False
        self._ended = False

    def __repr__(self) -> str:
        return f"<SutMonitor {[t.label for t in self.tracked]} launched={self.launched!r}>"

    # ------------------------------------------------------------ before the load

    def __enter__(self) -> SutMonitor:
        self.open()
        return self

    def open(self) -> None:
        """Launch the SUT and resolve the targets (once); UsageError when one does not exist."""
        if self._opened:
            return
        self._opened = True
        try:
            if self.spec.launch:
                self.launched = launch(self.spec.launch, self.spec.wait_url, self.spec.launch_timeout)
                self.tracked.append(Tracked(LAUNCHED, [psutil.Process(self.launched.pid)]))
            labels = {t.label for t in self.tracked}
            for target in self.spec.targets:
                label, roots = resolve(target)
                while label in labels:
                    label += "'"
                labels.add(label)
                self.tracked.append(Tracked(label, roots))
            if self.spec.py_spy is not None:
                self._py_spy_pid = self._py_spy_target()
        except BaseException:
            self.close()
            raise

    def attach(self, run_dir: Path | None) -> None:
        """Write the SUT files into ``run_dir`` (known only once the run id is chosen)."""
        self.run_dir = run_dir

    def _py_spy_target(self) -> int:
        if self.spec.py_spy == LAUNCHED:
            assert self.launched is not None
            return self.launched.pid
        pid = int(self.spec.py_spy or 0)
        if not psutil.pid_exists(pid):
            raise UsageError(f"--py-spy {pid}: no process with that PID; check it with `ps -p {pid}`")
        return pid

    # ------------------------------------------------------------ Output protocol

    def start(self, meta: dict[str, Any]) -> None:
        """The run starts at ``meta['start_ns']`` (monotonic): start sampling and arm the profiler."""
        start_ns = int(meta["start_ns"])
        now_ns = time.monotonic_ns()
        self._start_unix = time.time() + (start_ns - now_ns) / NS
        self.sampler = Sampler(self.tracked, start_ns, self.run_dir, self.spec.interval)
        self.sampler.start()
        if self._py_spy_pid is not None:
            w0, w1 = self.window
            self.profiler = Profiler(self._py_spy_pid, self.run_dir, w1 - w0)
            self.profiler.schedule(w0 - (now_ns - start_ns) / NS)

    def second(self, st: Any, row: dict[str, Any]) -> None:
        pass  # the sampler keeps its own time

    def finish(self, summary: dict[str, Any], agg: Any, meta_update: dict[str, Any]) -> None:
        pass  # everything was done in __exit__, before the summary was built

    # ------------------------------------------------------------ after the load

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop everything, once; collect warnings. Never raises.

        The launched SUT is stopped in a ``finally``: a second Ctrl-C while the
        profiler or sampler winds down must not leave it running (it has its own
        session, so the terminal's Ctrl-C never reaches it).
        """
        if self._ended:
            return
        self._ended = True
        end_unix = time.time()
        try:
            if self.profiler is not None:
                why = self.profiler.finish()
                self._warn(why)
                if why is None and self.run_dir is None:
                    self._warn("the profile was not kept: --no-save writes no run directory")
            if self.sampler is not None:
                self.sampler.stop()
                self._warn(self.sampler.error)
                for label, pid, t in self.sampler.exits:
                    self._warn(f"monitored process {pid} ({label}) exited at {t:.0f} s; sampling of it stopped")
        finally:
            if self.launched is not None:
                if self.sampler is None or not any(lbl == LAUNCHED for lbl, _, _ in self.sampler.exits):
                    self._warn(self.launched.exit_note())
                self.launched.stop()
        if self.spec.prometheus_url and self._start_unix is not None:
            self._pull_prometheus(self._start_unix, end_unix)

    def _pull_prometheus(self, start: float, end: float) -> None:
        assert self.spec.prometheus_url is not None
        doc, warnings = pull(self.spec.prometheus_url, self.spec.queries, start, end, start)
        self.warnings.extend(warnings)
        if self.run_dir is not None and self.run_dir.is_dir():
            (self.run_dir / PROMETHEUS_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")

    def _warn(self, line: str | None) -> None:
        if line:
            self.warnings.append(line)

    # ------------------------------------------------------------ results

    @property
    def samples(self) -> list[dict[str, Any]]:
        return self.sampler.samples if self.sampler is not None else []

    def summary(self) -> dict[str, Any] | None:
        """The ``sut`` block of summary.json, or None when nothing was sampled."""
        if not self.tracked:
            return None
        return sut_summary(self.samples)
