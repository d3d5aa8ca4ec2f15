"""`surge compare A B` and `surge gate`: is B slower than A, and should CI fail?"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from surge.api.errors import UsageError
from surge.cli import exitcodes
from surge.cli.common import guarded, store_options
from surge.cli.params import FiniteRange


def _pct(text: str, what: str) -> float:
    t = text.strip().rstrip("%")
    try:
        v = float(t) / 100.0
    except ValueError:
        raise UsageError(f"invalid {what} {text!r}: a percentage such as 5 or 5%") from None
    if not 0 < v < 10:
        raise UsageError(f"invalid {what} {text!r}: must be between 0 and 1000%")
    return v


def check_writable(path: str | None, flag: str) -> None:
    """Fail before any work when ``flag``'s output file cannot be written ('-' is stdout).

    Opens the file for appending (creating it, then removing what this created), so the
    answer is the operating system's, not a guess from permission bits.
    """
    if not path or path == "-":
        return
    p = Path(path)
    existed = p.exists()
    try:
        with open(p, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write {flag} {path}: {exc.strerror or exc}; choose another path") from None
    if not existed:
        try:
            p.unlink()
        except OSError:
            pass


def write_output(path: str, text: str, flag: str) -> None:
    """Write ``flag``'s output file; an OS error is one line naming the file."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {flag} {path}: {exc.strerror or exc}; choose another path") from None


def _config(delta: str, metric_delta: tuple[str, ...], alpha: float, warmup: int, seed: int):
    from surge.analysis.compare import METRICS, CompareConfig

    per = {}
    for md in metric_delta:
        k, sep, v = md.partition("=")
        if not sep or k not in METRICS:
            raise UsageError(f"invalid --metric-delta {md!r}: write METRIC=PCT with METRIC one of {', '.join(METRICS)}")
        per[k] = _pct(v, f"--metric-delta {k}")
    return CompareConfig(delta=_pct(delta, "--delta"), per_metric_delta=per, alpha=alpha, warmup_s=warmup, seed=seed)


def _pair(a, b, warmup: int):
    """Samples of both sides in one unit: whole runs when both sides have repeats,
    else per-second buckets (a side's several runs are then laid end to end)."""
    from surge.analysis.compare import samples_from_runs, samples_from_series

    if len(a.runs) > 1 and len(b.runs) > 1:
        return samples_from_runs([r[warmup:] for r in a.runs]), samples_from_runs([r[warmup:] for r in b.runs])
    return samples_from_series(_concat(a.runs, warmup)), samples_from_series(_concat(b.runs, warmup))


def _concat(runs, warmup: int):
    import dataclasses

    out = []
    for run in runs:
        for st in run[warmup:]:
            out.append(dataclasses.replace(st, second=len(out)))
    return out


def _console() -> Console:
    c = Console()
    return c if c.is_terminal else Console(width=160)


def _open_store_quietly(url: str | None):
    try:
        from surge.cli.store_cmds import open_store

        return open_store(url)
    except Exception:  # a directory-only comparison works without a store
        return None


def run_compare(a_spec: str, b_spec: str, store, config):
    from surge.analysis.compare import compare
    from surge.results.select import load_side

    a, b = load_side(a_spec, store), load_side(b_spec, store)
    return a, b, _with_mismatches(compare(*_pair(a, b, config.warmup_s), config), a, b)


def _with_mismatches(cmp, a, b):
    """Add warnings when the two sides did not run the same thing (scenario, model, options, host)."""
    import dataclasses

    from surge.results.select import mismatches

    extra = mismatches(a, b)
    return dataclasses.replace(cmp, warnings=[*cmp.warnings, *extra]) if extra else cmp


def compare_options(f):
    for o in reversed([
        click.option("--delta", default="5%", show_default=True,
                     help="Practical threshold: changes smaller than this are SAME, larger can be REGRESSED/IMPROVED."),
        click.option("--metric-delta", multiple=True, metavar="METRIC=PCT",
                     help="Per-metric threshold, e.g. p99=10%, error_rate=50%. Repeatable."),
        click.option("--alpha", type=FiniteRange(0.0001, 0.5), default=0.05, show_default=True,
                     help="False-discovery rate (Benjamini-Hochberg across names and metrics)."),
        click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seconds dropped from the start of each run."),
        click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed."),
    ]):
        f = o(f)
    return f


@click.command("compare")
@click.argument("a")
@click.argument("b")
@compare_options
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@click.option("--markdown", "markdown", type=click.Path(dir_okay=False, allow_dash=True), help="Also write Markdown here ('-' for stdout).")
@store_options
def compare_cmd(a, b, delta, metric_delta, alpha, warmup, seed, as_json, markdown, store_url_opt) -> None:
    """Compare run B against run A, per request name and metric, with confidence intervals.

    \b
    A and B are run ids (or unique prefixes, or 'latest'), run directories,
    'group:NAME' for the repeats of `surge run --repeat N`, or id1,id2,...
    Verdicts: REGRESSED / IMPROVED (significant after Benjamini-Hochberg and
    beyond --delta), SAME (the whole confidence interval within +-delta),
    INCONCLUSIVE (run longer or repeat). Exit code 0; use `surge gate` in CI.
    """

    def go() -> None:
        config = _config(delta, metric_delta, alpha, warmup, seed)
        check_writable(markdown, "--markdown")
        store = _open_store_quietly(store_url_opt)
        sa, sb, cmp = run_compare(a, b, store, config)
        from surge.cli.render_compare import comparison_json, render_comparison
        from surge.report.markdown import comparison_markdown

        if as_json:
            sys.stdout.write(json.dumps(comparison_json(cmp, sa, sb), indent=2, default=str) + "\n")
        else:
            render_comparison(_console(), cmp, sa.label, sb.label)
        if markdown:
            text = comparison_markdown(cmp, a_label=sa.label, b_label=sb.label)
            if markdown == "-":
                sys.stdout.write(text)
            else:
                write_output(markdown, text, "--markdown")

    guarded(go)


@click.command("gate")
@click.argument("run", default="latest")
@click.option("--baseline", "baseline_spec", help="Compare with this run (id, directory, group:NAME).")
@click.option("--branch", default="main", show_default=True, help="Use this branch's baseline (`surge baseline set`).")
@click.option("--last", "last_n", type=click.IntRange(min=1), help="Use the last N runs of the same scenario on --branch as repeated baselines.")
@compare_options
@click.option("--junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Write the Markdown summary here ($GITHUB_STEP_SUMMARY is appended to when set).")
@click.option("--json", "as_json", is_flag=True)
@store_options
def gate_cmd(run, baseline_spec, branch, last_n, delta, metric_delta, alpha, warmup, seed, junit, markdown,
             as_json, store_url_opt) -> None:
    """Fail CI when RUN (default: latest) regressed against its baseline or failed a threshold.

    \b
    Exit codes: 0 pass (warnings for INCONCLUSIVE comparisons are printed),
    3 a threshold failed, 4 a metric REGRESSED, 1 run error, 2 usage error.
    """

    def go() -> None:
        from surge.analysis.compare import compare
        from surge.analysis.gate import decide
        from surge.cli.store_cmds import open_store
        from surge.report.junit import gate_junit
        from surge.report.markdown import gate_markdown
        from surge.results.select import Side, load_side

        config = _config(delta, metric_delta, alpha, warmup, seed)
        check_writable(markdown, "--markdown")
        check_writable(junit, "--junit")
        store = open_store(store_url_opt)
        current = load_side(run, store)
        if len(current.run_ids) == 1 and not Path(run).is_dir():
            # A run made with --repeat is judged with its whole repeat group.
            group = store.get_run(current.run_ids[0]).tags.get("repeat_group")
            if group:
                current = load_side(f"group:{group}", store)
        base: Side | None = None
        if baseline_spec:
            base = load_side(baseline_spec, store)
        elif last_n:
            rec = store.get_run(current.run_ids[0]) if not Path(run).is_dir() else None
            prev = store.last_runs(branch=branch, scenario=rec.scenario if rec else current.scenario, n=last_n,
                                   before=current.run_ids[0])
            if prev:
                base = Side(f"last {len(prev)} on {branch}", [store.series(r.id) for r in prev], [r.id for r in prev])
        else:
            cur = store.get_run(current.run_ids[0]) if not Path(run).is_dir() else None
            rec = store.get_baseline(branch, scenario=cur.scenario if cur else None)
            if rec is not None and rec.id not in current.run_ids:
                base = load_side(rec.id, store)
        cmp = _with_mismatches(compare(*_pair(base, current, config.warmup_s), config), base, current) if base else None
        thresholds = _thresholds_of(current, store)
        gate = decide(cmp, thresholds)
        md = gate_markdown(gate, cmp, thresholds, run=current.label, baseline=base.label if base else None)
        if markdown:
            write_output(markdown, md, "--markdown")
        if os.environ.get("GITHUB_STEP_SUMMARY"):
            try:
                with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
                    f.write(md)
            except OSError as exc:  # the verdict still counts: say so and go on
                click.echo(f"warning: cannot append to $GITHUB_STEP_SUMMARY {os.environ['GITHUB_STEP_SUMMARY']}: "
                           f"{exc.strerror or exc}", err=True)
        if junit:
            write_output(junit, gate_junit(cmp, thresholds, run=current.label), "--junit")
        if as_json:
            from surge.cli.render_compare import comparison_json

            out: dict[str, Any] = {"status": gate.status, "failures": gate.failures, "warnings": gate.warnings,
                                   "baseline": base.label if base else None, "thresholds": thresholds,
                                   "comparison": comparison_json(cmp, base, current) if cmp else None}
            sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        else:
            from surge.cli.render_compare import render_comparison, render_thresholds

            console = _console()
            if cmp is not None:
                render_comparison(console, cmp, base.label, current.label)
            else:
                console.print(f"[yellow]no baseline[/] for branch {branch}: gating on thresholds only "
                              f"(set one with `surge baseline set RUN --branch {branch}`)")
            render_thresholds(console, thresholds)
            color = {"pass": "green", "warn": "yellow", "fail": "bold red"}[gate.status]
            console.print(f"[{color}]gate {gate.status}[/]")
            for f in gate.failures:
                console.print(f"  FAIL {f}", style="red", markup=False)
            for w in gate.warnings:
                console.print(f"  warn {w}", style="yellow", markup=False)
        if gate.regressed:
            sys.exit(exitcodes.REGRESSED)
        if gate.thresholds_failed:
            sys.exit(exitcodes.THRESHOLD_FAILED)

    guarded(go)


def _thresholds_of(side, store) -> list[dict[str, Any]]:
    """Threshold results of the run, from its run directory's summary.json (if still on disk)."""
    paths = []
    if side.path is not None:  # a run directory given by path (its name alone only resolved from its parent)
        paths.append(Path(side.path))
    try:
        rec = store.get_run(side.run_ids[-1])
        if rec.run_dir:
            paths.append(Path(rec.run_dir))
    except UsageError:
        pass
    from surge.results.rundir import read_json_object

    for p in paths:
        f = p / "summary.json"
        if f.is_file():
            found = read_json_object(f).get("thresholds")  # a damaged summary is an error, not "no thresholds"
            return found if isinstance(found, list) else []
    return []
