"""`surge model LOG`: derive a workload model from a log and write it as a scenario file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from surge.cli.common import duration_arg, guarded
from surge.cli.replay_cmd import log_options


def _print_summary(w, stats, out: Path | None, top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from surge.traffic.workload import fmt_rate

    console = Console()
    for line in stats.report_lines():
        console.print(line, highlight=False, markup=False)
    res = " (1 s timestamps)" if w.whole_seconds else ""
    console.print(f"[bold]{w.requests:,} requests[/] over {w.duration_s:,.1f} s{res}: mean "
                  f"{fmt_rate(w.mean_rate)} req/s, peak {fmt_rate(w.peak_rate)} req/s", highlight=False)
    t = Table(title=f"top endpoints ({len(w.endpoints)} in all)", title_justify="left")
    for col, just in (("method", "left"), ("endpoint", "left"), ("requests", "right"), ("share", "right"),
                      ("errors", "right"), ("example", "left")):
        t.add_column(col, justify=just)
    for e in w.endpoints[:top]:
        t.add_row(e.method, e.template, f"{e.count:,}", f"{e.share:.1%}", f"{e.errors:,}", e.examples[0][:50])
    console.print(t)
    rc = w.rate
    console.print(f"rate curve: {len(rc.rates)} bucket(s) of {rc.bucket_s} s, min {fmt_rate(min(rc.rates))} "
                  f"max {fmt_rate(max(rc.rates))} req/s -> {len(rc.stages)} stage(s)", highlight=False)
    s = w.sessions
    th = s.think
    think = (f"think time {th.kind}: mean {th.mean:.3g} s, median {th.median:.3g} s, sigma {th.sigma:.2f} "
             f"({th.n:,} gaps)" if th.kind != "none" else "too few gaps to fit a think time")
    console.print(f"sessions: {s.count:,} ({s.gap_s:.0f} s inactivity gap), {s.mean_length:.2f} requests each "
                  f"on average (median {s.median_length:g}, p90 {s.p90_length:g}); {think}", highlight=False)
    if out is not None:
        console.print(f"scenario written to {out}: run it with `surge run {out}`", highlight=False)


@click.command("model")
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the model as a runnable scenario file here.")
@click.option("--unit", type=click.Choice(["request", "session"]), default="request", show_default=True,
              help="One iteration of the scenario is one request (follows the request rate) or one user "
                   "session with think times (follows the session start rate).")
@click.option("--gap", callback=duration_arg("gap"), default="30m", show_default=True,
              help="Inactivity that ends a session.")
@click.option("--base-url", "-b", metavar="URL", help="base_url written into the scenario's options.")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True, help="Endpoints shown.")
@log_options
@click.option("--json", "as_json", is_flag=True, help="Print the model as JSON on stdout.")
def model_cmd(log, out, unit, gap, base_url, top, fmt, fields, as_json) -> None:
    """Derive a workload model from LOG: endpoint mix, arrival-rate curve, sessions.

    Reads an access log (combined/common), JSON-lines log or HAR file in one
    streaming pass, groups URLs into endpoint templates (/products/{id}),
    compresses the request rate over time into ramping-arrival-rate stages, and
    splits the traffic into sessions per client (session cookie, or IP + user
    agent) to fit think times and session lengths. With -o it writes a
    readable scenario file that `surge run` runs as is.

    \b
    Examples:
      surge model access.log                              # print the model
      surge model access.log -o shop_model.py -b http://127.0.0.1:8000
      surge model access.log -o sessions.py --unit session --gap 15m
      surge model app.jsonl --field time=ts,path=url --json
    """

    def go() -> None:
        from surge.traffic.jsonl import parse_mapping
        from surge.traffic.read import open_log
        from surge.traffic.scenario_writer import render_scenario, write_scenario
        from surge.traffic.workload import build_workload

        if base_url is not None:  # written into the scenario: a typo would only surface at `surge run`
            from surge.engine.http.url import split_url

            split_url(base_url, what="--base-url")
        source = open_log(log, fmt, parse_mapping(fields) if fields else None)
        w = build_workload(source, gap_s=gap)
        if out is not None:
            write_scenario(out, render_scenario(w, source=str(log), base_url=base_url, unit=unit,
                                                out_name=str(out)))
        if as_json:
            data = {**w.as_dict(), "read": source.stats.as_dict(), "scenario": str(out) if out else None}
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        else:
            _print_summary(w, source.stats, out, top)

    guarded(go)
