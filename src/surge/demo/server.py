"""Run the demo shop under uvicorn (uvloop + httptools), as a production service would.

``serve()`` is what ``surge demo serve`` calls; ``create_app`` is re-exported for
tests and for running the app under another ASGI server.
"""

from __future__ import annotations

import errno
import os
import socket

import uvicorn
from starlette.applications import Starlette

from surge.api.errors import UsageError
from surge.demo.app import create_app
from surge.demo.db import DEFAULT_LATENCY

__all__ = ["bind_socket", "create_app", "run_app", "serve"]


def bind_socket(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """Bind a listening TCP socket (port 0 picks a free one), or raise UsageError.

    Binding before uvicorn starts turns "address already in use" and friends into one
    clear message instead of a log line and ``sys.exit``.
    """
    if not 0 <= port <= 65535:
        raise UsageError(f"invalid port {port}: use a number between 1 and 65535, e.g. --port 8000")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(
            f"cannot resolve host {host!r} ({exc}): use an address such as 127.0.0.1 with --host"
        ) from None
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is already in use: stop what is using it, "
                f"or pick another port with --port, e.g. --port {port + 1 if port < 65535 else 8000}"
            ) from None
        if exc.errno == errno.EACCES:
            raise UsageError(
                f"no permission to listen on port {port} on {host}: use a port above 1023 with --port"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise UsageError(
                f"cannot listen on {host}: it is not an address of this machine; use --host 127.0.0.1"
            ) from None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def run_app(
    app: Starlette,
    sock: socket.socket,
    *,
    log_level: str = "warning",
    access_log: bool = False,
) -> None:
    """Serve ``app`` on the already-bound ``sock`` until SIGINT/SIGTERM; closes ``sock``."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    fixed: bool = False,
    db_path: str | os.PathLike[str] | None = None,
    log_level: str = "warning",
    access_log: bool = False,
    *,
    db_latency: float = DEFAULT_LATENCY,
    sock: socket.socket | None = None,
) -> None:
    """Run the demo shop on ``host:port`` until interrupted.

    Args:
        host, port: where to listen (ignored when ``sock`` is given).
        fixed: serve the version with the three deliberate problems removed.
        db_path: SQLite file (created and seeded when new); None: a temporary one.
        log_level: uvicorn log level ("warning" keeps the console quiet under load).
        access_log: log every request (costly at high request rates).
        db_latency: simulated database round trip in s.
        sock: an already-bound socket (see :func:`bind_socket`).

    Raises:
        UsageError: the port is in use, the host is not local, the database is unusable.
    """
    if sock is None:
        sock = bind_socket(host, port)
    try:
        app = create_app(fixed=fixed, db_path=db_path, db_latency=db_latency)
    except BaseException:
        sock.close()
        raise
    run_app(app, sock, log_level=log_level, access_log=access_log)
