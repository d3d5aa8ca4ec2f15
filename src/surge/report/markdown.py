"""Markdown for comparisons and gate results: fit for a CI job summary or a PR comment."""

from __future__ import annotations

from typing import Any

from surge.analysis.compare import pct_change

_ICON = {"REGRESSED": "🔴", "IMPROVED": "🟢", "SAME": "⚪", "INCONCLUSIVE": "🟡"}


def _esc(text: str) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """Inline code in a table cell: entities are not decoded inside backticks, so only the
    table's pipe is escaped (a threshold like p95<25ms must not read p95&lt;25ms)."""
    t = str(text).replace("|", "\\|")
    fence = "``" if "`" in t else "`"
    return f"{fence} {t} {fence}" if fence == "``" else f"`{t}`"


def format_metric(v: float | None, metric: str, *, missing: str = "–", ms: str = " ms") -> str:
    """A compared value in its unit: error rate as %, throughput as /s, latency in ms."""
    if v is None:
        return missing
    if metric == "error_rate":
        return f"{v * 100:.2f}%"
    if metric == "throughput":
        return f"{v:,.1f}/s"
    return f"{v:,.2f}{ms}"


def _no_errors(row: Any) -> bool:
    return row.metric == "error_rate" and row.a == 0 and row.b == 0


def format_change(row: Any, *, missing: str = "–") -> str:
    """B relative to A as a signed percentage (ratio 1.129 -> +12.9%); ``missing`` when there
    is no ratio (A was 0) or nothing to compare (no errors on either side)."""
    if row.ratio is None or _no_errors(row):
        return missing
    return pct_change(row.ratio)


def format_ci(row: Any, *, missing: str = "–", sep: str = "..") -> str:
    """The confidence interval of the change, in % (e.g. +12.4%..+13.3%)."""
    if row.ci_low is None or row.ci_high is None or _no_errors(row):
        return missing
    return f"{pct_change(row.ci_low)}{sep}{pct_change(row.ci_high)}"


def _num(v: float | None, metric: str) -> str:
    return format_metric(v, metric)


def comparison_markdown(cmp: Any, *, title: str = "surge compare", a_label: str = "A", b_label: str = "B") -> str:
    """A table of every (name, metric) with values, ratio, CI and verdict."""
    lines = [f"### {title}", "", f"{_esc(a_label)} → {_esc(b_label)}", ""]
    lines += ["| request | metric | A | B | change | 95% CI | adj. p | verdict |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in cmp.rows:
        p = f"{r.p_adjusted:.3g}" if r.p_adjusted is not None else "–"
        lines.append(
            f"| {_esc(r.name)} | {r.metric} | {_num(r.a, r.metric)} | {_num(r.b, r.metric)} | {format_change(r)} | "
            f"{format_ci(r)} | {p} | {_ICON.get(r.verdict, '')} {r.verdict} |"
        )
    if cmp.only_in_a or cmp.only_in_b:
        lines.append("")
        if cmp.only_in_a:
            lines.append(f"Only in A: {', '.join(_esc(n) for n in cmp.only_in_a)}")
        if cmp.only_in_b:
            lines.append(f"Only in B: {', '.join(_esc(n) for n in cmp.only_in_b)}")
    for w in getattr(cmp, "warnings", []):
        lines.append(f"- ⚠️ {_esc(w)}")
    lines += ["", f"<sub>{_esc(cmp.method)}</sub>", ""]
    return "\n".join(lines)


def gate_markdown(gate: Any, cmp: Any | None, thresholds: list[dict[str, Any]], *, run: str, baseline: str | None) -> str:
    head = {"pass": "✅ surge gate passed", "warn": "⚠️ surge gate passed with warnings",
            "fail": "❌ surge gate failed"}[gate.status]
    lines = [f"## {head}", "", f"run `{_esc(run)}`" + (f" vs baseline `{_esc(baseline)}`" if baseline else " (no baseline)"), ""]
    for f in gate.failures:
        lines.append(f"- ❌ {_esc(f)}")
    for w in gate.warnings:
        lines.append(f"- ⚠️ {_esc(w)}")
    lines += ["", "### thresholds of the run", ""]
    if thresholds:
        lines += ["| threshold | observed | result |", "|---|---|---|"]
        for t in thresholds:
            lines.append(f"| {_code(t.get('threshold', ''))} | {_esc(t.get('observed_text', t.get('observed', '')))} | "
                         f"{'✅ pass' if t.get('passed') else '❌ fail'} |")
    else:
        lines.append("The run defined no thresholds.")
    if cmp is not None:
        lines += ["", comparison_markdown(cmp, title="comparison with the baseline", a_label=baseline or "baseline",
                                          b_label=run)]
    return "\n".join(lines) + "\n"
