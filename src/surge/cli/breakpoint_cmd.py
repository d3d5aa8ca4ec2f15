"""`surge breakpoint TARGET --slo EXPR`: find the highest arrival rate that still meets the SLOs.

Each step is an ordinary constant-arrival-rate run through ``run_session`` (its
own run directory and store entry, tagged ``breakpoint=<id>``): a step can be
opened, reported and compared like any run, and every step starts from a fresh,
known state instead of inheriting the previous step's queue. The price is a
fresh set of connections per step, which the warm-up seconds absorb. The
decisions (step verdict, next rate) are pure functions in
``analysis/breakpoint.py``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from surge.analysis.breakpoint import (
    Breakpoint,
    Criteria,
    SearchPolicy,
    StepResult,
    conclude,
    in_window,
    judge_step,
    next_rate,
)
from surge.analysis.observe import observe
from surge.analysis.thresholds import parse_thresholds
from surge.api.errors import UsageError
from surge.cli import exitcodes
from surge.cli.common import (
    arrival_slot_option,
    default_workers,
    duration_arg,
    guarded,
    parse_headers,
    preflight,
    record_in_store,
    store_options,
)
from surge.cli.params import FiniteRange
from surge.metrics.aggregate import RunAggregate

STEP_OVERHEAD_S = 3.0  # s: start, graceful stop and teardown of a step, until one was measured
GRACEFUL_STOP_S = 2.0  # s: in-flight iterations at the end of a step (the verdict ignores them)


class WindowCollector:
    """An output that merges only the seconds of a step's judged window (after the warm-up,
    before the graceful stop: :func:`surge.analysis.breakpoint.in_window`, the same seconds
    ``judge_step`` judges). Its merged histograms give both the SLO values and the step's
    p50/p95/p99, so the table and the SLO reason show the same numbers."""

    def __init__(self, warmup_s: float, duration_s: float) -> None:
        self.warmup_s, self.duration_s = warmup_s, duration_s
        self.agg = RunAggregate()

    def start(self, meta: dict[str, Any]) -> None:
        pass

    def second(self, st: Any, row: dict[str, Any]) -> None:
        if in_window(row["t"], self.warmup_s, self.duration_s):
            self.agg.add(st)

    def finish(self, summary: dict[str, Any], agg: Any, meta_update: dict[str, Any]) -> None:
        pass


@click.command("breakpoint")
@click.argument("target")
@click.option("--slo", "slos", multiple=True, metavar="EXPR",
              help="SLO a step must meet, repeatable: 'p95<300ms', 'error_rate<1%' (threshold syntax).")
@click.option("--start", type=FiniteRange(min=0, min_open=True), default=50.0, show_default=True,
              help="First step's rate (iterations/s; requests/s for a URL).")
@click.option("--max", "max_rate", type=FiniteRange(min=0, min_open=True), default=5000.0, show_default=True,
              help="Never step above this rate.")
@click.option("--step-duration", callback=duration_arg("step duration"), default="20s", show_default=True,
              help="Length of each constant-rate step.")
@click.option("--warmup", callback=duration_arg("warmup"), default=None,
              help="Seconds at the start of each step left out of the verdict (default: a quarter of the step, 1-5 s).")
@click.option("--time-budget", callback=duration_arg("time budget"), default="10m", show_default=True,
              help="Stop starting steps once the search would run past this.")
@click.option("--tolerance", type=FiniteRange(min=0.005, max=1.0), default=0.05, show_default=True,
              help="Stop when first failing / last passing rate - 1 is at most this.")
@click.option("--growth", type=FiniteRange(min=1.1, max=4.0), default=2.0, show_default=True,
              help="Largest factor between two growing steps (smaller near the SLO).")
@click.option("--max-steps", type=click.IntRange(min=1, max=100), default=20, show_default=True)
@click.option("--connections", "-c", type=click.IntRange(min=1), default=100, show_default=True,
              help="URL target: keep-alive connections (requests queue when all are busy).")
@click.option("--method", "-m", default="GET", show_default=True, help="URL target: HTTP method.")
@click.option("--header", "-H", "headers", multiple=True, metavar="'K: V'", help="Request header, repeatable.")
@click.option("--base-url", "-b", help="Scenario target: prefix for relative URLs.")
@click.option("--max-vus", type=click.IntRange(min=1), help="Scenario target: VU cap per step (default 1000).")
@arrival_slot_option
@click.option("--workers", "-w", type=click.IntRange(min=1), default=None, help="Worker processes (default: CPU cores).")
@click.option("--timeout", callback=duration_arg("timeout"), default="10s", show_default=True,
              help="Total timeout per request.")
@click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
              show_default=True, help="Directory for the steps' run directories.")
@click.option("--no-save", is_flag=True, help="Write no run directories (and record nothing in the store).")
@click.option("--no-store", is_flag=True, help="Do not record the steps in the run store.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines and no table.")
@click.option("--no-preflight", is_flag=True, help="Skip the reachability check.")
@click.option("--seed", type=int, default=0, show_default=True)
@store_options
def breakpoint_cmd(target, slos, start, max_rate, step_duration, warmup, time_budget, tolerance, growth, max_steps,
                   connections, method, headers, base_url, max_vus, arrival_slot, workers, timeout, out_root, no_save, no_store,
                   as_json, quiet, no_preflight, seed, store_url_opt) -> None:
    """Find the highest arrival rate TARGET (a scenario file or a URL) sustains within the SLOs.

    Runs constant-arrival-rate steps, growing the rate (x2 at most) until a step
    fails, then bisects between the last pass and the first fail. A step fails on
    a sustained SLO breach (after its warm-up; a one-second blip does not count)
    or on saturation: achieved rate under 95 % of the target, dropped iterations,
    latency climbing through the step, or errors. Each step is a recorded run.
    A step's p50/p95/p99 and its SLO values are percentiles of all requests in
    its window (the step after --warmup, before the graceful stop).

    \b
    Examples:
      surge breakpoint http://127.0.0.1:8000/products --slo 'p95<300ms' --slo 'error_rate<1%'
      surge breakpoint shop.py -b http://127.0.0.1:8000 --slo 'p99<1s' --start 100 --max 2000
      surge breakpoint http://127.0.0.1:8000/ --step-duration 10s --time-budget 5m --json

    Exit codes: 0 a sustainable rate was found, 3 not even the lowest step passed,
    1 the target cannot be reached (connection refused, no route; checked before
    the first step unless --no-preflight), 2 usage error, 130 interrupted.
    """

    def go() -> None:
        if max_rate < start:
            raise UsageError(f"--max {max_rate:g} is below --start {start:g}: raise --max or lower --start")
        if time_budget < step_duration:
            raise UsageError(f"--time-budget {time_budget:g}s is shorter than one step ({step_duration:g}s): "
                             "raise it (10m is typical)")
        if step_duration < 2:
            raise UsageError(f"--step-duration {step_duration:g}s is too short to judge: use 2s or more (20s is typical)")
        wu = warmup if warmup is not None else min(5.0, max(1.0, step_duration / 4))
        if wu > step_duration - 1:
            raise UsageError(f"--warmup {wu:g}s leaves under 1 s of a {step_duration:g}s step to judge: "
                             "shorten it or lengthen --step-duration")
        ths = parse_thresholds(slos)
        make_spec, label, scen = _target(target, connections, method, headers, base_url, max_vus, arrival_slot,
                                         workers, timeout, seed, no_preflight)
        ths = ths + parse_thresholds(scen.options.thresholds) if scen is not None else ths
        policy = SearchPolicy(start=start, max_rate=max_rate, growth=growth, tolerance=tolerance, max_steps=max_steps)
        criteria = Criteria(warmup_s=wu)
        result, interrupted = search(make_spec, ths, policy, criteria, step_duration, time_budget,
                                     label=label, scenarios=scen, out_root=None if no_save else out_root,
                                     store=None if (no_save or no_store) else (store_url_opt or ""),
                                     progress=None if (quiet or as_json) else Console(stderr=True))
        if as_json:
            sys.stdout.write(json.dumps(result.to_json(), indent=2, default=str) + "\n")
        elif not quiet:
            render(Console() if Console().is_terminal else Console(width=160), result, target)
        if interrupted:
            sys.exit(exitcodes.INTERRUPTED)
        if result.max_rate is None:
            sys.exit(exitcodes.THRESHOLD_FAILED)

    guarded(go)


def _target(target, connections, method, headers, base_url, max_vus, arrival_slot, workers, timeout, seed,
            no_preflight):
    """A function rate -> RunSpec for a URL (the hit fast path) or a scenario file."""
    from dataclasses import replace

    from surge.api.options import Options
    from surge.engine.coordinator import RunSpec

    timeouts = (min(10.0, timeout), timeout, timeout)
    hdrs = parse_headers(headers)
    Options(arrival_slot=arrival_slot).normalised(source="command line")  # before anything runs
    if target.startswith(("http://", "https://")):
        from surge.engine.http.url import split_url
        from surge.engine.messages import HitSpec

        split_url(target)
        if not no_preflight:
            preflight(target, "URL")
        n_workers = min(default_workers(workers), connections)
        m = method.upper()
        if m in ("POST", "PUT", "PATCH"):
            hdrs += (("Content-Length", "0"),)
        hit = HitSpec(m, target, hdrs, b"", connections)

        def url_spec(rate: float, duration: float) -> RunSpec:
            return RunSpec(options=Options(rate=rate, duration=duration, arrival_slot=arrival_slot),
                           workers=n_workers, hit=hit,
                           timeouts=timeouts, seed=seed)

        return url_spec, "breakpoint", None
    from surge.engine.loader import load_scenarios
    from surge.engine.models import build_model

    path = Path(target)
    if not path.exists():
        raise UsageError(f"{target} is neither a URL (http://...) nor an existing scenario file: check the path")
    scen = load_scenarios(path)
    base = scen.options.merged(Options(base_url=base_url, max_vus=max_vus, arrival_slot=arrival_slot)
                               ).normalised(source="command line")
    build_model(replace(base, model="constant-arrival-rate", rate=1.0, duration=1.0, stages=None, shape=None,
                        pacing=None, iterations=None))
    if not no_preflight:
        preflight(base.base_url, "--base-url" if base_url else "options.base_url")

    def scenario_spec(rate: float, duration: float) -> RunSpec:
        o = replace(base, model="constant-arrival-rate", rate=rate, duration=duration, stages=None, shape=None,
                    pacing=None, iterations=None, graceful_stop=GRACEFUL_STOP_S)
        return RunSpec(options=o, workers=default_workers(workers), scenario_path=scen.path, timeouts=timeouts,
                       headers=hdrs, seed=seed)

    return scenario_spec, path.stem, scen


def search(make_spec, ths, policy: SearchPolicy, criteria: Criteria, step_s: float, budget_s: float, *,
           label: str, scenarios: Any, out_root: Path | None, store: str | None,
           progress: Console | None) -> tuple[Breakpoint, bool]:
    """Run steps until the policy, the step cap or the time budget ends the search."""
    from surge.session import run_session

    search_id = time.strftime("%Y%m%d-%H%M%S")
    steps: list[StepResult] = []
    t0 = time.monotonic()
    overhead = STEP_OVERHEAD_S
    last_load = None
    while True:
        rate, why = next_rate([(s.target, s.passed) for s in steps], policy, last_load)
        if rate is None:
            break
        if time.monotonic() - t0 + step_s + overhead > budget_s:
            why = f"time budget ({budget_s:g}s) spent"
            break
        if progress is not None:
            progress.print(f"step {len(steps) + 1}: {rate:,.1f}/s for {step_s:g}s ({why}) ...", highlight=False)
        collector = WindowCollector(criteria.warmup_s, step_s)
        started = time.monotonic()
        res = run_session(make_spec(rate, step_s), label=f"{label}-bp", out_root=out_root, outputs=[collector],
                          scenarios=scenarios)
        overhead = max(0.0, time.monotonic() - started - step_s)
        s = res.summary
        win_s = max(1, len(collector.agg.rows))
        observed = [(th, observe(th, collector.agg, win_s)) for th in ths]
        step = judge_step(rate, res.outcome.agg.rows, observed, criteria=criteria, duration_s=step_s,
                          generator_bound=bool(s["generator"]["bound"]), latency=collector.agg.totals().latency)
        if res.run_dir is not None:
            from dataclasses import replace

            step = replace(step, run_dir=str(res.run_dir))
            if store is not None:
                record_in_store(res.run_dir, store or None, {"breakpoint": search_id, "step": str(len(steps) + 1),
                                                             "target_rate": f"{rate:g}"})
        steps.append(step)
        last_load = step.load if step.passed else last_load
        if progress is not None:
            verdict = "[green]pass[/]" if step.passed else "[red]FAIL[/]"
            progress.print(f"  {verdict} achieved {step.achieved:,.1f}/s p95 {_ms(step.p95)} "
                           f"{'; '.join(step.reasons)}", highlight=False)
        if s.get("error"):
            raise UsageError(s["error"])
        if s["status"] == "interrupted":
            return conclude(steps, "interrupted"), True
    return conclude(steps, why), False


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f} ms"


def render(console: Console, r: Breakpoint, target: str) -> None:
    """The table of steps and the conclusion."""
    w = next((s.window for s in r.steps if s.window is not None), None)
    caption = None if w is None else (
        f"p50/p95/p99 and SLO values: all requests of each step's window, from {w[0]:g} s to {w[1]:g} s "
        "into the step (after the warm-up, before the graceful stop)")
    t = Table(title=f"breakpoint search: {target}", title_justify="left", caption=caption, caption_justify="left")
    for col in ("#", "target/s", "achieved/s", "p50", "p95", "p99", "errors", "verdict", "reason"):
        t.add_column(col, justify="right" if col not in ("verdict", "reason") else "left",
                     overflow="fold" if col == "reason" else "ellipsis")
    for i, s in enumerate(r.steps, 1):
        t.add_row(str(i), f"{s.target:,.1f}", f"{s.achieved:,.1f}", _ms(s.p50), _ms(s.p95), _ms(s.p99),
                  f"{s.error_rate:.2%}", "[green]pass[/]" if s.passed else "[red]fail[/]", "; ".join(s.reasons))
    console.print(t)
    if r.max_rate is None:
        console.print(f"[bold red]no sustainable rate found[/] ({r.stop_reason})")
    else:
        lo, hi = r.band
        upper = f"{hi:,.1f}/s" if hi is not None else "not reached"
        console.print(f"[bold]maximum sustainable rate: {r.max_rate:,.1f}/s[/]  band [{lo:,.1f}/s, {upper}]  "
                      f"(stopped: {r.stop_reason})", highlight=False)
    if r.knee:
        console.print(f"knee of p95 latency vs throughput: {r.knee['throughput']:,.1f}/s at "
                      f"{r.knee['p95_ms']:,.1f} ms", highlight=False)
    for n in r.notes:
        console.print(f"[yellow]note:[/] {n}")
