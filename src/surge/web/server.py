"""Serving the dashboard app with uvicorn: in the foreground, or in a background thread.

The listening socket is bound by :func:`bind` before uvicorn starts, so a port
in use is an error in the caller's thread (one clear message, not a log line
from another thread), port 0 picks a free port, and the URL printed is the
real one.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from surge.api.errors import UsageError

START_TIMEOUT = 10.0  # s for uvicorn to start serving in its thread
STOP_TIMEOUT = 5.0  # s for it to stop


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (:class:`UsageError` when it cannot be had)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r}: cannot resolve it ({exc.strerror}); use an address such as "
                         "127.0.0.1 or 0.0.0.0") from None
    family, stype, proto, _, addr = infos[0]
    sock = socket.socket(family, stype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another port with "
                         "--port / --dashboard-port (0 picks a free one)") from None
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    """``http://host:port`` of a bound socket (the port it really got, brackets around IPv6)."""
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class DashboardServer:
    """uvicorn on an already bound socket; quiet (no access log, no logging setup of its own)."""

    def __init__(self, app: Any, sock: socket.socket, *, on_stop: Any = None, loop: str = "auto") -> None:
        import uvicorn

        self.sock = sock
        self._on_stop = on_stop
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, server_header=False, loop=loop)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"DashboardServer({self.sock.getsockname()!r}, started={self.server.started})"

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C (uvicorn handles the signal and stops gracefully)."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self._cleanup()

    def start_background(self) -> None:
        """Serve from a daemon thread; returns once the server accepts connections."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="surge-dashboard", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            self.stop()
            raise UsageError("the dashboard did not start; run without --dashboard, or see `surge dashboard`")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving (open live streams are ended first) and release the port."""
        self._fire_on_stop()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            if self._thread.is_alive():
                self.server.force_exit = True
                self._thread.join(STOP_TIMEOUT)
        self._cleanup()

    def _fire_on_stop(self) -> None:
        fn, self._on_stop = self._on_stop, None
        if fn is not None:
            fn()

    def _cleanup(self) -> None:
        self._fire_on_stop()
        self.sock.close()
