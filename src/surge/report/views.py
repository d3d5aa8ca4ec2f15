"""The run page: HTML sections of one run (and its comparison with a baseline).

Shared by the self-contained report (``surge report``) and the dashboard:

- :func:`render_run_body` gives an HTML fragment whose sections have stable ids
  (``verdict``, ``key-numbers``, ``timeseries``, ``distribution``, ``requests``,
  ``checks``, ``comparison``, ``metadata``; optionally ``findings``, ``sut``,
  ``profile``); every chart is a ``<div class="surge-chart" data-figure="...">``.
- :func:`page` wraps a fragment in a complete document (see :mod:`surge.report.html`).

Every piece of text that comes from a run (request names, URLs, error labels,
tags, scenario paths, metadata, threshold expressions, tracebacks) goes through
``html.escape``; figure JSON is attribute-escaped (:func:`surge.report.figures.figure_attr`).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections import Counter
from collections.abc import Callable, Iterable
from html import escape
from types import SimpleNamespace
from typing import Any

from surge.analysis.generator import steal_noted
from surge.analysis.summary import stats_summary
from surge.metrics.stats import RequestStats
from surge.report import figures as F
from surge.report.html import page
from surge.results.rundata import RunData

__all__ = ["compare_runs", "page", "render_run_body", "report_html"]

SECTION_TITLES = {
    "verdict": "Verdict", "findings": "Findings", "key-numbers": "Key numbers", "timeseries": "Over time",
    "distribution": "Latency distribution", "requests": "Requests", "checks": "Checks",
    "comparison": "Comparison with the baseline", "sut": "System under test", "profile": "Profile",
    "metadata": "Run metadata",
}
_STATUS_TEXT = {
    "completed": "completed as planned",
    "interrupted": "interrupted (Ctrl-C): the figures cover the part that ran",
    "aborted": "aborted early (a threshold failed with --abort-on-fail)",
    "failed": "failed: see the error below",
    "incomplete": "did not finish (no summary: crashed, killed or still running); figures rebuilt from the "
                  "recorded seconds",
}


# --------------------------------------------------------------------------- formatting


def _ms(v: float | None) -> str:
    """A latency in ms, readable: 0.412 ms, 12.3 ms, 1.24 s."""
    if v is None or v != v:
        return "–"
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    return f"{v:.3g} ms" if v < 100 else f"{v:.0f} ms"


def _n(v: float | None, digits: int = 0) -> str:
    if v is None or v != v:
        return "–"
    return f"{v:,.{digits}f}"


def _pct(frac: float | None, digits: int = 2) -> str:
    return "–" if frac is None or frac != frac else f"{frac * 100:.{digits}f} %"


def _td(text: str, sort: float | str | None = None, cls: str = "") -> str:
    """A cell; ``text`` is escaped here, ``sort`` is the value the table sorts by."""
    attrs = f' class="{cls}"' if cls else ""
    if isinstance(sort, int | float) and sort == sort:
        attrs += f' data-sort="{sort}"'
    return f"<td{attrs}>{escape(text)}</td>"


def _table(head: Iterable[str], rows: Iterable[str], *, sortable: bool = True, foot: str = "",
           text_cols: int = 1) -> str:
    ths = "".join(f'<th{" class=text" if i < text_cols else ""}>{escape(h)}</th>' for i, h in enumerate(head))
    cls = ' class="sortable"' if sortable else ""
    tfoot = f"<tfoot>{foot}</tfoot>" if foot else ""
    return (f'<div class="table-wrap"><table{cls}><thead><tr>{ths}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody>{tfoot}</table></div>")


def _section(sid: str, body: str, title: str | None = None) -> str:
    return (f'<section id="{sid}"><h2>{escape(title or SECTION_TITLES[sid])}</h2>\n{body}\n</section>')


def _badge(text: str, cls: str) -> str:
    return f'<span class="badge {escape(cls)}">{escape(text)}</span>'


def _callout(text: str, kind: str = "") -> str:
    return f'<div class="callout {kind}">{escape(text)}</div>'


def _card(key: str, value: str, sub: str = "") -> str:
    small = f" <small>{escape(sub)}</small>" if sub else ""
    return f'<div class="card"><div class="k">{escape(key)}</div><div class="v">{escape(value)}{small}</div></div>'


# --------------------------------------------------------------------------- data


def _by_name(run: RunData) -> dict[tuple[str, str, str], tuple[RequestStats, dict[str, int]]]:
    """(scenario, name, method) -> merged stats and request count per status class."""
    out: dict[tuple[str, str, str], tuple[RequestStats, dict[str, int]]] = {}
    for (sc, name, method, status), st in sorted(run.histograms.items()):
        merged, classes = out.setdefault((sc, name, method), (RequestStats(), {}))
        merged.merge(st)
        classes[status] = classes.get(status, 0) + st.count
    return out


def _checks(run: RunData) -> list[dict[str, Any]]:
    if run.summary and isinstance(run.summary.get("checks"), list):
        return [c for c in run.summary["checks"] if isinstance(c, dict)]
    tot: dict[str, list[int]] = {}
    for st in run.series:
        for name, (p, f) in st.checks.items():
            c = tot.setdefault(name, [0, 0])
            c[0] += p
            c[1] += f
    return [{"name": n, "passes": p, "fails": f, "rate": p / (p + f) if p + f else None}
            for n, (p, f) in sorted(tot.items())]


def _end_s(run: RunData) -> float | None:
    """Planned end, so the partial last second of in-flight requests is left out of comparisons."""
    if run.meta.get("model") in ("per-vu-iterations", "shared-iterations"):
        return None
    return run.planned_duration_s


def compare_runs(baseline: RunData, run: RunData, config: Any | None = None) -> dict[str, Any]:
    """``surge.analysis.compare`` of ``run`` (B) against ``baseline`` (A), as a JSON-able dict:
    ``rows`` (one per name and metric: a, b, ratio, ci_low, ci_high, p_adjusted, verdict,
    reason), ``worst``, ``counts`` (rows per verdict), ``delta``, ``method``, ``warnings``,
    ``only_in_a``/``only_in_b``."""
    from surge.analysis.compare import CompareConfig, compare, samples_from_series
    from surge.results.select import Side, mismatches

    cfg = config or CompareConfig()
    a = samples_from_series(baseline.series, warmup_s=cfg.warmup_s, end_s=_end_s(baseline))
    b = samples_from_series(run.series, warmup_s=cfg.warmup_s, end_s=_end_s(run))
    cmp = compare(a, b, cfg)
    sides = [Side(r.run_id, [r.series], [r.run_id], meta=r.meta, metas=(r.meta,)) for r in (baseline, run)]
    return {
        "a": {"label": baseline.run_id}, "b": {"label": run.run_id},
        "rows": [dataclasses.asdict(r) for r in cmp.rows], "worst": cmp.worst if cmp.rows else None,
        "counts": cmp.counts,
        "delta": cfg.delta, "per_metric_delta": dict(cfg.per_metric_delta), "method": cmp.method,
        "warnings": [*cmp.warnings, *mismatches(sides[0], sides[1])],
        "only_in_a": cmp.only_in_a, "only_in_b": cmp.only_in_b,
    }


# --------------------------------------------------------------------------- sections


def _head(run: RunData, baseline: RunData | None, ids: list[str]) -> str:
    scen = run.meta.get("scenario") if isinstance(run.meta.get("scenario"), dict) else {}
    hit = run.meta.get("hit") if isinstance(run.meta.get("hit"), dict) else {}
    what = scen.get("path") or (f"hit {hit.get('method', 'GET')} {hit.get('url', '')}" if hit else "")
    sub = " · ".join(x for x in (str(what), str(run.meta.get("started_at") or ""),
                                 f"{run.duration_s:.0f} s", str(run.meta.get("model") or "")) if x)
    vs = f" · compared with {baseline.run_id}" if baseline is not None else ""
    nav = "".join(f'<a href="#{i}">{escape(SECTION_TITLES[i])}</a>' for i in ids)
    return (f'<header class="surge-top"><h1>Run {escape(run.run_id)}</h1>'
            f'<div class="sub">{escape(sub + vs)}</div><nav class="surge-nav">{nav}</nav></header>')


def _gate(run: RunData, comparison: dict[str, Any] | None) -> Any:
    from surge.analysis.gate import decide

    cmp = None
    if comparison is not None:
        cmp = SimpleNamespace(rows=[SimpleNamespace(**r) for r in comparison.get("rows", [])],
                              only_in_a=list(comparison.get("only_in_a") or []))
    return decide(cmp, _thresholds(run))


def _thresholds(run: RunData) -> list[dict[str, Any]]:
    th = (run.summary or {}).get("thresholds")
    return [t for t in th if isinstance(t, dict)] if isinstance(th, list) else []


_COUNT_ORDER = ("REGRESSED", "IMPROVED", "SAME", "INCONCLUSIVE")


def _verdict_counts(comparison: dict[str, Any]) -> dict[str, int]:
    """Rows per verdict, from the rows themselves (a comparison passed in by a caller may
    lack ``counts``)."""
    out = dict.fromkeys(_COUNT_ORDER, 0)
    for r in comparison.get("rows") or []:
        v = str(r.get("verdict", ""))
        if v in out:
            out[v] += 1
    return out


def _overall(counts: dict[str, int]) -> str:
    """The comparison in one word, regressions first: a big improvement is not hidden by
    rows that could not tell (REGRESSED > IMPROVED > INCONCLUSIVE > SAME)."""
    return next((v for v in ("REGRESSED", "IMPROVED", "INCONCLUSIVE") if counts.get(v)), "SAME")


def _tone(gate: Any, counts: dict[str, int] | None) -> tuple[str, str]:
    """(badge text, css class) of the header: FAIL on a regression or a failed threshold; PASS
    "improved" when nothing regressed and something improved, even if some rows are
    INCONCLUSIVE; WARN when the only news is INCONCLUSIVE rows; else PASS."""
    if gate.status == "fail":
        return "FAIL", "fail"
    if counts and counts.get("IMPROVED"):
        return "PASS · improved", "pass"
    return {"pass": "PASS", "warn": "WARN"}[gate.status], gate.status


def _verdict(run: RunData, comparison: dict[str, Any] | None) -> str:
    parts = []
    status = run.status
    gate = _gate(run, comparison)
    counts = _verdict_counts(comparison) if comparison is not None else None
    label, cls = _tone(gate, counts)
    parts.append(f'<p>{_badge(label, cls)} run {_badge(status, status)} '
                 f'{escape(_STATUS_TEXT.get(status, status))}</p>')
    s = run.summary or {}
    if s.get("error"):
        parts.append(_callout(f"error: {s['error']}", "bad"))
    for note in run.notes:
        parts.append(_callout(note))
    gen = s.get("generator") if isinstance(s.get("generator"), dict) else {}
    if gen.get("bound"):
        parts.append(_callout(str(gen.get("explanation") or "the load generator was the bottleneck"), "bad"))
    elif steal_noted(gen):  # steal on a VM: worth knowing, not surge's fault
        parts.append(_callout(str(gen["explanation"])))
    dropped = (s.get("iterations") or {}).get("dropped") if isinstance(s.get("iterations"), dict) else None
    if dropped:
        parts.append(_callout(f"{dropped} iterations were dropped (no free VU when they were due): the "
                              "latencies describe only what was started; the schedule was not kept"))
    for w in s.get("warnings") or []:
        parts.append(_callout(str(w)))
    ths = _thresholds(run)
    if ths:
        rows = [f"<tr>{_td(str(t.get('threshold', '')), cls='text')}"
                f"{_td(str(t.get('observed_text', t.get('observed', ''))))}"
                f"<td>{_badge('pass', 'pass') if t.get('passed') else _badge('FAIL', 'fail')}</td></tr>"
                for t in ths]
        parts.append("<h3>Thresholds</h3>" + _table(["threshold", "observed", "result"], rows, sortable=False))
    elif run.meta.get("thresholds") and run.summary is None:
        parts.append(_callout("thresholds were not evaluated (the run did not finish): "
                              + ", ".join(map(str, run.meta["thresholds"]))))
    if comparison is not None and counts is not None:
        head = f"<h3>Against the baseline {escape(str(comparison.get('a', {}).get('label', '')))}</h3>"
        if not any(counts.values()):
            parts.append(f"{head}<p>no comparable requests (details in "
                         f'<a href="#comparison">the comparison</a>)</p>')
        else:
            overall = _overall(counts)
            tally = " · ".join(f"{counts[v]} {v.lower()}" for v in _COUNT_ORDER)
            note = ""
            if overall == "IMPROVED" and counts["INCONCLUSIVE"]:
                note = (f" Nothing regressed; {counts['INCONCLUSIVE']} "
                        f"{'row' if counts['INCONCLUSIVE'] == 1 else 'rows'} could not tell (see the reasons).")
            parts.append(f'{head}<p class="verdict-counts">{_badge(overall, overall)} {escape(tally)} '
                         f'(metric rows; details in <a href="#comparison">the comparison</a>).{escape(note)}</p>')
    for f in gate.failures:
        parts.append(_callout(f, "bad"))
    return _section("verdict", "\n".join(parts))


def _key_numbers(run: RunData) -> str:
    tot = run.totals()
    dur = run.duration_s
    lat, svc = tot.latency, tot.service

    def p(h: Any, q: float) -> str:
        return _ms(h.percentile(q) / 1e6) if h.count else "–"

    err = tot.error_count / tot.count if tot.count else None
    cards = [
        _card("requests", _n(tot.count), f"in {dur:.0f} s"),
        _card("throughput", _n(tot.count / dur if dur else None, 1), "req/s"),
        _card("errors", _pct(err), f"{_n(tot.error_count)} failed"),
        _card("latency p50", p(lat, 50)), _card("latency p95", p(lat, 95)), _card("latency p99", p(lat, 99)),
        _card("service p50", p(svc, 50)), _card("service p95", p(svc, 95)), _card("service p99", p(svc, 99)),
    ]
    checks = _checks(run)
    passes, fails = sum(int(c.get("passes") or 0) for c in checks), sum(int(c.get("fails") or 0) for c in checks)
    if passes + fails:
        cards.append(_card("checks passed", _pct(passes / (passes + fails)), f"{fails:,} failed"))
    its = (run.summary or {}).get("iterations")
    if isinstance(its, dict):
        cards.append(_card("iterations", _n(its.get("completed")), f"{_n(its.get('dropped'))} dropped"))
    body = f'<div class="cards">{"".join(cards)}</div>'
    if not tot.count:
        body += _callout("no request completed in this run: there is no latency to show", "bad")
    body += ('<p class="note">Latency is measured from each request\'s intended start (coordinated-omission '
             "free); service time from when it was sent.</p>")
    return _section("key-numbers", body)


def _findings(run: RunData) -> list[dict[str, Any]]:
    found = (run.summary or {}).get("findings")
    return [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []


def _findings_section(findings: list[dict[str, Any]]) -> str:
    items = []
    for f in findings:
        sev = str(f.get("severity") or "info")
        ev = f.get("evidence")
        evs = ev if isinstance(ev, list) else [ev] if ev else []
        lis = "".join(f"<li>{escape(str(x))}</li>" for x in evs)
        kind = {"critical": "bad", "info": "info"}.get(sev, "")
        items.append(f'<div class="callout {kind}">{_badge(sev, kind or "warn")} '
                     f"<strong>{escape(str(f.get('title') or ''))}</strong>"
                     f"<p>{escape(str(f.get('detail') or ''))}</p>{f'<ul>{lis}</ul>' if lis else ''}</div>")
    return _section("findings", "\n".join(items))


def _timeseries(run: RunData, baseline: RunData | None, shapes: list[dict[str, Any]]) -> str:
    if not run.series:
        return _section("timeseries", _callout("no per-second data was recorded"))
    tl = F.timeline(run.series)
    base = F.timeline(baseline.series) if baseline is not None and baseline.series else None
    charts = [F.chart("chart-throughput", F.throughput_figure(tl, base, shapes=shapes)),
              F.chart("chart-latency", F.latency_figure(tl, base, shapes=shapes))]
    if tl.errors_by_type:
        charts.append(F.chart("chart-errors", F.errors_figure(tl)))
    charts.append(F.chart("chart-load", F.load_figure(tl)))
    charts.append(F.chart("chart-generator", F.generator_figure(tl), small=True))
    note = ('<p class="note">Solid lines: latency from the intended start; dashed: service time from the send. '
            "A gap between them is time requests waited before they could be sent.</p>")
    return _section("timeseries", note + "\n".join(charts))


def _distribution(run: RunData, baseline: RunData | None) -> str:
    tot = run.totals()
    if not tot.count:
        return _section("distribution", _callout("no requests: no distribution"))
    base = baseline.totals() if baseline is not None else None
    base = base if base is not None and base.count else None
    body = (f'<div class="grid2">{F.chart("chart-histogram", F.histogram_figure(tot, base))}'
            f'{F.chart("chart-spectrum", F.spectrum_figure(tot, base))}</div>'
            '<p class="note">The percentile spectrum reads like HdrHistogram plots: the x axis stretches the '
            "tail (50 %, 90 %, 99 %, 99.9 % are equally spaced), so the worst requests are visible.</p>")
    return _section("distribution", body)


def _requests(run: RunData) -> str:
    groups = _by_name(run)
    if not groups:
        return _section("requests", _callout("no requests were recorded") + _iteration_errors(run))
    dur = run.duration_s
    many_scen = len({k[0] for k in groups}) > 1
    head = [*(["scenario"] if many_scen else []), "name", "method", "requests", "req/s", "errors", "p50",
            "p90", "p95", "p99", "p99.9", "max", "service p95", "status"]
    rows = []
    for (sc, name, method), (st, classes) in groups.items():
        s = stats_summary(st, dur)
        lat = s["latency"]
        cells = [_td(sc, cls="text")] if many_scen else []
        cells += [_td(name, cls="text"), _td(method), _td(_n(s["requests"]), s["requests"]),
                  _td(_n(s["rps"], 2), s["rps"]), _td(_pct(s["error_rate"]), s["error_rate"])]
        cells += [_td(_ms(lat[k]), lat[k]) for k in ("p50", "p90", "p95", "p99", "p99.9", "max")]
        svc = s["service"]["p95"]
        cells += [_td(_ms(svc), svc), _td(", ".join(f"{k}: {v:,}" for k, v in sorted(classes.items())))]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    body = _table(head, rows, text_cols=2 if many_scen else 1)
    body += _errors_table(groups) + _iteration_errors(run)
    return _section("requests", body)


def _errors_table(groups: dict[tuple[str, str, str], tuple[RequestStats, dict[str, int]]]) -> str:
    rows = []
    for (_sc, name, method), (st, _) in groups.items():
        for kind, n in st.errors.items():
            rows.append((n, name, method, str(kind)))
    if not rows:
        return ""
    rows.sort(key=lambda r: -r[0])
    html_rows = [f"<tr>{_td(name, cls='text')}{_td(method)}{_td(kind, cls='text')}{_td(_n(n), n)}</tr>"
                 for n, name, method, kind in rows[:200]]
    return "<h3>Errors</h3>" + _table(["name", "method", "error", "count"], html_rows)


def _iteration_errors(run: RunData) -> str:
    its = (run.summary or {}).get("iterations")
    errs: Counter = Counter()
    if isinstance(its, dict) and isinstance(its.get("errors"), dict):
        errs.update({str(k): int(v) for k, v in its["errors"].items()})
    else:
        for st in run.series:
            errs.update(st.iteration_errors)
    if not errs:
        return ""
    tbs = its.get("first_tracebacks") if isinstance(its, dict) and isinstance(its.get("first_tracebacks"), dict) else {}
    rows = [f"<tr>{_td(k, cls='text')}{_td(_n(n), n)}</tr>" for k, n in errs.most_common()]
    out = "<h3>Iteration errors (exceptions in scenario code)</h3>" + _table(["exception", "iterations"], rows)
    for k, tb in tbs.items():
        out += f"<details><summary>first {escape(str(k))} traceback</summary><pre>{escape(str(tb))}</pre></details>"
    return out


def _checks_section(run: RunData) -> str:
    checks = _checks(run)
    if not checks:
        return _section("checks", '<p class="muted">The scenario recorded no checks.</p>')
    rows = []
    for c in checks:
        p, f = int(c.get("passes") or 0), int(c.get("fails") or 0)
        rate = p / (p + f) if p + f else None
        rows.append(f"<tr>{_td(str(c.get('name', '')), cls='text')}{_td(_n(p), p)}{_td(_n(f), f)}"
                    f"{_td(_pct(rate), rate)}</tr>")
    return _section("checks", _table(["check", "passes", "fails", "pass rate"], rows))


def _fmt_metric(v: float | None, metric: str) -> str:
    if v is None:
        return "–"
    if metric == "error_rate":
        return _pct(v)
    if metric == "throughput":
        return f"{v:,.1f}/s"
    return _ms(v)


def _comparison(comparison: dict[str, Any]) -> str:
    rows = comparison.get("rows") or []
    a = str(comparison.get("a", {}).get("label", "baseline"))
    parts = [f"<p>A = baseline <strong>{escape(a)}</strong>, B = this run. The change B/A in % with its 95 % confidence "
             "interval; REGRESSED needs both significance and a change beyond ±delta.</p>"]
    fig = F.comparison_figure(rows, float(comparison.get("delta") or 0.05))
    if fig is not None:
        parts.append(F.chart("chart-comparison", fig))
    trs = []
    for r in rows:
        ratio = r.get("ratio")
        change = (ratio - 1) if ratio is not None else None
        ci = (f"{(r['ci_low'] - 1) * 100:+.1f} % .. {(r['ci_high'] - 1) * 100:+.1f} %"
              if r.get("ci_low") is not None and r.get("ci_high") is not None else "–")
        padj = r.get("p_adjusted")
        verdict = str(r.get("verdict", ""))
        trs.append(
            f"<tr>{_td(str(r.get('name', '')), cls='text')}{_td(str(r.get('metric', '')))}"
            f"{_td(_fmt_metric(r.get('a'), r.get('metric', '')), r.get('a'))}"
            f"{_td(_fmt_metric(r.get('b'), r.get('metric', '')), r.get('b'))}"
            f"{_td(f'{change * 100:+.1f} %' if change is not None else '–', change)}{_td(ci)}"
            f"{_td(f'{padj:.3g}' if padj is not None else '–', padj)}"
            f"<td>{_badge(verdict, verdict)}</td>{_td(str(r.get('reason', '')), cls='text')}</tr>")
    if trs:
        parts.append(_table(["request", "metric", "A (baseline)", "B (this run)", "change", "95 % CI", "adj. p",
                             "verdict", "reason"], trs))
    else:
        parts.append(_callout("no request name is present in both runs with data: nothing to compare"))
    for key, what in (("only_in_a", "only in the baseline"), ("only_in_b", "only in this run")):
        if comparison.get(key):
            parts.append(_callout(f"{what} (not compared): {', '.join(map(str, comparison[key]))}"))
    for w in comparison.get("warnings") or []:
        parts.append(_callout(f"warning: {w}"))
    if comparison.get("method"):
        parts.append(f'<p class="note">{escape(str(comparison["method"]))}</p>')
    parts.append('<p class="note">The baseline is drawn in grey in the time-series and distribution charts.</p>')
    return _section("comparison", "\n".join(parts))


def _value(v: Any) -> str:
    if isinstance(v, dict | list):
        return f"<pre>{escape(json.dumps(v, indent=2, default=str))}</pre>"
    return escape(str(v))


def _metadata(run: RunData) -> str:
    m = run.meta
    rows: list[tuple[str, Any]] = [("run id", run.run_id), ("status", run.status)]
    scen = m.get("scenario") if isinstance(m.get("scenario"), dict) else None
    if scen:
        rows += [("scenario", scen.get("path")), ("scenario sha256", scen.get("sha256")),
                 ("scenarios", ", ".join(map(str, scen.get("names") or [])))]
    if isinstance(m.get("hit"), dict):
        rows.append(("hit", m["hit"]))
    argv = m.get("argv")
    if isinstance(argv, list):
        rows.append(("command", shlex.join(str(a) for a in argv)))
    rows.append(("model", m.get("model")))
    slot = m.get("arrival_slot_ms")
    if isinstance(slot, int | float) and not isinstance(slot, bool):
        rows.append(("arrival slot", f"{slot:g} ms" if slot else "0 (exact times)"))
    rows += [(k, m.get(k)) for k in ("options", "planned_duration_s", "workers", "started_at",
                                     "ended_at", "duration_s", "surge_version", "host", "git", "thresholds")]
    if run.tags:
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items()))))
    if run.run_dir is not None:
        rows.append(("run directory", str(run.run_dir)))
    shown = {"run_id", "status", "scenario", "hit", "argv", "model", "arrival_slot_ms", "options", "planned_duration_s", "workers",
             "started_at", "ended_at", "duration_s", "surge_version", "host", "git", "thresholds", "tags",
             "format_version", "start_ns"}
    rows += [(k, v) for k, v in sorted(m.items()) if k not in shown]
    trs = "".join(f"<tr><th>{escape(str(k))}</th><td>{_value(v)}</td></tr>" for k, v in rows
                  if v not in (None, "", [], {}))
    return _section("metadata", f'<table class="kv">{trs}</table>')


def _optional_charts(run: RunData, filename: str, draw: Callable[[Any], list[dict[str, Any]]],
                     prefix: str) -> str:
    """Charts of an optional run-directory file; a file that cannot be drawn gets a note,
    not a broken report."""
    if run.run_dir is None or not (run.run_dir / filename).is_file():
        return ""
    try:
        figs = draw(run.run_dir)
    except Exception as exc:  # an optional section must not cost the whole report
        return _callout(f"could not draw {filename}: {type(exc).__name__}: {exc}", "bad")
    return "\n".join(F.chart(f"{prefix}-{i}", fig) for i, fig in enumerate(figs))


def _sut_section(run: RunData) -> str:
    """Hook: SUT resources (sut.jsonl), drawn by surge.report.sut_figures when installed."""
    try:
        from surge.report.sut_figures import sut_figures
        from surge.results.sut_files import read_sut
    except ImportError:
        return ""
    body = _optional_charts(run, "sut.jsonl", lambda d: sut_figures(read_sut(d)), "chart-sut")
    return _section("sut", body) if body else ""


def _profile_section(run: RunData) -> str:
    """Hook: the SUT's py-spy profile (profile.collapsed) as a flame graph (surge.report.flame)."""
    try:
        from surge.report.flame import flame_figure
        from surge.results.sut_files import read_profile
    except ImportError:
        return ""

    def draw(d: Any) -> list[dict[str, Any]]:
        stacks = read_profile(d)
        return [flame_figure(stacks)] if stacks else []

    body = _optional_charts(run, "profile.collapsed", draw, "chart-flame")
    return _section("profile", body) if body else ""


def render_run_body(run: RunData, baseline: RunData | None = None, *, comparison: dict | None = None) -> str:
    """The run page as an HTML fragment (no ``<html>``): header, then the sections.

    With a ``baseline``, ``comparison`` (as :func:`compare_runs` returns it) is computed
    when not given, and the baseline is overlaid on the charts.
    """
    if baseline is not None and comparison is None:
        comparison = compare_runs(baseline, run)
    findings = _findings(run)
    sections = [("verdict", _verdict(run, comparison))]
    if findings:
        sections.append(("findings", _findings_section(findings)))
    sections += [
        ("key-numbers", _key_numbers(run)),
        ("timeseries", _timeseries(run, baseline, F.finding_shapes(findings))),
        ("distribution", _distribution(run, baseline)),
        ("requests", _requests(run)),
        ("checks", _checks_section(run)),
    ]
    if comparison is not None:
        sections.append(("comparison", _comparison(comparison)))
    sections += [("sut", _sut_section(run)), ("profile", _profile_section(run)), ("metadata", _metadata(run))]
    sections = [(sid, html) for sid, html in sections if html]
    head = _head(run, baseline, [sid for sid, _ in sections])
    body = "\n".join(html for _, html in sections)
    return f'{head}\n<main class="surge-run" data-run-id="{escape(run.run_id)}">\n{body}\n</main>'


def report_html(run: RunData, baseline: RunData | None = None, *, comparison: dict | None = None,
                plotly_js: str | None = None) -> str:
    """The self-contained report: :func:`render_run_body` in a :func:`page` with plotly.js inlined
    (``plotly_js`` defaults to the plotly package's bundle)."""
    from surge.report.html import bundled_plotly_js

    body = render_run_body(run, baseline, comparison=comparison)
    title = f"surge report {run.run_id}" + (f" vs {baseline.run_id}" if baseline is not None else "")
    return page(title, body, plotly_js=plotly_js if plotly_js is not None else bundled_plotly_js())
