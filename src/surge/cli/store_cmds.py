"""`surge runs ...` and `surge baseline ...`: the run store from the command line."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.table import Table

from surge.api.errors import UsageError
from surge.cli.common import guarded, parse_tags, store_options


def open_store(url: str | None):
    from surge.results.store import Store, store_url

    return Store.open(store_url(url))


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"invalid --since {text!r}: use an ISO date such as 2026-11-01 or 2026-11-01T12:00") from None


@click.group("runs")
def runs_group() -> None:
    """List, show, tag, delete and import recorded runs."""


@runs_group.command("list")
@click.option("--scenario", help="Only runs of this scenario (path or name substring).")
@click.option("--branch", help="Only runs made on this git branch.")
@click.option("--tag", "tag", metavar="K=V", help="Only runs with this tag.")
@click.option("--since", help="Only runs started at or after this ISO date/time.")
@click.option("--limit", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@store_options
def runs_list(scenario, branch, tag, since, limit, as_json, store_url_opt) -> None:
    """Recorded runs, newest first."""

    def go() -> None:
        store = open_store(store_url_opt)
        t = tuple(next(iter(parse_tags((tag,)).items()))) if tag else None
        recs = store.list_runs(scenario=scenario, branch=branch, tag=t, since=_since(since), limit=limit)
        if as_json:
            from dataclasses import asdict

            sys.stdout.write(json.dumps([asdict(r) for r in recs], indent=2, default=str) + "\n")
            return
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("id", "started", "scenario", "branch", "status", "requests", "rps", "p95 ms", "tags"):
            table.add_column(col, overflow="fold", no_wrap=col not in ("scenario", "tags"),
                             justify="right" if col in ("requests", "rps", "p95 ms") else "left")
        for r in recs:
            table.add_row(r.id, str(r.started_at)[5:16], r.scenario or "-", r.branch or "-", r.status,
                          f"{r.requests:,}", f"{r.rps:,.1f}", f"{r.p95:.2f}" if r.p95 is not None else "-",
                          " ".join(f"{k}={v}" for k, v in sorted(r.tags.items())))
        console = Console()
        (console if console.is_terminal else Console(width=200)).print(table)
        if not recs:
            click.echo("no runs recorded yet: `surge run` records every run", err=True)

    guarded(go)


@runs_group.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True)
@store_options
def runs_show(run, as_json, store_url_opt) -> None:
    """One run's details (RUN: id, unique prefix or 'latest')."""

    def go() -> None:
        from dataclasses import asdict

        r = open_store(store_url_opt).get_run(run)
        if as_json:
            sys.stdout.write(json.dumps(asdict(r), indent=2, default=str) + "\n")
            return
        for k, v in asdict(r).items():
            click.echo(f"{k:>12}: {v}")

    guarded(go)


@runs_group.command("delete")
@click.argument("run")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@store_options
def runs_delete(run, yes, store_url_opt) -> None:
    """Delete a run from the store (its run directory stays on disk)."""

    def go() -> None:
        store = open_store(store_url_opt)
        r = store.get_run(run)
        if not yes and not click.confirm(f"delete run {r.id}?", err=True):
            return
        store.delete_run(r.id)
        click.echo(f"deleted {r.id}", err=True)

    guarded(go)


@runs_group.command("tag")
@click.argument("run")
@click.argument("tags", nargs=-1)
@click.option("--remove", multiple=True, metavar="KEY", help="Remove this tag, repeatable.")
@store_options
def runs_tag(run, tags, remove, store_url_opt) -> None:
    """Add (K=V ...) or remove (--remove K) tags of a run."""

    def go() -> None:
        store = open_store(store_url_opt)
        r = store.get_run(run)
        store.tag_run(r.id, parse_tags(tags), list(remove))
        click.echo(f"tagged {r.id}", err=True)

    guarded(go)


@runs_group.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@store_options
def runs_import(paths, store_url_opt) -> None:
    """Add existing run directories (or directories of them) to the store."""

    def go() -> None:
        store = open_store(store_url_opt)
        n = 0
        for p in paths:
            n += len(store.import_dir(p, on_skip=lambda d, why: click.echo(f"skipped {d}: {why}", err=True)))
        click.echo(f"imported {n} run(s)", err=True)

    guarded(go)


@click.group("baseline")
def baseline_group() -> None:
    """The baseline run per branch, used by `surge gate`."""


@baseline_group.command("set")
@click.argument("run")
@click.option("--branch", default="main", show_default=True)
@store_options
def baseline_set(run, branch, store_url_opt) -> None:
    """Make RUN the baseline of BRANCH."""

    def go() -> None:
        store = open_store(store_url_opt)
        r = store.get_run(run)
        store.set_baseline(r.id, branch)
        click.echo(f"baseline of {branch}: {r.id}", err=True)

    guarded(go)


@baseline_group.command("show")
@click.option("--branch", default="main", show_default=True)
@store_options
def baseline_show(branch, store_url_opt) -> None:
    """Print the baseline run id of BRANCH."""

    def go() -> None:
        r = open_store(store_url_opt).get_baseline(branch)
        if r is None:
            raise UsageError(f"no baseline for branch {branch!r}: set one with `surge baseline set RUN --branch {branch}`")
        click.echo(r.id)

    guarded(go)
