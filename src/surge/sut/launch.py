"""``--launch CMD``: start the SUT under surge, wait until it listens, stop it after.

The command is split like a shell would (``shlex``) but run without a shell,
so the PID surge monitors is the server itself. Its output is kept in an
unlinked temporary file until it stops (a failing start shows its last line). It runs in its own session:
Ctrl-C in the terminal reaches surge only, and stopping it signals its whole
process group (a server and the workers it forked).
"""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from typing import IO
from urllib.parse import urlsplit

from surge.api.errors import UsageError

TERM_GRACE = 5.0  # s between SIGTERM and SIGKILL
POLL = 0.05  # s between connection attempts


def host_port(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; UsageError naming the URL when it has none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--launch waits for {url!r} to accept connections: give an http(s) base URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"{url!r}: the port is not a number") from None
    return parts.hostname, port


class Launched:
    """A SUT process started by surge (use :func:`launch`)."""

    def __init__(self, proc: subprocess.Popen, cmd: str, log: IO[bytes]) -> None:
        self.proc, self.cmd, self._log = proc, cmd, log
        atexit.register(self._kill_at_exit)

    def __repr__(self) -> str:
        return f"<Launched pid={self.proc.pid} {self.cmd!r}>"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def last_line(self) -> str:
        """The last line the process wrote (stdout and stderr), for error messages."""
        try:
            self._log.seek(max(self._log.seek(0, os.SEEK_END) - 4096, 0))
            lines = self._log.read().decode(errors="replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return lines[-1].strip() if lines else ""

    def exit_note(self) -> str | None:
        """A line saying how it ended early, or None while it runs."""
        rc = self.proc.poll()
        if rc is None:
            return None
        return f"launched process {self.proc.pid} ({self.cmd}) exited with code {rc}"

    def stop(self, grace: float = TERM_GRACE) -> None:
        """SIGTERM to its process group, SIGKILL after ``grace`` s; reaps it."""
        try:
            if self.proc.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        finally:  # even when a second Ctrl-C cuts the grace short
            self._signal(signal.SIGKILL)  # also the group's stragglers (workers that ignored SIGTERM)
            atexit.unregister(self._kill_at_exit)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def _kill_at_exit(self) -> None:
        """Backstop: the interpreter is exiting (an error, a Ctrl-C) with the SUT still up."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def launch(cmd: str, wait_url: str | None, timeout: float = 30.0) -> Launched:
    """Start ``cmd`` and return once ``wait_url``'s host:port accepts TCP connections.

    UsageError when the command cannot be started, exits before listening, or
    does not listen within ``timeout`` s (the process is stopped first).
    """
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        raise UsageError(f"--launch {cmd!r}: {exc}; quote it like a shell command") from None
    if not argv:
        raise UsageError("--launch needs a command, e.g. --launch 'uvicorn app:app --port 8000'")
    if not wait_url:
        raise UsageError("--launch needs a base URL (--base-url or options.base_url) to know when the server is ready")
    host, port = host_port(wait_url)
    # Output goes to an unlinked temporary file: never a pipe that could fill up and
    # block the server, and its tail explains a server that fails to start.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by Launched.stop)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        log.close()
        raise UsageError(f"--launch {cmd!r}: cannot start it: {exc.strerror or exc}") from None
    launched = Launched(proc, cmd, log)
    deadline = time.monotonic() + timeout
    try:
        while not _accepts(host, port):
            if proc.poll() is not None:
                last = launched.last_line() or "no output"
                raise UsageError(f"--launch {cmd!r} exited with code {proc.returncode} before listening on "
                                 f"{host}:{port} ({last})")
            if time.monotonic() > deadline:
                raise UsageError(f"--launch {cmd!r}: nothing accepted connections on {host}:{port} within "
                                 f"{timeout:.0f} s; check the command and the --base-url port")
            time.sleep(POLL)
    except BaseException:
        launched.stop(grace=1.0)
        raise
    return launched
