"""Markdown for comparisons and gate results: fit for a CI job summary or a PR comment."""

from __future__ import annotations

from typing import Any

_ICON = {"REGRESSED": "🔴", "IMPROVED": "🟢", "SAME": "⚪", "INCONCLUSIVE": "🟡"}


def _esc(text: str) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def format_metric(v: float | None, metric: str, *, missing: str = "–", ms: str = " ms") -> str:
    """A compared value in its unit: error rate as %, throughput as /s, latency in ms."""
    if v is None:
        return missing
    if metric == "error_rate":
        return f"{v * 100:.2f}%"
    if metric == "throughput":
        return f"{v:,.1f}/s"
    return f"{v:,.2f}{ms}"


def _num(v: float | None, metric: str) -> str:
    return format_metric(v, metric)


def comparison_markdown(cmp: Any, *, title: str = "surge compare", a_label: str = "A", b_label: str = "B") -> str:
    """A table of every (name, metric) with values, ratio, CI and verdict."""
    lines = [f"### {title}", "", f"{_esc(a_label)} → {_esc(b_label)}", ""]
    lines += ["| request | metric | A | B | ratio | CI | verdict |", "|---|---|---:|---:|---:|---|---|"]
    for r in cmp.rows:
        ratio = f"×{r.ratio:.3f}" if r.ratio is not None else "–"
        ci = f"{r.ci_low:.3f}–{r.ci_high:.3f}" if r.ci_low is not None and r.ci_high is not None else "–"
        lines.append(
            f"| {_esc(r.name)} | {r.metric} | {_num(r.a, r.metric)} | {_num(r.b, r.metric)} | {ratio} | {ci} | "
            f"{_ICON.get(r.verdict, '')} {r.verdict} |"
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
    if thresholds:
        lines += ["", "| threshold | observed | result |", "|---|---|---|"]
        for t in thresholds:
            lines.append(f"| `{_esc(t['threshold'])}` | {_esc(t.get('observed_text', ''))} | "
                         f"{'✅ pass' if t.get('passed') else '❌ fail'} |")
    if cmp is not None:
        lines += ["", comparison_markdown(cmp, title="comparison with the baseline", a_label=baseline or "baseline",
                                          b_label=run)]
    return "\n".join(lines) + "\n"
