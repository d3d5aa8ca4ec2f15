"""``--py-spy PID``: sample the SUT's Python stacks with py-spy over the steady state.

py-spy runs as a subprocess (``record --format raw``), started by a timer at
the start of the profiling window and stopped by itself at its end, or with
SIGINT (it then still writes its file) when the run ends early. Its raw output
is rewritten into ``profile.collapsed``: one ``frame;frame;frame count`` line
per stack. py-spy's ``process PID:"cmdline"`` root frames can span lines (a
command line with newlines); they are joined and shortened to ``process PID
(program)``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from surge.results.sut_files import PROFILE_FILE

RATE = 100  # samples/s
STOP_GRACE = 5.0  # s py-spy gets to write its file after SIGINT

PTRACE_HELP = ("py-spy may not attach to process {pid} (ptrace is not permitted): run surge as root, "
               "or allow it with `sudo sysctl kernel.yama.ptrace_scope=0`, or in Docker start the "
               "container with `--cap-add SYS_PTRACE`; the run went on without a profile")
_PERMISSION = re.compile(r"permission denied|operation not permitted|ptrace|EPERM|requires root|elevated permissions", re.IGNORECASE)
_PROCESS = re.compile(r'^process (\d+):"(.*?)"$', re.DOTALL)


def find_py_spy() -> str | None:
    """The py-spy executable: beside this Python (a virtualenv) first, then on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def _short_process(frame: str) -> str:
    m = _PROCESS.match(frame)
    if not m:
        return frame
    words = m.group(2).split()
    prog = " ".join(os.path.basename(w) if i == 0 else w for i, w in enumerate(words[:3]))
    return f"process {m.group(1)} ({prog[:60]})"


def raw_to_collapsed(raw: str) -> str:
    """py-spy's raw output into clean ``stack count`` lines (see the module docstring)."""
    out: list[str] = []
    pending = ""
    for line in raw.splitlines():
        pending = f"{pending} {line}" if pending else line
        stack, sep, count = pending.rpartition(" ")
        if not sep or not count.isdigit() or not stack:
            continue  # a frame that goes on in the next line
        head = ""
        if stack.startswith("process ") and '";' in stack:  # its command line may hold ';'
            cut = stack.index('";') + 1
            head, stack = _short_process(stack[:cut]), stack[cut + 1:]
        frames = ([head] if head else []) + stack.split(";")
        out.append(f"{';'.join(frames)} {count}")
        pending = ""
    return "\n".join(out) + ("\n" if out else "")


class Profiler:
    """One py-spy recording of ``pid`` from ``start_s`` for ``duration_s`` seconds.

    :meth:`schedule` arms a timer (on its own thread, never the run's event
    loop); :meth:`finish` stops py-spy if it still runs, writes
    ``profile.collapsed`` into the run directory and returns a warning line
    when something went wrong (None on success).
    """

    def __init__(self, pid: int, run_dir: Path | None, duration_s: float, exe: str | None = None) -> None:
        self.pid, self.run_dir, self.duration_s = pid, run_dir, duration_s
        self.exe = exe if exe is not None else find_py_spy()
        self._proc: subprocess.Popen | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._finished = False
        self._tmp = Path(tempfile.mkdtemp(prefix="surge-pyspy-"))
        self._out = self._tmp / "raw.txt"
        self._err = self._tmp / "stderr.txt"
        self.start_error: str | None = None

    def __repr__(self) -> str:
        return f"<Profiler pid={self.pid} {self.duration_s:.0f}s>"

    def command(self) -> list[str]:
        return [self.exe or "py-spy", "record", "--pid", str(self.pid), "--format", "raw", "--rate", str(RATE),
                "--subprocesses", "--nonblocking", "--nolineno", "-o", str(self._out),
                "--duration", str(max(int(round(self.duration_s)), 1))]

    def schedule(self, delay_s: float) -> None:
        """Start py-spy ``delay_s`` s from now."""
        self._timer = threading.Timer(max(delay_s, 0.0), self.start)
        self._timer.daemon = True
        self._timer.start()

    def start(self) -> None:
        with self._lock:
            if self._finished or self._proc is not None:
                return
            if self.exe is None:
                self.start_error = ("py-spy is not installed: `pip install py-spy` (it comes with surge's "
                                    "dependencies); the run went on without a profile")
                return
            with open(self._err, "wb") as err:
                try:
                    self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                                  stdout=subprocess.DEVNULL, stderr=err)
                except OSError as exc:
                    self.start_error = f"py-spy could not be started ({exc}); the run went on without a profile"

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for py-spy to exit by itself; whether it has."""
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def finish(self) -> str | None:
        """Stop and collect; the warning to show, or None when ``profile.collapsed`` was written."""
        with self._lock:
            self._finished = True
        if self._timer is not None:
            self._timer.cancel()
        try:
            return self._collect()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _collect(self) -> str | None:
        if self.start_error:
            return self.start_error
        proc = self._proc
        if proc is None:
            return "the run ended before the profiling window began: no profile (make the run longer)"
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err = self._err.read_text(errors="replace") if self._err.exists() else ""
        raw = self._out.read_text(errors="replace") if self._out.exists() else ""
        collapsed = raw_to_collapsed(raw)
        if not collapsed:
            return self._explain(proc.returncode, err)
        if self.run_dir is not None:
            (self.run_dir / PROFILE_FILE).write_text(collapsed, encoding="utf-8")
        return None

    def _explain(self, rc: int | None, err: str) -> str:
        lines = [ln.strip() for ln in err.splitlines() if ln.strip() and not ln.startswith("py-spy>")]
        first = next((ln for ln in lines if ln.lower().startswith("error")), lines[0] if lines else "")
        if _PERMISSION.search(err):
            return PTRACE_HELP.format(pid=self.pid) + (f" (py-spy: {first})" if first else "")
        if rc == 0 and not first:
            return f"py-spy recorded no samples of process {self.pid} (was it idle, or not a Python process?)"
        return f"py-spy failed on process {self.pid} (exit {rc}): {first or 'no message'}; the run went on without a profile"
