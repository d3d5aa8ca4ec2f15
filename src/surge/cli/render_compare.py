"""Terminal rendering of comparisons and histories (from analysis dataclasses only)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from surge.report.markdown import format_change, format_ci, format_metric

_STYLE = {"REGRESSED": "bold red", "IMPROVED": "green", "SAME": "dim", "INCONCLUSIVE": "yellow"}


def _num(v: float | None, metric: str) -> str:
    return format_metric(v, metric, missing="-")


def render_comparison(console: Console, cmp: Any, a_label: str, b_label: str) -> None:
    t = Table(title=f"{a_label} -> {b_label}  (change = B/A - 1, 95% CI)",
              title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("request", "metric", "A", "B", "change", "95% CI", "adj. p", "verdict"):
        t.add_column(col, justify="left" if col in ("request", "metric", "verdict") else "right",
                     overflow="fold")
    for r in cmp.rows:
        p = f"{r.p_adjusted:.3g}" if r.p_adjusted is not None else "-"
        t.add_row(escape(r.name), r.metric, _num(r.a, r.metric), _num(r.b, r.metric), format_change(r, missing="-"),
                  format_ci(r, missing="-"), p, f"[{_STYLE.get(r.verdict, '')}]{r.verdict}[/]")
    console.print(t)
    for r in cmp.rows:
        if r.verdict in ("REGRESSED", "INCONCLUSIVE") and r.reason:
            console.print(f"  {r.name} {r.metric}: {r.reason}", style=_STYLE[r.verdict], highlight=False,
                          markup=False)
    if cmp.only_in_a:
        console.print(f"only in A (not compared): {', '.join(cmp.only_in_a)}", style="yellow", markup=False)
    if cmp.only_in_b:
        console.print(f"only in B (not compared): {', '.join(cmp.only_in_b)}", style="yellow", markup=False)
    for w in getattr(cmp, "warnings", []):
        console.print(f"warning: {w}", style="yellow", markup=False)
    console.print(cmp.method, style="dim", markup=False)


def render_thresholds(console: Console, thresholds: list[dict[str, Any]]) -> None:
    """The run's thresholds, passed and failed, as a table (or one line when there are none)."""
    if not thresholds:
        console.print("thresholds: the run defined none", style="dim", markup=False)
        return
    t = Table(title="thresholds of the run", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("threshold", "observed", "result"):
        t.add_column(col, overflow="fold")
    for th in thresholds:
        ok = bool(th.get("passed"))
        t.add_row(escape(str(th.get("threshold", ""))), escape(str(th.get("observed_text", th.get("observed", "")))),
                  "[green]pass[/]" if ok else "[bold red]FAIL[/]")
    console.print(t)


def comparison_json(cmp: Any, a: Any, b: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "a": {"label": a.label, "runs": a.run_ids},
        "b": {"label": b.label, "runs": b.run_ids},
        "method": cmp.method,
        "rows": [asdict(r) for r in cmp.rows],
        "only_in_a": cmp.only_in_a,
        "only_in_b": cmp.only_in_b,
        "warnings": list(getattr(cmp, "warnings", [])),
    }
