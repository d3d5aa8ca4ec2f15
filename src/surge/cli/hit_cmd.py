"""`surge hit URL`: ad-hoc load on one URL, like hey / oha / vegeta, on the fast path."""

from __future__ import annotations

import json as _json
from pathlib import Path

import click

from surge.api.http_syntax import is_token
from surge.api.limits import MAX_RATE, MAX_VUS
from surge.api.shapes import parse_shape
from surge.cli.common import (
    ARRIVAL_CALLBACK,
    arrival_slot_option,
    check_fd_room,
    default_workers,
    duration_arg,
    guarded,
    output_options,
    parse_headers,
    parse_tags,
    parsed_callback,
    preflight,
    run_and_report,
    store_options,
)
from surge.cli.params import FiniteRange

_shape = parsed_callback(parse_shape)


REQUESTS_BOUND_S = 600.0  # s: the bound of a -n run without -d (like --max-duration of surge run)


@click.command("hit")
@click.argument("url")
@click.option("--connections", "-c", type=click.IntRange(min=1, max=MAX_VUS), default=50, show_default=True,
              help="Keep-alive connections (closed model: each sends its next request as soon as the last completes).")
@click.option("--rate", "-r", type=FiniteRange(min=0, min_open=True, max=MAX_RATE),
              help="Requests per second (open model on the -c connections; latency from the scheduled time, like wrk2).")
@click.option("--duration", "-d", callback=duration_arg("duration"),
              help="Run length (default 10s; with -n, the bound of the run: 10 min by default).")
@click.option("--requests", "-n", type=click.IntRange(min=1), help="Stop after this many requests (closed model); the run is bounded by -d, 10 min by default with -n.")
@click.option("--method", "-m", default="GET", show_default=True, help="HTTP method.")
@click.option("--header", "-H", "headers", multiple=True, metavar="'K: V'", help="Request header, repeatable.")
@click.option("--body", help="Request body; '@file' reads it from a file.")
@click.option("--json-body", help="JSON request body (sets Content-Type: application/json).")
@click.option("--arrival", callback=ARRIVAL_CALLBACK, metavar="uniform|poisson|gamma:cv=C",
              help="Inter-arrival times with --rate (default uniform); gamma:cv=2 keeps the rate but adds bursts.")
@arrival_slot_option
@click.option("--shape", callback=_shape, metavar="KIND:PARAMS",
              help="Rate shape with --rate: sine:period=60s,amplitude=0.5, diurnal:amplitude=0.8[,day=10m], "
                   "step:every=30s,by=50, trace:FILE.csv (rows t_s,rate; needs no --rate). See docs/models.md.")
@click.option("--tag", "tags", multiple=True, metavar="K=V", help="Label the run in the store, repeatable.")
@click.option("--no-store", is_flag=True, help="Do not record the run in the run store.")
@store_options
@output_options
def hit_cmd(url, connections, rate, duration, requests, method, headers, body, json_body, arrival, arrival_slot,
            shape, tags,
            no_store,
            store_url_opt, thresholds,
            abort_on_fail, workers, timeout, connect_timeout, read_timeout, insecure, out_root: Path, no_save,
            as_json, quiet, no_preflight, seed) -> None:
    """Send one request to URL over and over, with no scenario code per request.

    \b
    Examples:
      surge hit http://127.0.0.1:8000/ -c 50 -d 10s         # as fast as possible on 50 connections
      surge hit http://127.0.0.1:8000/ --rate 1000 -d 30s    # 1000 req/s, coordinated-omission free
      surge hit http://127.0.0.1:8000/cart -m POST --json-body '{"product_id": 1}'
    """

    def go() -> None:
        from surge.api.errors import UsageError
        from surge.api.options import Options
        from surge.engine.coordinator import RunSpec
        from surge.engine.http.url import split_url
        from surge.engine.messages import HitSpec

        split_url(url)
        if duration is not None and duration <= 0:
            raise UsageError("-d must be > 0: give e.g. -d 10s (or leave it out)")
        if not is_token(method):
            raise UsageError(f"-m {method!r} is not an HTTP method: give e.g. GET, POST or PURGE (letters, no spaces)")
        check_fd_room(connections)
        hdrs = parse_headers(headers)
        payload = b""
        if body is not None and json_body is not None:
            raise UsageError("give either --body or --json-body, not both")
        if json_body is not None:
            try:
                _json.loads(json_body)
            except ValueError as exc:
                raise UsageError(f"--json-body is not valid JSON: {exc}") from None
            payload = json_body.encode()
            hdrs += (("Content-Type", "application/json"),)
        elif body is not None:
            if body.startswith("@"):
                try:
                    payload = Path(body[1:]).read_bytes()
                except OSError as exc:
                    raise UsageError(f"cannot read --body file {body[1:]}: {exc.strerror}") from None
            else:
                payload = body.encode()
        m = method.upper()
        if payload or m in ("POST", "PUT", "PATCH"):
            hdrs += (("Content-Length", str(len(payload))),)
        # -n alone: the count ends the run, not the default 10 s
        dur = REQUESTS_BOUND_S if requests is not None and duration is None else duration
        opts = Options(rate=rate, duration=dur, iterations=requests, arrival=arrival, arrival_slot=arrival_slot,
                       shape=shape).normalised(source="command line")
        if not no_preflight:
            preflight(url, "URL")
        n_workers = min(default_workers(workers), connections)
        spec = RunSpec(options=opts, workers=n_workers,
                       hit=HitSpec(m, url, hdrs, payload, connections),
                       timeouts=(connect_timeout, read_timeout, timeout), insecure=insecure, seed=seed)
        run_and_report(spec=spec, label="hit", title=f"{m} {url}", thresholds=thresholds, abort_on_fail=abort_on_fail,
                       out_root=out_root, no_save=no_save, as_json=as_json, quiet=quiet,
                       tags=parse_tags(tags), store_url=store_url_opt, no_store=no_store)

    guarded(go)
