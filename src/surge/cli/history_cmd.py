"""`surge history`: a metric across recorded runs, with change points."""

from __future__ import annotations

import json
import sys

import click
from rich import box
from rich.console import Console
from rich.table import Table

from surge.cli.common import guarded, store_options

HISTORY_METRICS = ("p50", "p90", "p95", "p99", "mean", "max", "error_rate", "rps")


@click.command("history")
@click.option("--name", help="Request name (as in the tables, e.g. /products); default: all requests.")
@click.option("--metric", type=click.Choice(HISTORY_METRICS), default="p95", show_default=True)
@click.option("--since", help="Only runs started at or after this ISO date.")
@click.option("--branch", help="Only runs on this git branch.")
@click.option("--scenario", help="Only runs of this scenario.")
@click.option("--min-segment", type=click.IntRange(min=2), default=3, show_default=True,
              help="Fewest runs between change points (a single outlier is never a shift).")
@click.option("--json", "as_json", is_flag=True)
@store_options
def history_cmd(name, metric, since, branch, scenario, min_segment, as_json, store_url_opt) -> None:
    """The metric across runs in time order, with change points (E-divisive means + Welch test)."""

    def go() -> None:
        from surge.analysis.changepoints import ChangePointConfig, detect
        from surge.cli.store_cmds import _since, open_store

        store = open_store(store_url_opt)
        points = store.metric_history(name=name, metric=metric, branch=branch, since=_since(since), scenario=scenario)
        values = [v for _, v in points]
        cps = detect(values, ChangePointConfig(min_segment=min_segment)) if values else []
        at = {cp.index: cp for cp in cps}
        if as_json:
            out = {
                "metric": metric, "name": name,
                "points": [{"run": r.id, "started_at": str(r.started_at), "commit": r.commit, "value": v}
                           for r, v in points],
                "change_points": [{"run": points[cp.index][0].id, **cp.__dict__} for cp in cps],
            }
            sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
            return
        t = Table(title=f"{metric} of {name or 'all requests'}", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
        for col in ("run", "started", "commit", metric, "change"):
            t.add_column(col)
        for i, (r, v) in enumerate(points):
            cp = at.get(i)
            # more req/s is better, more latency worse; runs without a change point get no mark
            worse = cp is not None and (cp.direction == "up") != (metric == "rps")
            mark = (f"[bold {'red' if worse else 'green'}]{cp.direction} "
                    f"{cp.magnitude * 100:+.1f}% (CI {cp.ci_low * 100:+.1f}%..{cp.ci_high * 100:+.1f}%, "
                    f"p={cp.p_value:.3g})[/]") if cp else ""
            t.add_row(r.id, str(r.started_at)[:19], (r.commit or "-")[:10], f"{v:,.3f}", mark)
        Console().print(t)
        scenarios = {r.scenario for r, _ in points}
        if len(scenarios) > 1 and not scenario:
            click.echo(f"warning: these runs come from {len(scenarios)} scenarios; pick one with --scenario "
                       "so that shifts are not just different workloads", err=True)
        if not points:
            click.echo("no recorded runs match: see `surge runs list`", err=True)
        elif len(points) < 2 * min_segment:
            click.echo(f"{len(points)} runs: change points need at least {2 * min_segment}", err=True)
        elif len(points) < 12:
            click.echo(f"{len(points)} runs: with fewer than ~12, only large shifts are detectable", err=True)

    guarded(go)
