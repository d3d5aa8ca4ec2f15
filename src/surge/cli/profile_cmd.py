"""`surge profile show RUN` and `surge profile diff A B`: py-spy profiles of the SUT."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from surge.analysis.profile import diff, sample_count, top_functions
from surge.api.errors import UsageError
from surge.cli.common import guarded, store_options
from surge.results.sut_files import PROFILE_FILE, read_profile

RECORD_HINT = "record one with `surge run SCENARIO --py-spy PID` (or --launch CMD --py-spy launched)"


def resolve_run_dir(ref: str, store_url_opt: str | None) -> Path:
    """A run directory from a path, or a run id / prefix / 'latest' of the store.

    The store keeps no profile files, only where the run directory was written;
    UsageError when that directory is gone or has no profile.
    """
    p = Path(ref)
    if not p.is_dir():
        from surge.results.store import Store, store_url

        store = Store.open(store_url(store_url_opt))
        try:
            rec = store.get_run(ref)
        finally:
            store.close()
        if not rec.run_dir:
            raise UsageError(f"run {rec.id} has no run directory on record: profiles are kept only in run "
                             "directories; give the directory's path")
        p = Path(rec.run_dir)
        if not p.is_dir():
            raise UsageError(f"run {rec.id} was written to {p}, which no longer exists: profiles are kept only in "
                             "run directories, not in the store")
    if not (p / PROFILE_FILE).is_file():
        raise UsageError(f"{p} has no {PROFILE_FILE}: the run was not profiled; {RECORD_HINT}")
    return p


def _load(ref: str, store_url_opt: str | None) -> tuple[Path, dict[str, int]]:
    p = resolve_run_dir(ref, store_url_opt)
    stacks = read_profile(p) or {}
    if not sample_count(stacks):
        raise UsageError(f"{p / PROFILE_FILE} holds no samples; {RECORD_HINT}")
    return p, stacks


def _console() -> Console:
    c = Console()
    return c if c.is_terminal else Console(width=160)


def _pp(x: float) -> str:
    return f"{x:+.1f}"


@click.group("profile")
def profile_group() -> None:
    """Python profiles of the system under test, recorded with `surge run --py-spy`.

    \b
    Examples:
      surge profile show latest                     # hottest functions of the last run
      surge profile show runs/20250101-120000-shop --top 30 --by total
      surge profile diff BASELINE_RUN NEW_RUN       # what got hotter
    """


@profile_group.command("show")
@click.argument("run")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Functions to list.")
@click.option("--by", type=click.Choice(["self", "total"]), default="self", show_default=True,
              help="Rank by self time (the function itself running) or total time (with what it called).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@store_options
def show_cmd(run: str, top: int, by: str, as_json: bool, store_url_opt: str | None) -> None:
    """The hottest functions of RUN's profile (a run directory, or a run id / prefix / 'latest').

    \b
    self %:  share of samples in which the function was running (the leaf)
    total %: share of samples in which it was on the stack (it, or what it called)

    \b
    Examples:
      surge profile show latest
      surge profile show runs/20250101-120000-shop --top 10 --json
    """

    def go() -> None:
        path, stacks = _load(run, store_url_opt)
        rows = top_functions(stacks, top, by=by)
        if as_json:
            doc: dict[str, Any] = {"run_dir": str(path), "samples": sample_count(stacks), "by": by,
                                   "functions": [{"function": r.function, "self_pct": round(r.self_pct, 2),
                                                  "total_pct": round(r.total_pct, 2), "self_samples": r.self_samples,
                                                  "total_samples": r.total_samples} for r in rows]}
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return
        t = Table(title=f"{path.name}: {sample_count(stacks)} samples, top {len(rows)} by {by} time",
                  title_justify="left")
        t.add_column("self %", justify="right")
        t.add_column("total %", justify="right")
        t.add_column("function")
        for r in rows:
            t.add_row(f"{r.self_pct:.1f}", f"{r.total_pct:.1f}", r.function)
        _console().print(t)

    guarded(go)


@profile_group.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Functions to list on each side (hotter, cooler).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@store_options
def diff_cmd(a: str, b: str, top: int, as_json: bool, store_url_opt: str | None) -> None:
    """What got hotter from profile A to profile B (run directories or run ids).

    Shares are percent of each profile's own samples, so runs of different
    lengths compare; changes are in percentage points (pp), B minus A, ranked
    by the change of total time, then of self time.

    \b
    Examples:
      surge profile diff runs/before runs/after
      surge profile diff 20250101-1200 latest --top 10 --json
    """

    def go() -> None:
        pa, sa = _load(a, store_url_opt)
        pb, sb = _load(b, store_url_opt)
        rows = diff(sa, sb)
        hotter = [r for r in rows if r.total_pp > 0 or (r.total_pp == 0 and r.self_pp > 0)][:top]
        cooler = [r for r in reversed(rows) if r.total_pp < 0 or (r.total_pp == 0 and r.self_pp < 0)][:top]
        if as_json:
            def js(r: Any) -> dict[str, Any]:
                return {"function": r.function, "total_a": round(r.total_a, 2), "total_b": round(r.total_b, 2),
                        "total_pp": round(r.total_pp, 2), "self_a": round(r.self_a, 2),
                        "self_b": round(r.self_b, 2), "self_pp": round(r.self_pp, 2)}

            doc = {"a": str(pa), "b": str(pb), "samples_a": sample_count(sa), "samples_b": sample_count(sb),
                   "hotter": [js(r) for r in hotter], "cooler": [js(r) for r in cooler]}
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return
        console = _console()
        console.print(f"A: {pa} ({sample_count(sa)} samples)\nB: {pb} ({sample_count(sb)} samples)",
                      highlight=False, markup=False)
        for title, part in (("hotter in B", hotter), ("cooler in B", cooler)):
            t = Table(title=title, title_justify="left")
            for col in ("total A %", "total B %", "Δ total pp", "Δ self pp"):
                t.add_column(col, justify="right")
            t.add_column("function")
            for r in part:
                t.add_row(f"{r.total_a:.1f}", f"{r.total_b:.1f}", _pp(r.total_pp), _pp(r.self_pp), r.function)
            if part:
                console.print(t)
            else:
                console.print(f"{title}: nothing", highlight=False)

    guarded(go)
