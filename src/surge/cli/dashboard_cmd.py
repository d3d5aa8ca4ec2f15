"""`surge dashboard`, and the live dashboard of `surge run --dashboard`."""

from __future__ import annotations

import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from surge.api.errors import UsageError
from surge.cli.common import guarded, store_options

if TYPE_CHECKING:
    from surge.web.live import LiveHub
    from surge.web.server import DashboardServer

DEFAULT_PORT = 8089
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9._~-]{8,200}$")  # URL- and cookie-safe, long enough to guess hard


def _check_token(token: str | None) -> None:
    if token is not None and not _TOKEN_CHARS.match(token):
        raise UsageError("--token: use 8-200 letters, digits or ._~- (or leave it out and one is generated)")


def resolve_token(host: str, token: str | None) -> str | None:
    """The token the server requires: the given one, a fresh one off loopback, none on loopback."""
    from surge.web.auth import is_loopback

    _check_token(token)
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    return token


@click.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback requires a token (generated unless --token).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port (0: any free port).")
@click.option("--token", metavar="T", envvar="SURGE_DASHBOARD_TOKEN",
              help="Require this token (?token=T once, or 'Authorization: Bearer T'). Env SURGE_DASHBOARD_TOKEN.")
@store_options
def dashboard_cmd(host: str, port: int, token: str | None, store_url_opt: str | None) -> None:
    """Browse the run store in a web browser: runs, run details, comparisons, trends with change points.

    \b
    Examples:
      surge dashboard                                   # http://127.0.0.1:8089
      surge dashboard --store postgresql://ci@db/perf   # the team's store
      surge dashboard --host 0.0.0.0 --port 8089        # reachable by others: prints a URL with a token

    Stop it with Ctrl-C.
    """

    def go() -> None:
        from surge.results.store import Store, store_url
        from surge.web.app import create_app
        from surge.web.server import DashboardServer, bind, url_of

        tok = resolve_token(host, token)
        store = Store.open(store_url(store_url_opt))  # a bad or unreachable store: one line, before serving
        app = create_app(store, token=tok)
        sock = bind(host, port)
        base = url_of(sock, host)
        click.echo(f"surge dashboard on {base}/{'?token=' + tok if tok else ''}  (store {store.url}; "
                   "Ctrl-C stops it)", err=True)
        server = DashboardServer(app, sock, on_stop=app.state.close)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # uvicorn re-raises the Ctrl-C it handled: stopping is what the user asked for

    guarded(go)


_META_KEY = "surge.dashboard"


def _remember(ctx: click.Context, param: click.Parameter, value: object) -> None:
    # Kept in the click context rather than passed as parameters, so `surge run` takes the
    # flags without another three arguments in its signature.
    flags = ctx.meta.setdefault(_META_KEY, {})
    flags[param.name] = value
    if param.name == "dashboard_port" and ctx.get_parameter_source("dashboard_port") == ParameterSource.COMMANDLINE:
        flags["dashboard_port_given"] = True


def dashboard_options(f: Callable) -> Callable:
    """--dashboard, --dashboard-port and --dashboard-keep (for `surge run`)."""
    opts = [
        click.option("--dashboard", is_flag=True, expose_value=False, callback=_remember,
                     help="Serve the live dashboard on 127.0.0.1 during the run (URL printed; /live shows the "
                          "run second by second). It stops after the summary unless --dashboard-keep."),
        click.option("--dashboard-port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
                     expose_value=False, callback=_remember, help="Port of --dashboard (0: any free port)."),
        click.option("--dashboard-keep", is_flag=True, expose_value=False, callback=_remember,
                     help="Keep serving the dashboard after the run, until Ctrl-C."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@contextmanager
def run_dashboard(*, store_url_opt: str | None, title: str) -> Iterator[list[object]]:
    """The extra engine outputs that the --dashboard flags of the current command ask for ([] when none)."""
    ctx = click.get_current_context(silent=True)
    flags = ctx.meta.get(_META_KEY, {}) if ctx is not None else {}
    if not flags.get("dashboard"):
        if flags.get("dashboard_keep"):
            raise UsageError("--dashboard-keep goes with --dashboard")
        if flags.get("dashboard_port_given"):
            raise UsageError("--dashboard-port goes with --dashboard")
        yield []
        return
    with live_dashboard(port=flags.get("dashboard_port", DEFAULT_PORT), store_url_opt=store_url_opt,
                        keep=bool(flags.get("dashboard_keep")), title=title) as feed:
        yield [feed]


@contextmanager
def live_dashboard(*, port: int, store_url_opt: str | None, keep: bool, title: str) -> Iterator[_ServeFromStart]:
    """The live dashboard for one `surge run`: yields the engine output to add to the run.

    Serves on 127.0.0.1 only (no token needed) from a background thread; when the
    block ends it stops, or with ``keep`` serves on until Ctrl-C. The port is
    bound (and its URL printed) at once, but serving starts with the run: the
    engine forks its workers before the run starts, and forking a process that
    already runs an event loop in another thread is best avoided (until then,
    browsers' connections wait in the listen queue).
    """
    from surge.results.store import store_url
    from surge.web.app import create_app
    from surge.web.live import LiveHub
    from surge.web.server import DashboardServer, bind, url_of

    hub = LiveHub()
    app = create_app(store_url(store_url_opt), hub=hub)
    sock = bind("127.0.0.1", port)
    base = url_of(sock, "127.0.0.1")
    server = DashboardServer(app, sock, on_stop=app.state.close, loop="asyncio")
    click.echo(f"live dashboard: {base}/live", err=True)
    try:
        yield _ServeFromStart(hub, server, title)
    finally:
        if keep and sys.exc_info()[0] in (None, SystemExit):
            server.start_background()
            click.echo(f"dashboard still on {base}/ (--dashboard-keep); Ctrl-C stops it", err=True)
            _wait_for_ctrl_c(server)
        server.stop()


class _ServeFromStart:
    """The live feed, which also starts the server when the first run starts (after the fork)."""

    def __init__(self, hub: LiveHub, server: DashboardServer, title: str) -> None:
        from surge.web.live import LiveFeed

        self.feed = LiveFeed(hub, title)
        self.server = server

    def __repr__(self) -> str:
        return f"_ServeFromStart({self.feed!r}, {self.server!r})"

    def start(self, meta: dict[str, Any]) -> None:
        self.server.start_background()  # a no-op once it runs (the next run of a --repeat)
        self.feed.start(meta)

    def second(self, st: Any, row: dict[str, Any]) -> None:
        self.feed.second(st, row)

    def finish(self, summary: dict[str, Any], agg: Any, meta_update: dict[str, Any]) -> None:
        self.feed.finish(summary, agg, meta_update)


def _wait_for_ctrl_c(server: DashboardServer) -> None:
    """Block until Ctrl-C (or until the server thread is gone)."""
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
