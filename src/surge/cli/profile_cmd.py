"""`surge profile show RUN` and `surge profile diff A B`: py-spy profiles of the SUT."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from surge.analysis.profile import (
    diff,
    hotter_cooler,
    native_note,
    outside_app_share,
    sample_count,
    top_functions,
)
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


APP_HEADER = "application code (--all for every frame); self = in the function or in library code it called"
ALL_HEADER = "every frame (--all); self = in the function itself"


def _all_option(f: Any) -> Any:
    return click.option("--all", "show_all", is_flag=True,
                        help="Every frame, the server's, the framework's and the standard library's too "
                             "(default: application code only).")(f)


def _outside(stacks: dict[str, int]) -> str:
    return (f"{outside_app_share(stacks):.1f} % of samples ran outside application functions "
            "(server, framework, event loop; --all lists their frames)")


@click.group("profile")
def profile_group() -> None:
    """Python profiles of the system under test, recorded with `surge run --py-spy`.

    Application code by default; --all for every frame.

    \b
    Examples:
      surge profile show latest                     # hottest application functions of the last run
      surge profile show runs/20250101-120000-shop --top 30 --by total
      surge profile show latest --all               # with the server's and the framework's frames
      surge profile diff BASELINE_RUN NEW_RUN       # what got hotter
    """


@profile_group.command("show")
@click.argument("run")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Functions to list.")
@click.option("--by", type=click.Choice(["self", "total"]), default="self", show_default=True,
              help="Rank by self time (in the function or library code it called; with --all the function "
                   "itself) or total time (with everything it called).")
@_all_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@store_options
def show_cmd(run: str, top: int, by: str, show_all: bool, as_json: bool, store_url_opt: str | None) -> None:
    """The hottest functions of RUN's profile (a run directory, or a run id / prefix / 'latest').

    Application code only by default: frames of the standard library, the
    server and the framework are not listed, nor launchers (main, the CLI
    command, the function that starts the server).

    \b
    self %:  share of samples in which the function was the innermost
             application frame: it was running, or library code it called was
             (with --all: it was the leaf)
    total %: share of samples in which it was on the stack (it, or what it called)

    \b
    Examples:
      surge profile show latest
      surge profile show latest --all
      surge profile show runs/20250101-120000-shop --top 10 --json
    """

    def go() -> None:
        path, stacks = _load(run, store_url_opt)
        view = "all" if show_all else "app"
        rows = top_functions(stacks, top, by=by, view=view)
        note = native_note(stacks) if show_all else None
        if as_json:
            doc: dict[str, Any] = {"run_dir": str(path), "samples": sample_count(stacks), "view": view, "by": by,
                                   "functions": [{"function": r.function, "self_pct": round(r.self_pct, 2),
                                                  "total_pct": round(r.total_pct, 2), "self_samples": r.self_samples,
                                                  "total_samples": r.total_samples} for r in rows]}
            if view == "app":
                doc["outside_app_pct"] = round(outside_app_share(stacks), 2)
            else:
                doc["note"] = note
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return
        console = _console()
        console.print(f"{path.name}: {sample_count(stacks)} samples; {APP_HEADER if view == 'app' else ALL_HEADER}",
                      highlight=False, markup=False)
        t = Table(title=f"top {len(rows)} by {by} time", title_justify="left")
        t.add_column("self %", justify="right")
        t.add_column("total %", justify="right")
        t.add_column("function")
        for r in rows:
            t.add_row(f"{r.self_pct:.1f}", f"{r.total_pct:.1f}", r.function)
        if rows:
            console.print(t)
        else:
            console.print("no application frames in this profile; --all lists every frame", highlight=False)
        if view == "app":
            console.print(_outside(stacks), highlight=False, markup=False)
        elif note:
            console.print(f"note: {note}", highlight=False, markup=False)

    guarded(go)


@profile_group.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Functions to list on each side (hotter, cooler).")
@click.option("--by", type=click.Choice(["self", "total"]), default="self", show_default=True,
              help="Rank by the change of self share or of total share.")
@_all_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@store_options
def diff_cmd(a: str, b: str, top: int, by: str, show_all: bool, as_json: bool, store_url_opt: str | None) -> None:
    """What got hotter from profile A to profile B (run directories or run ids).

    Shares are percent of each profile's own samples, so runs of different
    lengths compare; changes are in percentage points (pp), B minus A, ranked
    by the change of self share, then of total share (--by total: the other
    way round). Application code only by default, where self is the time in
    the function or in library code it called; --all for every frame.

    \b
    Examples:
      surge profile diff runs/before runs/after
      surge profile diff 20250101-1200 latest --top 10 --json
    """

    def go() -> None:
        pa, sa = _load(a, store_url_opt)
        pb, sb = _load(b, store_url_opt)
        view = "all" if show_all else "app"
        hotter, cooler = hotter_cooler(diff(sa, sb, view=view, by=by), by=by, n=top)
        note = (native_note(sa) or native_note(sb)) if show_all else None
        if as_json:
            def js(r: Any) -> dict[str, Any]:
                return {"function": r.function, "total_a": round(r.total_a, 2), "total_b": round(r.total_b, 2),
                        "total_pp": round(r.total_pp, 2), "self_a": round(r.self_a, 2),
                        "self_b": round(r.self_b, 2), "self_pp": round(r.self_pp, 2)}

            doc: dict[str, Any] = {"a": str(pa), "b": str(pb), "samples_a": sample_count(sa),
                                   "samples_b": sample_count(sb), "view": view, "by": by,
                                   "hotter": [js(r) for r in hotter], "cooler": [js(r) for r in cooler]}
            if view == "app":
                doc["outside_app_pct_a"] = round(outside_app_share(sa), 2)
                doc["outside_app_pct_b"] = round(outside_app_share(sb), 2)
            else:
                doc["note"] = note
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return
        console = _console()
        console.print(f"A: {pa} ({sample_count(sa)} samples)\nB: {pb} ({sample_count(sb)} samples)\n"
                      f"{APP_HEADER if view == 'app' else ALL_HEADER}; ranked by the change of {by} share",
                      highlight=False, markup=False)
        other = "total" if by == "self" else "self"
        for title, part in (("hotter in B", hotter), ("cooler in B", cooler)):
            t = Table(title=title, title_justify="left")
            for col in (f"{by} A %", f"{by} B %", f"Δ {by} pp", f"Δ {other} pp"):
                t.add_column(col, justify="right")
            t.add_column("function")
            for r in part:
                main = (r.self_a, r.self_b, r.self_pp, r.total_pp) if by == "self" else \
                    (r.total_a, r.total_b, r.total_pp, r.self_pp)
                t.add_row(f"{main[0]:.1f}", f"{main[1]:.1f}", _pp(main[2]), _pp(main[3]), r.function)
            if part:
                console.print(t)
            else:
                console.print(f"{title}: nothing", highlight=False)
        if view == "app":
            console.print(f"outside application functions: {outside_app_share(sa):.1f} % of A's samples, "
                          f"{outside_app_share(sb):.1f} % of B's (--all lists their frames)",
                          highlight=False, markup=False)
        elif note:
            console.print(f"note: {note}", highlight=False, markup=False)

    guarded(go)
