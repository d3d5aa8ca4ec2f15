"""Shared fixtures: the misbehaving test server (tests/servers.py) and a CLI runner.

Every server is a subprocess on 127.0.0.1 that the fixture kills in its
teardown; every CLI run is a subprocess in its own session with a timeout, so
a hung run is killed (with its worker processes) instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SERVER = TESTS / "servers.py"
_BIN = Path(sys.executable).parent / "surge"
SURGE = [str(_BIN)] if _BIN.exists() else [sys.executable, "-c", "from surge.cli.main import main; main()"]
CLI_TIMEOUT = 60.0  # s: no CLI run in these tests should come near it


@pytest.fixture(autouse=True, scope="session")
def _isolated_store(tmp_path_factory):
    """Runs made by tests are recorded in a throwaway store, never in ./.surge."""
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'surge.db'}"
    old = os.environ.get("SURGE_STORE")
    os.environ["SURGE_STORE"] = url
    yield url
    if old is None:
        os.environ.pop("SURGE_STORE", None)
    else:
        os.environ["SURGE_STORE"] = old


# --------------------------------------------------------------------------- server


class ServerProc:
    """A running tests/servers.py subprocess."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self._first_line(10.0)
        if not line.startswith("PORT "):
            self.kill()
            raise RuntimeError(f"test server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def _first_line(self, timeout: float) -> str:
        import selectors

        sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                return ""
            return self.proc.stdout.readline().strip()
        finally:
            sel.close()

    def stats(self) -> dict[str, int]:
        """Requests served per path (GET /stats, which counts itself too)."""
        import urllib.request

        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            return json.loads(r.read())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="session")
def test_server():
    """Base URL (``http://127.0.0.1:PORT``) of a well-behaved test server shared by the session."""
    srv = ServerProc()
    try:
        yield srv.url
    finally:
        srv.kill()


@pytest.fixture
def start_server():
    """Factory: ``start_server(stall_after=1.5, stall_for=1.0)`` -> a fresh :class:`ServerProc`.

    Servers it starts are killed when the test ends.
    """
    started: list[ServerProc] = []

    def start(stall_after: float | None = None, stall_for: float = 1.0) -> ServerProc:
        args: list[str] = []
        if stall_after is not None:
            args += ["--stall-after", str(stall_after), "--stall-for", str(stall_for)]
        srv = ServerProc(*args)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.kill()


def free_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# --------------------------------------------------------------------------- CLI


class CLIResult:
    def __init__(self, rc: int, data: dict | None, stdout: str, stderr: str, wall: float) -> None:
        self.rc, self.data, self.stdout, self.stderr, self.wall = rc, data, stdout, stderr, wall

    def __iter__(self):  # rc, data, stderr = surge_json(...)
        return iter((self.rc, self.data, self.stderr))

    def __repr__(self) -> str:
        return f"CLIResult(rc={self.rc}, stderr={self.stderr[-2000:]!r})"


def surge_cli(*args: str, timeout: float = CLI_TIMEOUT, cwd: str | Path | None = None) -> CLIResult:
    """Run ``surge ARGS`` in its own process group; kill the group on timeout."""
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*SURGE, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=str(cwd) if cwd else None,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"surge {' '.join(map(str, args))} did not finish within {timeout} s; stderr: {err[-2000:]}")
    data = None
    if out.strip():
        try:
            data = json.loads(out)
        except ValueError:
            data = None
    return CLIResult(proc.returncode, data, out, err, time.monotonic() - t0)


def surge_json(*args: str, timeout: float = CLI_TIMEOUT, cwd: str | Path | None = None) -> CLIResult:
    """Run the CLI with ``--json`` (and ``--no-save`` unless ``--out`` is given).

    Returns a :class:`CLIResult`, which unpacks as ``rc, data, stderr``
    (``data`` is the parsed summary, or None when stdout held no JSON).
    """
    extra = []
    if "--json" not in args:
        extra.append("--json")
    if "--out" not in args and "--no-save" not in args:
        extra.append("--no-save")
    return surge_cli(*args, *extra, timeout=timeout, cwd=cwd)


@pytest.fixture
def scenario_file(tmp_path):
    """Factory: ``scenario_file(code, name="s.py")`` writes a scenario file and returns its path."""
    counter = [0]

    def write(code: str, name: str | None = None) -> Path:
        counter[0] += 1
        p = tmp_path / (name or f"scenario_{counter[0]}.py")
        p.write_text(textwrap.dedent(code).lstrip())
        return p

    return write


def error_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are error messages ('error: ...' or click's 'Error: ...')."""
    return [ln for ln in stderr.splitlines() if ln.lower().startswith("error:")]


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "crashed" not in stderr, stderr


async def answer_requests(conn_class, answers: list[bytes], *send_args):
    """Over one connection of ``conn_class`` (an HttpConnection), send one GET per item
    of ``answers`` to a local server that answers each with those bytes; returns
    ``(conn, [send()'s result per request])``. ``send_args`` follow the request."""
    import asyncio

    from surge.engine.http.url import split_url

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        await asyncio.sleep(5)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    origin, _ = split_url(f"http://127.0.0.1:{port}/")
    try:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: conn_class(origin), "127.0.0.1", port)
        try:
            out = []
            for _ in answers:
                out.append(await asyncio.wait_for(conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", *send_args), 5))
            return conn, out
        finally:
            conn.close()
    finally:
        server.close()
