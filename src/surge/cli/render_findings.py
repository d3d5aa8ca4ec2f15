"""Findings in the terminal: one line per finding, its evidence indented below."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def render_findings(console: Console, findings: list[dict[str, Any]], *, evidence: bool = True) -> None:
    """Print findings (their JSON form, as in summary.json) most severe first."""
    if not findings:
        return
    console.print("[bold]findings[/]")
    for f in findings:
        style = _STYLE.get(f.get("severity"), "")
        tr = f.get("t_range")
        when = f"  [dim]({tr[0]:.0f}-{tr[1]:.0f} s)[/]" if tr else ""
        console.print(f"  [{style}]{f['severity']:>8}[/] {escape(f['title'])}{when}")
        if evidence:
            console.print(f"           {escape(f['detail'])}", soft_wrap=False, overflow="fold")
            for e in f.get("evidence") or ():
                console.print(f"           [dim]- {escape(e)}[/]")
