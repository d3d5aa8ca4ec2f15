"""Terminal rendering of comparisons and histories (from analysis dataclasses only)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from surge.report.markdown import format_metric

_STYLE = {"REGRESSED": "bold red", "IMPROVED": "green", "SAME": "dim", "INCONCLUSIVE": "yellow"}


def _num(v: float | None, metric: str) -> str:
    return format_metric(v, metric, missing="-", ms="")  # the table's title says ms


def render_comparison(console: Console, cmp: Any, a_label: str, b_label: str) -> None:
    t = Table(title=f"{a_label} -> {b_label}  (latency ms from intended start; ratio B/A)", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("request", "metric", "A", "B", "ratio", "CI", "p adj", "verdict"):
        t.add_column(col, justify="left" if col in ("request", "metric", "verdict") else "right",
                     overflow="fold")
    for r in cmp.rows:
        ratio = f"{r.ratio:.3f}" if r.ratio is not None else "-"
        ci = f"{r.ci_low:.3f}-{r.ci_high:.3f}" if r.ci_low is not None and r.ci_high is not None else "-"
        p = f"{r.p_adjusted:.3g}" if r.p_adjusted is not None else "-"
        t.add_row(r.name, r.metric, _num(r.a, r.metric), _num(r.b, r.metric), ratio, ci, p,
                  f"[{_STYLE.get(r.verdict, '')}]{r.verdict}[/]")
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
