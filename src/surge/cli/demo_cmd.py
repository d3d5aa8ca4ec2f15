"""``surge demo``: the bundled demo shop, a service to practise load testing on."""

from __future__ import annotations

import ipaddress

import click

from surge.api.errors import UsageError
from surge.cli.params import FiniteRange

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class DemoError(click.ClickException):
    """A one-line error (``Error: ...``) with exit code 2: the user's input needs fixing."""

    exit_code = 2


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.group(name="demo")
def demo() -> None:
    """The bundled demo shop: a small JSON API that is slow on purpose.

    It has three deliberate performance problems to find with surge (N+1 queries
    on GET /products, CPU-bound recommendations that block the event loop, and a
    payment gateway with a long latency tail on POST /checkout). Start it with
    `surge demo serve`, load it with `surge run examples/shop.py`, then compare
    with `surge demo serve --fixed`. See docs/demo.md.
    """


@demo.command(name="serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback exposes the (unauthenticated) shop "
    "to other machines; a warning is printed.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="TCP port to listen on (0 picks a free one and prints it).",
)
@click.option(
    "--fixed",
    is_flag=True,
    help="Serve the fixed version: one JOIN query for the product list, recommendations "
    "precomputed at startup, a steady ~5 ms payment gateway. Same responses.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="SQLite file to use; created and seeded when new, reused (with its carts and "
    "orders) otherwise. Default: a temporary file deleted on exit.",
)
@click.option(
    "--db-latency-ms",
    type=FiniteRange(0, 1000),
    default=1.0,
    show_default=True,
    help="Simulated database round trip per query, in ms (0 turns it off).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
    help="uvicorn log level.",
)
@click.option(
    "--access-log", is_flag=True, help="Log every request (slows the server at high request rates)."
)
def serve_cmd(
    host: str,
    port: int,
    fixed: bool,
    db_path: str | None,
    db_latency_ms: float,
    log_level: str,
    access_log: bool,
) -> None:
    """Run the demo shop until Ctrl+C.

    \b
    Examples:
      surge demo serve                 # with its three deliberate problems
      surge demo serve --fixed         # the same API, problems removed
      surge demo serve --port 8011 --db shop.sqlite3
    """
    # Imported here so that `surge --help` does not pay for starlette/uvicorn.
    from surge.demo.app import create_app
    from surge.demo.server import bind_socket, run_app

    if not is_loopback(host):
        click.echo(
            f"warning: --host {host} is not a loopback address: the demo shop (no authentication, "
            "slow on purpose) will be reachable from other machines",
            err=True,
        )
    try:
        sock = bind_socket(host, port)
    except UsageError as exc:
        raise DemoError(str(exc)) from None
    try:
        app = create_app(fixed=fixed, db_path=db_path, db_latency=db_latency_ms / 1000)
    except UsageError as exc:
        sock.close()
        raise DemoError(str(exc)) from None
    except BaseException:
        sock.close()
        raise
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    mode = (
        "fixed mode"
        if fixed
        else "deliberate problems: N+1 queries, CPU-bound recommendations, slow payment gateway"
    )
    click.echo(
        f"surge demo shop ({mode}) on http://{shown}:{bound_port}  "
        f"db={app.state.db.path}  (Ctrl+C to stop)",
        err=True,
    )
    run_app(app, sock, log_level=log_level, access_log=access_log)


@demo.command(name="run")
@click.argument("scenario", type=click.Path(dir_okay=False), default="examples/shop.py")
@click.option("--duration", "-d", default="20s", show_default=True, help="Length of the load test.")
@click.option("--fixed", is_flag=True, help="Run against the fixed demo service.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-profile", is_flag=True, help="Do not profile the service with py-spy (still monitored).")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- SURGE RUN FLAGS]")
def run_demo_cmd(scenario: str, duration: str, fixed: bool, as_json: bool, no_profile: bool,
                 run_args: tuple[str, ...]) -> None:
    """Start the demo shop on a free port, load test it with SCENARIO, stop it.

    This is what `make demo` runs: the whole loop in one command. The service
    is monitored (--monitor) and profiled with py-spy (--py-spy) during the
    load, so the summary ends with findings: what was slow and why. The run
    directory is written under ./runs and recorded in the run store, as with
    `surge run`. Flags after `--` go to `surge run`, e.g.
    `surge demo run -- --stages 10s:20,20s:80 --report`.
    """
    import re
    import subprocess
    import sys
    import time

    from surge.cli.run_cmd import run_cmd

    if scenario.startswith("-"):  # `surge demo run -- --stages ...`: click gave the first flag to SCENARIO
        run_args = (scenario, *run_args)
        scenario = "examples/shop.py"

    from pathlib import Path

    from surge.engine.loader import load_scenarios

    try:
        load_scenarios(Path(scenario))  # a missing or broken scenario fails before the service starts
    except UsageError as exc:
        raise DemoError(str(exc)) from None
    args = [sys.executable, "-c", "from surge.cli.main import main; main()", "demo", "serve", "--port", "0"]
    if fixed:
        args.append("--fixed")
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stderr.readline() if proc.stderr else ""
            m = re.search(r"on (http://[^\s]+)", line)
            if m:
                url = m.group(1)
        if url is None:
            raise DemoError("the demo service did not start within 30 s; try `surge demo serve` to see why")
        # Keep draining the service's stderr so that it never blocks on a full pipe.
        import threading

        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        _wait_healthy(url, deadline)
        own_length = any(a in ("--stages", "-s", "--iterations", "-i", "--duration", "-d") or
                         a.startswith(("--duration=", "--stages=")) for a in run_args)
        click.echo(f"demo service up at {url}; running {scenario}"
                   + ("" if own_length else f" for {duration}"), err=True)
        args = [scenario, "--base-url", url, "--monitor", str(proc.pid)]
        if not own_length:
            args += ["--duration", duration]
        if not no_profile:
            args += ["--py-spy", str(proc.pid)]
        args += (["--json"] if as_json else []) + list(run_args)
        run_cmd.main(args, prog_name="surge run", standalone_mode=False)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _dur(text: str) -> float:
    from surge.api.options import parse_duration

    try:
        return parse_duration(text, what="--duration")
    except UsageError as exc:
        raise DemoError(str(exc)) from None


def _wait_healthy(url: str, deadline: float) -> None:
    """Poll GET /health until the service answers (it binds before it accepts)."""
    import time
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise DemoError("the demo service did not answer /health within 30 s; try `surge demo serve` to see why")
