"""`surge run SCENARIO.py`: load test with a scripted scenario."""

from __future__ import annotations

from pathlib import Path

import click

from surge.api.errors import UsageError
from surge.api.options import MODELS, Options, parse_stages
from surge.api.presets import PRESETS, compile_preset, parse_target
from surge.api.shapes import parse_shape
from surge.cli.common import (
    ARRIVAL_CALLBACK,
    arrival_slot_option,
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
from surge.cli.dashboard_cmd import dashboard_options, run_dashboard
from surge.cli.params import FiniteRange
from surge.cli.sut_flags import monitor_spec, sut_options


def worker_count(opts: Options, requested: int | None) -> int:
    """Worker processes for a run: the cores (or --workers), but never more than a
    closed model's peak VUs, so that no worker sits idle with an empty share."""
    n = default_workers(requested)
    if opts.resolved_model() in ("constant-vus", "per-vu-iterations", "shared-iterations"):
        n = min(n, max(1, opts.vus if opts.vus is not None else 1))
    elif opts.resolved_model() == "ramping-vus" and opts.stages:
        peak = max([opts.vus or 0] + [int(s.target) for s in opts.stages])
        n = min(n, max(1, peak))
    return n


_stages = parsed_callback(parse_stages)


def _profile(value: str) -> str | int:
    """A preset name, or an integer: a PID to profile with py-spy (issue #6's ``--profile PID``)."""
    if value.strip().isdigit():
        return int(value)
    if value.lower() not in PRESETS:
        raise UsageError(f"unknown profile {value!r}: choose one of {', '.join(PRESETS)}, or give a PID for py-spy")
    return value.lower()


@click.command("run")
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--vus", "-u", type=click.IntRange(min=0), help="Virtual users (closed models) or pre-allocated VUs (open models).")
@click.option("--rate", "-r", type=FiniteRange(min=0, min_open=True),
              help="Iterations started per second: an open model (constant-arrival-rate; start rate with --stages).")
@click.option("--duration", "-d", callback=duration_arg("duration"), help="Run length, e.g. 30s, 2m, 1h.")
@click.option("--stages", "-s", callback=_stages, metavar="D:T,...",
              help="Ramp stages, e.g. '30s:100,1m:100,10s:0' (targets: VUs, or iterations/s with --rate/--model ramping-arrival-rate).")
@click.option("--iterations", "-i", type=click.IntRange(min=1), help="Total iterations (shared), or per VU with --model per-vu-iterations.")
@click.option("--model", type=click.Choice(MODELS), help="Workload model; inferred from the flags when omitted.")
@click.option("--max-vus", type=click.IntRange(min=1), help="Cap on VUs an open model may allocate (default max(--vus, 1000)); arrivals beyond it are dropped and counted.")
@click.option("--arrival", callback=ARRIVAL_CALLBACK, metavar="uniform|poisson|gamma:cv=C",
              help="Inter-arrival times of open models (default uniform); gamma:cv=2 keeps the rate but adds bursts.")
@arrival_slot_option
@click.option("--shape", callback=parsed_callback(parse_shape), metavar="KIND:PARAMS",
              help="Rate shape of an open model: sine:period=60s,amplitude=0.5, diurnal:amplitude=0.8[,day=10m], "
                   "step:every=30s,by=50, trace:FILE.csv (rows t_s,rate; needs no --rate).")
@click.option("--pacing", callback=duration_arg("pacing"),
              help="Closed models: start each VU's iterations this often, e.g. 5s, whatever they take (overruns fail the 'pacing' check).")
@click.option("--profile", "profile", callback=parsed_callback(_profile), metavar="PRESET|PID",
              help=f"Test-type preset: {', '.join(PRESETS)} (see docs/presets.md); needs --target, "
                   "stretched by --duration; explicit flags override it. A number is a PID: same as --py-spy PID.")
@click.option("--target", help="What a --profile ramps to: 200rps (arrival rate, open model) or 50vus (closed model).")
@click.option("--graceful-stop", callback=duration_arg("graceful stop"), help="Time in-flight iterations get at the end (default 30s).")
@click.option("--graceful-ramp-down", callback=duration_arg("graceful ramp-down"), help="Time iterations of removed VUs get (default 30s).")
@click.option("--max-duration", callback=duration_arg("max duration"), help="Bound for iteration-count models (default 10m).")
@click.option("--base-url", "-b", help="Prefix for relative URLs in the scenario, e.g. http://127.0.0.1:8000.")
@click.option("--header", "-H", "headers", multiple=True, metavar="'K: V'", help="Header sent with every request, repeatable.")
@click.option("--follow-redirects", is_flag=True, help="Follow 3xx responses (each hop is recorded).")
@click.option("--tag", "tags", multiple=True, metavar="K=V", help="Label the run in the store, repeatable (e.g. env=staging).")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Run N times back to back; the runs share a repeat_group tag and `surge compare` uses them as units.")
@click.option("--no-store", is_flag=True, help="Do not record the run in the run store.")
@store_options
@output_options
@sut_options
@dashboard_options
def run_cmd(scenario: Path, vus, rate, duration, stages, iterations, model, max_vus, arrival, arrival_slot, shape,
            pacing,
            profile, target, graceful_stop,
            graceful_ramp_down, max_duration, base_url, headers, follow_redirects, tags, repeat, no_store,
            store_url_opt, thresholds, abort_on_fail,
            workers, timeout, connect_timeout, read_timeout, insecure, out_root, no_save, as_json, quiet,
            no_preflight, seed, monitor_targets, launch, py_spy, prometheus, prom_queries) -> None:
    """Run the load test in SCENARIO, a Python file of `async def` scenarios.

    \b
    Examples:
      surge run examples/shop.py                          # options from the file
      surge run shop.py --vus 50 -d 1m                    # 50 VUs for a minute (closed model)
      surge run shop.py --rate 200 -d 30s                 # 200 iterations/s (open model)
      surge run shop.py --stages 30s:100,1m:100,10s:0     # ramp VUs
      surge run shop.py -t 'p95<300ms' -t 'error_rate<1%'
      surge run shop.py --profile load --target 200rps     # preset: ramp, hold 8 min, ramp down
      surge run shop.py --profile spike --target 50vus -d 5m
      surge run shop.py --rate 100 -d 10m --shape sine:period=2m,amplitude=0.5 --arrival gamma:cv=2
      surge run shop.py --monitor uvicorn --py-spy 4242    # sample and profile the SUT
      surge run shop.py -b http://127.0.0.1:8000 --launch 'uvicorn app:app --port 8000' --py-spy launched

    Flags override the file's `options`; thresholds from both apply.
    Exit codes: 0 ok, 1 run error, 2 usage error, 3 threshold failed, 130 interrupted.
    """

    def go() -> None:
        from surge.engine.coordinator import RunSpec
        from surge.engine.loader import load_scenarios
        from surge.engine.models import build_model

        # --profile PID is --py-spy PID (issue #6); a name is a preset.
        spy, preset_name = (str(profile), None) if isinstance(profile, int) else (py_spy, profile)
        if isinstance(profile, int) and py_spy not in (None, spy):
            raise UsageError(f"--profile {profile} and --py-spy {py_spy} name two processes to profile: give one")
        if target is not None and preset_name is None:
            raise UsageError("--target goes with --profile, e.g. --profile load --target 200rps")
        preset = (compile_preset(preset_name, parse_target(target) if target else None, duration)
                  if preset_name else Options())
        scen = load_scenarios(scenario)
        cli = Options(model=model, base_url=base_url, vus=vus, rate=rate,
                      duration=None if preset_name else duration, stages=stages,
                      iterations=iterations, max_vus=max_vus, arrival=arrival, arrival_slot=arrival_slot,
                      shape=shape, pacing=pacing,
                      graceful_stop=graceful_stop, graceful_ramp_down=graceful_ramp_down, max_duration=max_duration)
        opts = scen.options.merged(preset).merged(cli).normalised(source="command line")
        build_model(opts)  # validates the flag combination before any process starts
        ths = tuple(scen.options.thresholds) + tuple(thresholds)
        abort = abort_on_fail or bool(scen.options.abort_on_fail) or bool(preset.abort_on_fail)
        if preset_name == "breakpoint" and not ths:
            raise UsageError("--profile breakpoint stops at the first failing threshold: give one, "
                             "e.g. -t 'p95<300ms' -t 'error_rate<1%'")
        monitor = monitor_spec(monitor_targets=monitor_targets, launch=launch, py_spy=spy,
                               prometheus=prometheus, prom_queries=prom_queries, base_url=opts.base_url)
        ctx = click.get_current_context()
        if repeat > 1 and ctx.meta.get("surge.dashboard", {}).get("dashboard"):
            # Runs 2..N would fork their workers while the dashboard's server thread runs its
            # event loop: a fork with a lock held in that thread can hang a worker.
            raise UsageError("--dashboard follows one run: drop --repeat, or watch the repeats with "
                             "`surge dashboard` in another terminal")
        if not no_preflight and not launch:  # a --launch'ed server is waited for instead
            preflight(opts.base_url, "--base-url" if base_url else "options.base_url")
        spec = RunSpec(options=opts, workers=worker_count(opts, workers), scenario_path=scen.path,
                       timeouts=(connect_timeout, read_timeout, timeout), insecure=insecure,
                       headers=parse_headers(headers), seed=seed, follow_redirects=follow_redirects)
        with run_dashboard(store_url_opt=store_url_opt, title=scenario.name) as extra_outputs:
            run_and_report(spec=spec, label=scenario.stem, title=scenario.name, thresholds=ths,
                           abort_on_fail=abort, out_root=out_root, no_save=no_save, as_json=as_json,
                           quiet=quiet, scenarios=scen, tags=parse_tags(tags), repeat=repeat,
                           store_url=store_url_opt, no_store=no_store, monitor=monitor,
                           extra_outputs=extra_outputs)

    guarded(go)
