"""`surge explain RUN`: the findings of a run, recomputed from what it recorded."""

from __future__ import annotations

import json

import click
from rich.console import Console

from surge.cli.common import guarded, store_options
from surge.cli.render_findings import render_findings


@click.command("explain")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@store_options
def explain_cmd(run: str, as_json: bool, store_url_opt: str | None) -> None:
    """Explain what happened in RUN, in plain language, with the numbers behind it.

    RUN is a run directory, or a run id, unique id prefix or `latest` from the run store.
    The rules: saturation knee, when errors start and of which type, CPU-bound versus
    waiting (needs --monitor), slow endpoints versus heavy tails, latency drift and memory
    growth in soaks, the hot functions (needs --py-spy), and a generator-bound run.

    \b
    Examples:
      surge explain latest
      surge explain runs/20261123-101500-shop --json
    """

    def go() -> None:
        from pathlib import Path

        from surge.analysis.findings import diagnose_run
        from surge.results.rundata import load_run_data
        from surge.results.store import Store, store_url

        if Path(run).is_dir():
            data = load_run_data(run)
        else:
            with Store.open(store_url(store_url_opt)) as store:
                data = load_run_data(run, store)
        findings = [f.to_json() for f in diagnose_run(data)]
        if as_json:
            click.echo(json.dumps({"run_id": data.run_id, "findings": findings}, indent=2))
            return
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)  # piped: no 80-column wrapping, as the run summary
        if not findings:
            console.print(f"{data.run_id}: no findings: no saturation, errors, drift or hot spots were detected "
                          "(add --monitor and --py-spy to a run for the resource and profile rules)")
            return
        console.print(f"[bold]{data.run_id}[/]")
        render_findings(console, findings)

    guarded(go)
