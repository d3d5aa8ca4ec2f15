"""What `surge run` and `surge hit` share: flags, preflight, running and reporting."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from surge.analysis.thresholds import parse_thresholds
from surge.api.errors import RunError, SurgeError, UsageError
from surge.api.http_syntax import is_token
from surge.api.options import parse_duration
from surge.api.shapes import parse_arrival
from surge.cli import exitcodes
from surge.cli.live import LivePanel
from surge.cli.render import render_summary
from surge.engine.coordinator import RunSpec, planned_seconds
from surge.engine.http.url import split_url


def duration_arg(what: str) -> Callable[[Any, Any, Any], float | None]:
    def convert(ctx: Any, param: Any, value: Any) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value, what=f"--{param.name.replace('_', '-')}")
        except UsageError as exc:
            raise click.BadParameter(f"{value!r}: {str(exc).split(': ', 1)[-1]}") from None

    return convert


def parse_headers(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for h in values:
        k, sep, v = h.partition(":")
        if not sep or not k.strip():
            raise click.BadParameter(f"{h!r}: write headers as 'Name: value'", param_hint="-H/--header")
        if any(c in h for c in "\r\n\0"):
            raise click.BadParameter(f"{h!r}: a header may not contain a line break; give one -H per header",
                                     param_hint="-H/--header")
        if not is_token(k.strip()):
            raise click.BadParameter(f"{h!r}: the name {k.strip()!r} has spaces or separators", param_hint="-H/--header")
        out.append((k.strip(), v.strip()))
    return tuple(out)


def check_fd_room(connections: int) -> None:
    """A usage error when ``connections`` sockets cannot be open at once under the file limit."""
    try:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    except (ImportError, OSError, ValueError):
        return
    if hard != resource.RLIM_INFINITY and connections > hard - 64:
        raise UsageError(f"-c {connections} needs more open files than this system allows ({hard}); "
                         f"use at most {max(hard - 64, 1)}, or raise the limit (ulimit -n)")


def _remember_report(ctx: click.Context, param: Any, value: str | None) -> None:
    # Kept in the context rather than passed as a parameter, so every command that takes
    # output_options (run, hit) gets --report without changing its signature.
    if value is not None:
        ctx.meta["surge.report"] = value


def _report_target() -> str | None:
    """--report's value: '' for the run directory, a file name, or None when not asked for."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get("surge.report") if ctx is not None else None


def _write_report(run_dir: Path, s: dict[str, Any]) -> None:
    """--report: the run's HTML report; failing to write it is a warning, never a lost run."""
    target = _report_target()
    if target is None:
        return
    from surge.cli.report_cmd import write_run_report

    try:
        path = write_run_report(run_dir, Path(target) if target else None)
    except SurgeError as exc:
        click.echo(f"warning: no report written: {exc}", err=True)
        return
    except Exception as exc:  # noqa: BLE001 - a report bug must not cost the run's summary and exit code
        click.echo(f"warning: no report written: {type(exc).__name__}: {exc}", err=True)
        return
    s["report"] = str(path)
    click.echo(f"report: {path}", err=True)


def output_options(f: Callable) -> Callable:
    """Flags shared by run and hit: thresholds, timeouts, outputs."""
    opts = [
        click.option("--threshold", "-t", "thresholds", multiple=True, metavar="EXPR",
                     help="Pass/fail criterion, repeatable: 'p95<300ms', 'error_rate<1%', "
                          "'p99{name:checkout}<800ms', 'rps>100'. Exit code 3 when one fails."),
        click.option("--abort-on-fail", is_flag=True, help="Stop early once a threshold fails (judged each second after 5 s)."),
        click.option("--workers", "-w", type=click.IntRange(min=1), default=None,
                     help="Worker processes (default: number of CPU cores)."),
        click.option("--timeout", callback=duration_arg("timeout"), default="60s", show_default=True,
                     help="Total timeout per request."),
        click.option("--connect-timeout", callback=duration_arg("connect timeout"), default="10s",
                     show_default=True, help="TCP + TLS connect timeout."),
        click.option("--read-timeout", callback=duration_arg("read timeout"), default="30s", show_default=True,
                     help="Longest silence while waiting for a response."),
        click.option("--insecure", "-k", is_flag=True, help="Do not verify TLS certificates."),
        click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
                     show_default=True, help="Directory under which the run directory is written."),
        click.option("--no-save", is_flag=True, help="Do not write a run directory."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout (no tables)."),
        click.option("--quiet", "-q", is_flag=True, help="No live panel and no tables."),
        click.option("--no-preflight", is_flag=True, help="Skip the reachability check of the target before starting."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for VU random generators and arrivals."),
        click.option("--report", is_flag=False, flag_value="", default=None, metavar="[FILE]", expose_value=False,
                     callback=_remember_report,
                     help="Write the HTML report (report.html in the run directory, or --report=FILE) and "
                          "print its path. Give FILE with '=': a bare --report takes the next word as FILE."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


_USERINFO = re.compile(r"//[^/@]*@")


def preflight(url: str | None, what: str, timeout: float = 3.0) -> None:
    """Fail fast, with one clear line, when the target cannot be resolved or reached."""
    if not url:
        return
    origin, _ = split_url(url, what=what)
    url = _USERINFO.sub("//***@", url)  # never echo a password given in the URL
    try:
        infos = socket.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve host {origin.host!r} in {what} {url}: {exc.strerror}; check the name") from None
    last: OSError | None = None
    for family, stype, proto, _, addr in infos:
        with socket.socket(family, stype, proto) as s:
            s.settimeout(timeout)
            try:
                s.connect(addr)
                return
            except OSError as exc:
                last = exc
    reason = "connection refused" if isinstance(last, ConnectionRefusedError) else str(last)
    raise RunError(
        f"cannot connect to {origin.host}:{origin.port} ({what} {url}): {reason}; is the server running? "
        "(--no-preflight skips this check)"
    )


def parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    """``--tag k=v`` (repeatable) into a dict."""
    out = {}
    for t in values:
        k, sep, v = t.partition("=")
        if not sep or not k.strip():
            raise click.BadParameter(f"{t!r}: write tags as key=value, e.g. --tag env=staging", param_hint="--tag")
        out[k.strip()] = v.strip()
    return out


def store_options(f: Callable) -> Callable:
    """Flags that choose the run store (shared by every command that reads or writes it)."""
    return click.option("--store", "store_url_opt", metavar="URL", envvar="SURGE_STORE",
                        help="Run store URL (default sqlite:///.surge/surge.db; env SURGE_STORE), "
                             "e.g. postgresql://user@host/db.")(f)


def exit_code(s: dict[str, Any], thresholds_passed: bool | None) -> int:
    """The documented exit code of one run's summary."""
    if s.get("error"):
        return exitcodes.USAGE
    if s["status"] == "interrupted":
        return exitcodes.INTERRUPTED
    if thresholds_passed is False:
        return exitcodes.THRESHOLD_FAILED
    if s["requests"] and s["errors"] == s["requests"] and not s["thresholds"]:
        return exitcodes.RUN_ERROR  # every request failed: the numbers describe nothing
    if not s["requests"] and _cut_off(s):
        return exitcodes.RUN_ERROR  # nothing got an answer before the stop: no numbers at all
    if not s["requests"] and s.get("workers_lost"):
        return exitcodes.RUN_ERROR  # the generator itself failed (os._exit, a blocked loop): no numbers
    return exitcodes.OK


def _cut_off(s: dict[str, Any]) -> int:
    """Iterations / requests still in flight when the run stopped (0 when none)."""
    it = s.get("iterations")
    return int(it.get("interrupted") or 0) if isinstance(it, dict) else 0


def _check_out_root(out_root: Path) -> None:
    """A usage error, before any load, when run directories cannot be created under ``out_root``."""
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out {out_root}: {exc.strerror}; choose another directory") from None
    if not os.access(out_root, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in --out {out_root}: permission denied; choose another directory")


def record_in_store(run_dir: Path, url: str | None, tags: dict[str, str]) -> str | None:
    """Add a finished run to the store; a store failure is a warning, never a lost run."""
    try:
        from surge.results.store import Store, store_url

        store = Store.open(store_url(url))
        try:
            return store.record_run(run_dir, tags=tags)
        finally:
            store.close()
    except (SurgeError, ImportError) as exc:
        click.echo(f"warning: run kept in {run_dir} but not recorded in the store: {exc}", err=True)
        return None


def run_and_report(
    *,
    spec: RunSpec,
    label: str,
    title: str,
    thresholds: tuple[str, ...],
    abort_on_fail: bool,
    out_root: Path,
    no_save: bool,
    as_json: bool,
    quiet: bool,
    scenarios: Any = None,
    tags: dict[str, str] | None = None,
    repeat: int = 1,
    store_url: str | None = None,
    no_store: bool = False,
    monitor: Any = None,
    extra_outputs: list[Any] | None = None,
) -> None:
    """Run (``repeat`` times), print, record in the store and exit with the documented code.

    ``monitor``: a :class:`surge.sut.MonitorSpec` (SUT monitoring, --launch, py-spy), or None.
    """
    from surge.session import run_session

    if no_save and _report_target() is not None:
        raise UsageError("--report needs the run directory: drop --no-save")
    if not no_save:
        _check_out_root(out_root)
        if not no_store:
            from surge.results.store import store_url as _store_url

            _store_url(store_url)  # a malformed --store fails before the load, not after it
    parsed = parse_thresholds(thresholds)
    stderr = Console(stderr=True)
    summaries, codes = [], []
    group = None
    for i in range(repeat):
        outputs = list(extra_outputs or [])  # e.g. the live dashboard's feed (surge run --dashboard)
        if not quiet and not as_json and stderr.is_terminal:
            outputs.append(LivePanel(stderr, planned_seconds(spec), title))
        elif not quiet and not as_json:
            stderr.print(f"running {title} for {planned_seconds(spec):.0f}s ...", highlight=False)
        result = run_session(
            spec, label=label, thresholds=parsed, abort_on_fail=abort_on_fail,
            out_root=None if no_save else out_root, outputs=outputs, scenarios=scenarios,
            monitor=monitor,
        )
        s = result.summary
        run_tags = dict(tags or {})
        if repeat > 1:
            group = group or (result.run_dir.name if result.run_dir else f"group-{i}")
            run_tags.update({"repeat_group": group, "repeat": str(i + 1)})
        if result.run_dir is not None and not no_store:
            s["stored_as"] = record_in_store(result.run_dir, store_url, run_tags)
        if result.run_dir is not None:
            _write_report(result.run_dir, s)
        summaries.append(s)
        if not as_json and not quiet:
            console = Console()
            render_summary(console if console.is_terminal else Console(width=160), s)
        code = exit_code(s, result.thresholds_passed)
        codes.append(code)
        if s.get("error"):
            click.echo(f"error: {s['error']}", err=True)
        elif code == exitcodes.RUN_ERROR and not as_json:
            if s["requests"]:
                stderr.print(f"[red]every request failed[/] ({', '.join(s['errors_by_type'])}): check the target",
                             highlight=False)
            elif _cut_off(s):
                stderr.print(f"[red]no request completed[/]: {_cut_off(s)} still waiting for the server when "
                             "the run stopped; check the target, or give it more time with a longer -d",
                             highlight=False)
            else:
                from rich.markup import escape

                stderr.print(f"[red]no request completed[/]: {escape(s['workers_lost'][0])}. A scenario that "
                             "calls os._exit() or blocks the event loop (time.sleep instead of await sleep) "
                             "does this", highlight=False)
        if code in (exitcodes.INTERRUPTED, exitcodes.USAGE):
            break
    if as_json:
        out = summaries[0] if repeat == 1 else summaries
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
    elif repeat > 1 and not quiet:
        stderr.print(f"{len(summaries)} repeats tagged repeat_group={group}: compare groups with "
                     f"`surge compare group:A group:B`", highlight=False)
    # The most serious outcome wins: usage, interrupted, run error, threshold failure.
    for c in (exitcodes.USAGE, exitcodes.INTERRUPTED, exitcodes.RUN_ERROR, exitcodes.THRESHOLD_FAILED):
        if c in codes:
            sys.exit(c)


def guarded(fn: Callable[[], None]) -> None:
    """Turn surge errors into one line and an exit code; never a traceback for user mistakes."""
    try:
        fn()
    except UsageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exitcodes.USAGE)
    except SurgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exitcodes.RUN_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(exitcodes.INTERRUPTED)


def default_workers(requested: int | None) -> int:
    return requested or os.cpu_count() or 1


def parsed_callback(parse: Callable[[str], Any]) -> Callable[[Any, Any, Any], Any]:
    """A click callback that runs ``parse`` and turns a UsageError into click's one-line error."""
    def convert(ctx, param, value):
        if value is None:
            return None
        try:
            return parse(value)
        except UsageError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


def _arrival_text(value: str) -> str:
    parse_arrival(value)
    return value


# --arrival of run and hit: the validated text (Options keeps it as written)
ARRIVAL_CALLBACK = parsed_callback(_arrival_text)


def arrival_slot_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--arrival-slot`` for the commands with an open model (run, hit, replay)."""
    return click.option(
        "--arrival-slot", callback=duration_arg("arrival slot"), metavar="DURATION",
        help="Open models: arrivals due within one slot start together at its start, which is their intended "
             "start (default 2ms: one wake-up per slot, not per arrival; 0 = each at its own time, "
             "at 2-4x the CPU per request). See docs/models.md.")(f)
