"""`surge replay LOG`: send a log's requests again, at their original relative times."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import click

from surge.api.limits import MAX_DURATION_S
from surge.cli.common import (
    arrival_slot_option,
    default_workers,
    duration_arg,
    guarded,
    output_options,
    parse_headers,
    parse_tags,
    preflight,
    run_and_report,
    store_options,
)
from surge.cli.params import FiniteRange

READ_SLACK_S = 60.0  # s of log read past --duration: logs written at completion are slightly out of order


def log_options(f):
    """--format and --field, shared by replay and model."""
    from surge.traffic.read import FORMATS

    f = click.option("--field", "fields", metavar="NAME=KEY,...",
                     help="JSON-lines field mapping, e.g. time=ts,method=verb,path=url,status=code,client=ip "
                          "(names: time, method, path, status, client, user_agent, session, request).")(f)
    return click.option("--format", "fmt", type=click.Choice(FORMATS),
                        help="Log format (default: detected from the first lines).")(f)


def origin_form(target: str) -> str | None:
    """The path and query a request line asked for: ``http://host/x?y`` (absolute form, as
    proxy probes in real logs send) becomes ``/x?y``; None for what no origin server
    answers (``CONNECT host:443``, ``OPTIONS *``). Replay must never send a logged request
    to a host named in the log instead of --base-url."""
    if target.startswith("/"):
        return target
    if target[:8].lower().startswith(("http://", "https://")):
        parts = urlsplit(target)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return None


def build_trace(log, base_url: str | None, limit: int | None, window_s: float | None, builder):
    """Feed ``log``'s records into ``builder``; returns (base URL, requests added, skipped).

    Skipped: requests for other origins, and request targets no origin server answers.

    Without ``base_url`` a HAR file's first origin is used and entries for other
    origins (CDNs, analytics) are skipped; a log without hosts needs ``base_url``.
    """
    from surge.api.errors import UsageError
    from surge.traffic.normalise import template

    base, other, first = base_url, 0, None
    for rec in log:
        if first is None:
            first = rec.time
        if window_s is not None and rec.time - first > window_s:
            if rec.time - first > window_s + READ_SLACK_S:
                break
            continue
        if base_url is None:
            if rec.origin is None:
                raise UsageError(f"{log.path} does not say which host it was sent to: pass --base-url http://HOST:PORT")
            if base is None:
                base = rec.origin
            elif rec.origin != base:
                other += 1
                continue
        target = origin_form(rec.target)
        if target is None:
            other += 1
            continue
        builder.add(rec.time, rec.method, target, template(target), rec.headers, rec.body)
        if limit is not None and len(builder) >= limit:
            break
    return base, len(builder), other


@click.command("replay")
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--base-url", "-b", metavar="URL",
              help="Send the requests here, e.g. http://127.0.0.1:8000 (default for HAR: its first origin).")
@click.option("--speed", type=FiniteRange(min=0.001, max=1000.0), default=1.0, show_default=True,
              help="Time scale: 2 replays twice as fast, 0.5 at half speed.")
@click.option("--duration", "-d", callback=duration_arg("duration"),
              help="Replay only the first part of the schedule (after --speed), e.g. 60s.")
@click.option("--limit", "-n", type=click.IntRange(min=1), help="Replay only the first N requests.")
@click.option("--max-inflight", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Outstanding requests per worker; arrivals beyond it are dropped and counted.")
@arrival_slot_option
@click.option("--header", "-H", "headers", multiple=True, metavar="'K: V'",
              help="Extra header on every request (e.g. auth for a test environment), repeatable.")
@log_options
@click.option("--tag", "tags", multiple=True, metavar="K=V", help="Label the run in the store, repeatable.")
@click.option("--no-store", is_flag=True, help="Do not record the run in the run store.")
@store_options
@output_options
def replay_cmd(log, base_url, speed, duration, limit, max_inflight, arrival_slot, headers, fmt, fields, tags, no_store,
               store_url_opt, thresholds, abort_on_fail, workers, timeout, connect_timeout, read_timeout,
               insecure, out_root: Path, no_save, as_json, quiet, no_preflight, seed) -> None:
    """Replay the requests of LOG against a server, at their original relative times.

    LOG is an nginx/Apache access log (combined or common), a JSON-lines log or
    a HAR file. Each request is sent at its time in the log (scaled by --speed)
    whether or not earlier ones have finished (an open model), and its latency
    is measured from that time. Requests are reported per endpoint template
    (/products/{id}), so `surge report` and `surge compare` work on replays.
    HAR files also replay headers (not cookies) and bodies.

    \b
    Examples:
      surge replay access.log --base-url http://127.0.0.1:8000
      surge replay access.log -b http://staging:8080 --speed 2 --duration 5m
      surge replay app.jsonl -b http://127.0.0.1:8000 --field time=ts,path=url,method=verb
      surge replay session.har                       # to the HAR's own origin
    """

    def go() -> None:
        from surge.api.errors import UsageError
        from surge.api.options import Options
        from surge.engine.coordinator import RunSpec
        from surge.engine.http.url import split_url
        from surge.engine.replay import ReplaySpec
        from surge.engine.replay_trace import TraceBuilder
        from surge.traffic.jsonl import parse_mapping
        from surge.traffic.read import open_log

        Options(arrival_slot=arrival_slot).normalised(source="command line")  # before reading the log

        if duration is not None and duration <= 0:
            raise UsageError("--duration must be > 0: give e.g. -d 5m (or leave it out to replay the whole log)")
        if base_url is not None:
            split_url(base_url, what="--base-url")
        source = open_log(log, fmt, parse_mapping(fields) if fields else None)
        builder = TraceBuilder()
        window = duration * speed if duration is not None else None
        base, n, other = build_trace(source, base_url, limit, window, builder)
        if n == 0:
            raise UsageError(f"no request of {log} falls in the replay window: lengthen --duration or drop it")
        if not quiet:
            for line in source.stats.report_lines():
                click.echo(line, err=True)
            if other:
                click.echo(f"{other} request(s) skipped: for other origins than {base} (give --base-url to send "
                           "everything to one server), or proxy requests such as CONNECT", err=True)
        if not no_preflight:
            preflight(base, "--base-url")
        with tempfile.TemporaryDirectory(prefix="surge-replay-") as tmp:
            trace_path = Path(tmp) / "trace.npz"
            requests, span = builder.save(trace_path)
            del builder
            replay = ReplaySpec(trace_path=str(trace_path), base_url=base, speed=speed, duration=duration,
                                max_inflight=max_inflight, requests=requests, span_s=span, source=str(log))
            if duration is None and replay.planned_duration > MAX_DURATION_S:
                raise UsageError(
                    f"{log} spans {span / 86_400:,.0f} days of traffic, which at --speed {speed:g} replays for "
                    f"longer than {MAX_DURATION_S / 86_400:.0f} days: replay a window of it with --duration "
                    "(or --limit); a line with a wrong clock can cause this")
            opts = Options(base_url=base, duration=replay.planned_duration,
                           arrival_slot=arrival_slot).normalised(source="command line")
            spec = RunSpec(options=opts, workers=min(default_workers(workers), requests), replay=replay,
                           timeouts=(connect_timeout, read_timeout, timeout), insecure=insecure,
                           headers=parse_headers(headers), seed=seed)
            run_and_report(spec=spec, label="replay", title=f"replay {log.name} x{speed:g} -> {base}",
                           thresholds=thresholds, abort_on_fail=abort_on_fail, out_root=out_root, no_save=no_save,
                           as_json=as_json, quiet=quiet, tags=parse_tags(tags), store_url=store_url_opt,
                           no_store=no_store)

    guarded(go)
