"""Final terminal output, rendered from the summary dict only."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

_COLS = ("p50", "p90", "p95", "p99", "p99.9", "max")


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 1000 else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%" if x else "0%"


def render_summary(console: Console, s: dict[str, Any]) -> None:
    """Print the per-name table, checks, errors, iterations, thresholds and warnings."""
    status = s["status"]
    color = {"completed": "green", "interrupted": "yellow", "aborted": "red"}.get(status, "red")
    console.print(
        f"[bold {color}]{status}[/] in {s['duration_s']:.1f}s  model={s.get('model')}  "
        f"requests={s['requests']:,}  rps={s['rps']:,.1f}  errors={s['errors']:,} ({_pct(s['error_rate'])})"
    )
    if s["generator"]["bound"]:
        console.print(f"[bold red]{s['generator']['explanation']}[/]")
    t = Table(title="latency (ms, from intended start) per request name", title_justify="left")
    for col in ("scenario", "name", "method", "count", "req/s", "err %", *_COLS, "svc p99"):
        t.add_column(col, justify="left" if col in ("scenario", "name", "method") else "right")
    for n in s["names"]:
        t.add_row(n["scenario"], n["name"], n["method"], f"{n['requests']:,}", f"{n['rps']:,.1f}",
                  _pct(n["error_rate"]), *[_ms(n[c]) for c in _COLS], _ms(n["service"]["p99"]))
    if len(s["names"]) != 1:
        t.add_row("[bold]all[/]", "", "", f"{s['requests']:,}", f"{s['rps']:,.1f}", _pct(s["error_rate"]),
                  *[_ms(s[c]) for c in _COLS], _ms(s["service"]["p99"]))
    console.print(t)
    if s["service"]["p99"] is not None and s.get("open_model"):
        console.print(
            f"service time (from send): p50 {_ms(s['service']['p50'])} ms, p99 {_ms(s['service']['p99'])} ms"
            f"  |  TTFB p50 {_ms(s['ttfb']['p50'])} ms"
        )
    if s["errors_by_type"]:
        console.print("errors: " + ", ".join(f"{k} {v:,}" for k, v in s["errors_by_type"].items()))
    if s["checks"]:
        ct = Table(title="checks", title_justify="left")
        for col in ("check", "passed", "failed", "rate"):
            ct.add_column(col, justify="left" if col == "check" else "right")
        for c in s["checks"]:
            rate = f"{c['rate'] * 100:.2f}%" if c["rate"] is not None else "-"
            style = "" if not c["fails"] else "red"
            ct.add_row(c["name"], f"{c['passes']:,}", f"[{style}]{c['fails']:,}[/]" if style else "0", rate)
        console.print(ct)
    it = s["iterations"]
    line = f"iterations: {it['completed']:,} completed"
    if it["dropped"]:
        line += f", [yellow]{it['dropped']:,} dropped[/] (no free VU: raise --max-vus or the server is too slow)"
    if it["interrupted"]:
        line += f", {it['interrupted']:,} interrupted at stop"
    if it["errors"]:
        line += ", [red]errors: " + ", ".join(f"{k} {v:,}" for k, v in it["errors"].items()) + "[/]"
    console.print(line)
    for etype, tb in it.get("first_tracebacks", {}).items():
        last = [ln for ln in tb.splitlines() if ln.strip()][-3:]
        console.print(f"  first {etype}: " + " | ".join(x.strip() for x in last), style="dim", markup=False)
    if s["thresholds"]:
        tt = Table(title="thresholds", title_justify="left")
        for col in ("threshold", "observed", "result"):
            tt.add_column(col)
        for r in s["thresholds"]:
            tt.add_row(r["threshold"], r["observed_text"], "[green]PASS[/]" if r["passed"] else "[bold red]FAIL[/]")
        console.print(tt)
    for w in s["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if s.get("run_dir"):
        console.print(f"results: {s['run_dir']}", style="dim")
