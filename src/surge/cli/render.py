"""Final terminal output, rendered from the summary dict only."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from surge.analysis.generator import steal_noted

_COLS = ("p50", "p90", "p95", "p99", "p99.9", "max")


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 1000 else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _cell(row: dict[str, Any], col: str) -> str:
    return _ms(row["service"]["p99"]) if col == "svc p99" else _ms(row[col])


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
    elif steal_noted(s["generator"]):
        console.print(f"[yellow]{s['generator']['explanation']}[/]")  # steal: a VM, not surge
    # One scenario: its name would repeat on every row, so the column is left out.
    narrow = console.width < 130
    many = len({n["scenario"] for n in s["names"]}) > 1 and not narrow
    # A narrow terminal gets the essential columns; --json and the run directory have all.
    cols = ("p50", "p95", "p99") if narrow else (*_COLS, "svc p99")
    lead = ("scenario", "name", "method") if many else ("name", "method")
    t = Table(title="latency (ms, from intended start) per request name", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    for col in (*lead, "count", "req/s", "err %", *cols):
        if col in lead:
            longest_sc = max((len(n["scenario"]) for n in s["names"]), default=8)
            t.add_column(col, overflow="fold",
                         min_width={"name": 16, "method": 6, "scenario": min(18, longest_sc)}.get(col, 8),
                         max_width=40 if col == "name" else 18 if col == "scenario" else 14)
        else:
            t.add_column(col, justify="right", no_wrap=True, min_width=max(len(col), 5))
    for n in s["names"]:
        first = (n["scenario"], n["name"], n["method"]) if many else (n["name"], n["method"])
        t.add_row(*first, f"{n['requests']:,}", f"{n['rps']:,.1f}",
                  _pct(n["error_rate"]), *[_cell(n, c) for c in cols])
    if len(s["names"]) != 1:
        t.add_row("[bold]all[/]", *[""] * (len(lead) - 1), f"{s['requests']:,}", f"{s['rps']:,.1f}",
                  _pct(s["error_rate"]), *[_cell(s, c) for c in cols])
    console.print(t)
    if s["service"]["p99"] is not None and s.get("open_model"):
        console.print(
            f"service time (from send): p50 {_ms(s['service']['p50'])} ms, p99 {_ms(s['service']['p99'])} ms"
            f"  |  TTFB p50 {_ms(s['ttfb']['p50'])} ms"
        )
    if s["errors_by_type"]:
        console.print("errors: " + ", ".join(f"{k} {v:,}" for k, v in s["errors_by_type"].items()))
    if s["checks"]:
        ct = Table(title="checks", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
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
        model = s.get("model")
        fix = ("no free connection: raise -c" if model == "hit"
               else "too many in flight: raise --max-inflight" if model == "replay"
               else "no free VU: raise --max-vus")
        line += f", [yellow]{it['dropped']:,} dropped[/] ({fix}, or the server is too slow)"
    if it["interrupted"]:
        line += f", {it['interrupted']:,} interrupted at stop"
    if it["errors"]:
        line += ", [red]errors: " + ", ".join(f"{k} {v:,}" for k, v in it["errors"].items()) + "[/]"
    console.print(line)
    for etype, tb in it.get("first_tracebacks", {}).items():
        last = [ln for ln in tb.splitlines() if ln.strip()][-3:]
        console.print(f"  first {etype}: " + " | ".join(x.strip() for x in last), style="dim", markup=False)
    if s["thresholds"]:
        tt = Table(title="thresholds", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("threshold", "observed", "result"):
            tt.add_column(col)
        for r in s["thresholds"]:
            tt.add_row(r["threshold"], r["observed_text"], "[green]PASS[/]" if r["passed"] else "[bold red]FAIL[/]")
        console.print(tt)
    for label, p in ((s.get("sut") or {}).get("procs") or {}).items():  # --monitor / --launch
        console.print(f"SUT {label}: CPU mean {p['cpu_pct_mean']:.0f}% max {p['cpu_pct_max']:.0f}% (100% = one core), "
                      f"RSS max {p['rss_mb_max']:.0f} MB", highlight=False, markup=False)
    if s.get("findings"):
        from surge.cli.render_findings import render_findings

        render_findings(console, s["findings"], evidence=False)
        if s.get("run_dir"):
            console.print(f"  [dim]the evidence: surge explain {s['run_dir']}[/]", highlight=False)
    for w in s["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if s.get("run_dir"):
        stored = f"  (in the run store as {s['stored_as']})" if s.get("stored_as") else ""
        console.print(f"results: {s['run_dir']}{stored}", style="dim")
