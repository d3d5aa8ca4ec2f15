"""`surge capacity`: USL fit, knee, instance sizing and growth projection from runs or a CSV."""

from __future__ import annotations

import json
import math
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from surge.api.errors import UsageError
from surge.cli.common import guarded, store_options
from surge.cli.params import FiniteRange


def _pct(text: str | None, what: str, lo: float = -0.99, hi: float = 10.0) -> float | None:
    if text is None:
        return None
    t = str(text).strip().rstrip("%")
    try:
        v = float(t) / 100.0
    except ValueError:
        raise UsageError(f"invalid {what} {text!r}: a percentage such as 5 or 5%") from None
    if not (lo <= v <= hi) or not math.isfinite(v):
        raise UsageError(f"invalid {what} {text!r}: must be between {lo * 100:g}% and {hi * 100:g}%")
    return v


def _duration(text: str | None, what: str) -> float | None:
    from surge.api.options import parse_duration

    return None if text is None else parse_duration(text, what=what)


def _is_csv(spec: str) -> bool:
    p = Path(spec)
    return spec.lower().endswith(".csv") or (p.exists() and not p.is_dir())


def load_points(specs: tuple[str, ...], by: str, latency: str, store_url: str | None) -> tuple[list[Any], list[str]]:
    """Points and their sources from one CSV file, or from run ids / run directories."""
    from surge.analysis.capacity.points import points_from_csv, points_from_series

    if any(_is_csv(s) for s in specs):
        if len(specs) != 1:
            raise UsageError("give either one CSV file or run ids/directories, not both")
        path = Path(specs[0])
        if not path.exists():
            raise UsageError(f"no such file: {path}")
        return points_from_csv(path), [str(path)]
    from surge.results.select import load_side

    store = None
    if not all(Path(s).is_dir() for s in specs):
        from surge.cli.store_cmds import open_store

        store = open_store(store_url)
    points, sources = [], []
    for spec in specs:
        side = load_side(spec, store)
        for run_id, series in zip(side.run_ids, side.runs, strict=True):
            got = points_from_series(series, by=by, latency=latency, source=run_id)
            if not got:
                raise UsageError(
                    f"run {run_id} has no steady stretch of >= 5 s at one {'VU count' if by == 'vus' else 'target rate'}"
                    + ("; for an arrival-rate run use --by rate" if by == "vus" else "; for a VU run use --by vus"))
            points.extend(got)
            sources.append(run_id)
    points.sort(key=lambda p: p.load)
    return points, sources


def analyse(points: list[Any], *, target_rate: float | None, slo_s: float | None, percentile: float,
            capacity: float | None, base_latency_s: float | None, growth: float | None, peak_load: float | None,
            headroom: float, instances: int | None, today: date) -> dict[str, Any]:
    """Run every model the flags ask for; returns the pieces (objects, not JSON)."""
    from surge.analysis.capacity.erlang import size_instances
    from surge.analysis.capacity.growth import project_growth
    from surge.analysis.capacity.knee import find_knee
    from surge.analysis.capacity.usl import fit_usl

    fit = fit_usl([p.load for p in points], [p.throughput for p in points])
    knee, knee_point, knee_points = None, None, 0
    with_lat = [p for p in points if p.latency_ms is not None]
    if with_lat:
        # Beyond the throughput peak the curve folds back (less throughput, more latency):
        # the knee is at or before the peak, so look only up to it.
        top = max(range(len(with_lat)), key=lambda i: with_lat[i].throughput)
        part = with_lat[: top + 1]
        knee = find_knee([p.throughput for p in part], [p.latency_ms for p in part])
        knee_points = len(part)
        knee_point = part[knee.index] if knee else None
    per_instance = capacity if capacity is not None else max(p.throughput for p in points)
    sizing = None
    if target_rate is not None:
        if slo_s is None:
            raise UsageError("--target-rate needs --slo (e.g. --slo 300ms) to size instances against")
        if base_latency_s is None:
            lowest = min(with_lat, key=lambda p: p.load) if with_lat else None
            base_latency_s = lowest.latency_ms / 1000.0 if lowest else 0.0
        sizing = size_instances(target_rate, per_instance, slo_s, percentile, base_latency_s)
    proj = None
    if growth is not None:
        peak = peak_load if peak_load is not None else target_rate
        if peak is None:
            raise UsageError("--growth needs the current peak: give --peak-load REQ_PER_S (or --target-rate)")
        n_inst = instances or (sizing.instances if sizing else 1)
        proj = project_growth(peak, per_instance * n_inst * (1.0 - headroom), growth, today)
        proj_inst = n_inst
    else:
        proj_inst = None
    return {"fit": fit, "knee": knee, "knee_point": knee_point, "knee_points": knee_points,
            "per_instance": per_instance,
            "sizing": sizing, "growth": proj, "growth_instances": proj_inst, "headroom": headroom}


def result_json(points: list[Any], sources: list[str], by: str | None, latency: str, res: dict[str, Any]) -> dict[str, Any]:
    knee, kp = res["knee"], res["knee_point"]
    return {
        "sources": sources,
        "by": by,
        "latency": latency,
        "points": [p.to_json() for p in points],
        "usl": res["fit"].to_json(),
        "knee": None if knee is None else {
            "load": kp.load, "throughput": kp.throughput, "latency_ms": kp.latency_ms, **knee.to_json()},
        "per_instance_capacity": res["per_instance"],
        "sizing": res["sizing"].to_json() if res["sizing"] else None,
        "growth": None if res["growth"] is None else {
            **res["growth"].to_json(), "instances": res["growth_instances"], "headroom": res["headroom"]},
    }


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:.4g}{unit}"


def render(console: Console, points: list[Any], by_label: str, latency: str, res: dict[str, Any]) -> None:
    t = Table(title="measured points", title_justify="left")
    for col in (by_label, "throughput req/s", f"latency {latency} ms", "errors", "seconds", "source"):
        t.add_column(col, justify="right" if col != "source" else "left")
    for p in points:
        err = "–" if p.error_rate is None else f"{p.error_rate * 100:.2f}%"
        t.add_row(_fmt(p.load), _fmt(p.throughput), _fmt(p.latency_ms), err, str(p.seconds or "–"), p.source)
    console.print(t)
    fit = res["fit"]
    lvl = int(round(fit.level * 100))
    u = Table(title=f"Universal Scalability Law fit ({lvl}% CI)", title_justify="left")
    for col in ("", "estimate", "low", "high"):
        u.add_column(col, justify="right" if col else "left")
    rows = [("σ contention", fit.sigma), ("κ coherency", fit.kappa), ("λ per-unit throughput", fit.lam),
            ("N* peak load", fit.n_peak), ("X(N*) peak req/s" if fit.n_peak else "X∞ = λ/σ req/s", fit.x_peak)]
    for name, e in rows:
        if e is None:
            u.add_row(name, "none (κ = 0)", "", "")
        else:
            u.add_row(name, _fmt(e.value), _fmt(e.low), _fmt(e.high))
    console.print(u)
    console.print(f"R² = {_fmt(fit.r2)}   [dim]CI: {fit.method}[/dim]")
    console.print(f"[bold]{fit.verdict}[/bold]")
    for n in fit.notes:
        console.print(f"[yellow]note:[/yellow] {n}")
    knee, kp = res["knee"], res["knee_point"]
    if kp is not None:
        console.print(f"knee: latency starts to climb at load {_fmt(kp.load)} "
                      f"({_fmt(kp.throughput)} req/s, {latency} {_fmt(kp.latency_ms)} ms; score {knee.score:.2f})")
        if fit.limit in ("unresolved", "linear"):
            # The fit names no limit, but the latency curve found one: plan by the knee.
            console.print(f"until more load levels are measured, plan by the knee: stay below load {_fmt(kp.load)}")
    elif any(p.latency_ms is not None for p in points):
        from surge.analysis.capacity.knee import MIN_POINTS as KNEE_MIN_POINTS

        upto = res.get("knee_points", 0)
        if upto < KNEE_MIN_POINTS:
            console.print(f"knee: not searched: {upto} load level(s) up to the throughput peak, "
                          f"{KNEE_MIN_POINTS} needed; measure more levels below the peak")
        else:
            console.print("knee: none (latency does not bend upward over the measured range)")
    s = res["sizing"]
    if s is not None:
        console.print(
            f"[bold]instances needed: {s.instances}[/bold] for {s.target_rate:g} req/s with "
            f"p{s.percentile:g} <= {s.slo_s * 1000:g} ms (per instance {s.per_instance:.4g} req/s, "
            f"utilisation {s.utilisation * 100:.0f}%, P(wait) {s.p_wait * 100:.1f}%, mean wait "
            f"{s.mean_wait_s * 1000:.3g} ms, unloaded latency {s.base_latency_s * 1000:.3g} ms; M/M/c model)")
    g = res["growth"]
    if g is not None:
        cap = f"{g.capacity:.4g} req/s ({res['growth_instances']} instance(s), {res['headroom'] * 100:g}% headroom)"
        if g.months_left == 0:
            console.print(f"[red]growth: the peak {g.peak:g} req/s is already at or over capacity {cap}[/red]")
        elif g.runs_out is None:
            console.print(f"growth: at {g.growth * 100:g}%/month the peak never reaches capacity {cap}")
        else:
            console.print(f"[bold]capacity runs out around {g.runs_out.isoformat()}[/bold] "
                          f"({g.months_left:.1f} months at {g.growth * 100:g}%/month from {g.peak:g} req/s; capacity {cap})")


@click.command("capacity")
@click.argument("sources", nargs=-1, required=True, metavar="RUN... | FILE.csv")
@click.option("--by", type=click.Choice(["vus", "rate"]), default="vus", show_default=True,
              help="Load axis for runs: active VUs (closed models) or target arrival rate (open models).")
@click.option("--latency", type=click.Choice(["p95", "mean"]), default="p95", show_default=True,
              help="Latency statistic of each point (runs).")
@click.option("--target-rate", type=FiniteRange(min=0, min_open=True), metavar="REQ_PER_S",
              help="Peak rate to size for: prints the instances needed to meet --slo.")
@click.option("--slo", metavar="DURATION", help="Latency objective for sizing, e.g. 300ms.")
@click.option("--slo-percentile", type=FiniteRange(0, 100, min_open=True, max_open=True), default=95.0,
              show_default=True, help="Share of requests that must meet --slo, in %.")
@click.option("--capacity", "capacity", type=FiniteRange(min=0, min_open=True), metavar="REQ_PER_S",
              help="One instance's capacity μ (default: the highest measured throughput).")
@click.option("--base-latency", metavar="DURATION",
              help="Unloaded latency queueing adds to (default: latency at the lowest measured load).")
@click.option("--growth", metavar="PCT", help="Traffic growth per month, compounding, e.g. 5%: projects when capacity runs out.")
@click.option("--peak-load", type=FiniteRange(min=0, min_open=True), metavar="REQ_PER_S",
              help="Today's peak traffic for --growth (default: --target-rate).")
@click.option("--headroom", default="0%", show_default=True, metavar="PCT",
              help="Capacity kept in reserve for --growth, e.g. 20% plans to run out at 80% of capacity.")
@click.option("--instances", type=click.IntRange(min=1), help="Instances serving today for --growth (default: the sized number, else 1).")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.html",
              help="Write a self-contained HTML chart of the points, the fit and the knee.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout (no tables).")
@store_options
def capacity_cmd(sources, by, latency, target_rate, slo, slo_percentile, capacity, base_latency, growth, peak_load,
                 headroom, instances, plot, as_json, store_url_opt) -> None:
    """Capacity model of a system: USL fit, latency knee, instance sizing, growth projection.

    \b
    SOURCES: run ids (or unique prefixes, 'latest', run directories): each steady
    stretch of >= 5 s at one VU count (or target rate) is a point, so one stepped
    run is enough; or one CSV file with columns load,throughput[,latency_ms]
    measured anywhere (production metrics, another tool). Needs >= 3 loads.

    \b
    Examples:
      surge run shop.py --stages 0s:10,1m:10,0s:20,1m:20,0s:40,1m:40,0s:80,1m:80
      surge capacity latest                          # fit + verdict + knee
      surge capacity latest --plot capacity.html     # chart (works offline)
      surge capacity prod.csv --target-rate 2000 --slo 300ms --slo-percentile 99
      surge capacity prod.csv --growth 5% --peak-load 900 --instances 4 --headroom 20%
      surge capacity run1 run2 run3 --by rate --json
    """

    def go() -> None:
        points, srcs = load_points(sources, by, latency, store_url_opt)
        res = analyse(points, target_rate=target_rate, slo_s=_duration(slo, "--slo"), percentile=slo_percentile,
                      capacity=capacity, base_latency_s=_duration(base_latency, "--base-latency"),
                      growth=_pct(growth, "--growth"), peak_load=peak_load,
                      headroom=_pct(headroom, "--headroom", 0.0, 0.99) or 0.0, instances=instances,
                      today=date.today())
        csv_mode = len(srcs) == 1 and _is_csv(srcs[0])
        by_label = "load" if csv_mode else ("VUs" if by == "vus" else "target rate /s")
        if plot:
            from surge.report.capacity_plot import capacity_figure, capacity_html

            fig = capacity_figure(points, res["fit"], res["knee"], load_label=by_label,
                                  title=f"Capacity of {', '.join(srcs)}")
            try:
                plot.write_text(capacity_html(fig, "surge capacity", [res["fit"].verdict]), encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write --plot {plot}: {exc.strerror}") from None
        if as_json:
            sys.stdout.write(json.dumps(result_json(points, srcs, None if csv_mode else by, latency, res), indent=2) + "\n")
            return
        console = Console() if Console().is_terminal else Console(width=160)
        render(console, points, by_label, latency, res)
        if plot:
            console.print(f"chart written to {plot}")

    guarded(go)
