"""`surge report RUN`: one self-contained HTML file of a run (and its comparison with a baseline)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from surge.api.errors import UsageError
from surge.cli.common import guarded, store_options


def _open_store(spec: str, url: str | None):
    """The run store when ``spec`` is not a run directory (a directory needs none)."""
    if Path(spec).is_dir():
        return None
    from surge.cli.store_cmds import open_store

    return open_store(url)


def _write(text: str, out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the report to {out}: {exc.strerror}; choose another path with -o") from None
    return out


def write_run_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the report of the run in ``run_dir`` to ``out`` (default: run_dir/report.html)."""
    from surge.report.views import report_html
    from surge.results.rundata import read_run_dir

    return _write(report_html(read_run_dir(run_dir)), out or run_dir / "report.html")


@click.command("report")
@click.argument("run", default="latest")
@click.option("--baseline", "baseline_spec", metavar="RUN",
              help="Compare with this run (id, prefix, 'latest' or run directory): verdicts, CIs and overlays.")
@click.option("--output", "-o", default="report.html", show_default=True, metavar="FILE",
              help="Where to write the HTML ('-' for stdout).")
@click.option("--delta", default="5%", show_default=True,
              help="Practical threshold of the comparison: smaller changes are SAME.")
@click.option("--metric-delta", multiple=True, metavar="METRIC=PCT",
              help="Per-metric threshold as in `surge gate`, e.g. p50=15%. Repeatable.")
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seconds at the start of each run left out of the comparison, as in `surge gate`.")
@store_options
def report_cmd(run: str, baseline_spec: str | None, output: str, delta: str, metric_delta: tuple[str, ...],
               warmup: int, store_url_opt: str | None) -> None:
    """Write one self-contained HTML report of RUN (default: latest): verdict, key numbers,
    time series, latency distribution and percentile spectrum, per-request table, checks,
    comparison with --baseline, metadata. Works offline; open it in any current browser.

    \b
    RUN is a run id, a unique id prefix, 'latest', or a run directory.
      surge report latest -o report.html
      surge report runs/20261123-101500-shop --baseline 20261122-0930 -o cmp.html
      surge report latest --baseline main-run --metric-delta p50=15% -o cmp.html   # as the gate judged it
    """

    def go() -> None:
        from surge.cli.compare_cmd import _config
        from surge.report.views import compare_runs, report_html
        from surge.results.rundata import load_run_data

        store = _open_store(run, store_url_opt)
        if baseline_spec and store is None:
            store = _open_store(baseline_spec, store_url_opt)
        data = load_run_data(run, store)
        base = load_run_data(baseline_spec, store) if baseline_spec else None
        comparison = compare_runs(base, data, _config(delta, metric_delta, 0.05, warmup, 0)) if base is not None else None
        text = report_html(data, base, comparison=comparison)
        if output == "-":
            sys.stdout.write(text)
            return
        path = _write(text, Path(output))
        click.echo(f"report: {path} ({len(text.encode()) / 1e6:.1f} MB)")

    guarded(go)
