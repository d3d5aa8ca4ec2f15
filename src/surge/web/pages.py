"""HTML of the dashboard's own pages: runs list, compare form, trend, live view, messages.

Run detail and comparison bodies come from the report (``surge.report.views``);
this module adds the dashboard's frame (title bar, navigation, forms).

Every piece of text that came from a user, a scenario or a server (run ids,
scenario names, request names, tags, branches, messages) goes through
:func:`esc` or, inside a URL, :func:`quote` then :func:`esc`. Nothing else is
ever interpolated into markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from surge.report.figures import chart, r4
from surge.report.html import page
from surge.results.store import RunRecord
from surge.web.trend import TREND_METRICS, UNITS, TrendSeries

STYLE = """<style>
form.surge-filters { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: end; margin: 8px 0 14px; }
form.surge-filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
form.surge-filters input, form.surge-filters select { font: inherit; padding: 3px 6px; min-width: 9em; }
td.pick { text-align: center; }
nav.surge-dash { display: flex; gap: 16px; align-items: baseline; padding: 8px 24px; background: #1d2330;
                 font-size: 14px; }
nav.surge-dash strong { color: #fff; }
nav.surge-dash a { color: #c9d6ea; text-decoration: none; }
nav.surge-dash a[aria-current] { color: #fff; text-decoration: underline; }
.live-status { font-size: 13px; color: var(--muted); margin: 4px 0 10px; }
.surge-live-chart { width: 100%; min-height: 260px; }
</style>"""


def esc(value: Any) -> str:
    """Text for HTML (element content or a quoted attribute value)."""
    return html.escape("" if value is None else str(value), quote=True)


def run_href(run_id: str) -> str:
    """The detail page of a run (the id is URL-quoted: ids are user-chosen labels)."""
    return "/runs/" + quote(run_id, safe="")


def dash_bar(active: str, live: bool) -> str:
    """The dashboard's own navigation, above every page (run pages keep the report's header under it)."""
    links = [("runs", "/", "Runs"), ("compare", "/compare", "Compare"), ("trend", "/trend", "Trend")]
    if live:
        links.append(("live", "/live", "Live"))
    current = ' aria-current="page"'
    items = " ".join(f'<a href="{href}"{current if key == active else ""}>{label}</a>'
                     for key, href, label in links)
    return f'<nav class="surge-dash" aria-label="dashboard"><strong>surge</strong> {items}</nav>'


def frame(title: str, body: str, *, active: str, live: bool, subtitle: str = "", extra_head: str = "") -> str:
    """A complete dashboard page: navigation, a title bar, and ``body`` (trusted markup) in ``<main>``.

    ``subtitle`` is trusted markup too (callers escape what goes into it)."""
    sub = f'<div class="sub">{subtitle}</div>' if subtitle else ""
    head = f'<header class="surge-top"><h1>{esc(title)}</h1>{sub}</header>'
    return page(f"{title} - surge", f"{dash_bar(active, live)}{head}<main>{body}</main>", plotly_js=None,
                extra_head=STYLE + extra_head)


def run_frame(title: str, run_body: str, *, live: bool) -> str:
    """A run page: navigation, then the report's run body (its own header and ``<main>``)."""
    return page(f"{title} - surge", f"{dash_bar('', live)}{run_body}", plotly_js=None, extra_head=STYLE)


def message_page(title: str, message: str, *, live: bool, hint_html: str = "") -> str:
    """A page that only says something (not found, bad input, store unavailable)."""
    return frame(title, f'<section><p class="callout">{esc(message)}</p>{hint_html}</section>',
                 active="", live=live)


# --------------------------------------------------------------------------- runs list


@dataclass(frozen=True)
class RunFilters:
    """The runs list's filters, as typed in its form (strings, '' when unset)."""

    scenario: str = ""
    branch: str = ""
    tag: str = ""
    since: str = ""
    until: str = ""
    limit: int = 100


def _fmt(v: float | None, spec: str = ",.1f") -> str:
    return "-" if v is None else format(v, spec)


def _input(name: str, label: str, value: str, *, kind: str = "text", placeholder: str = "") -> str:
    ph = f' placeholder="{esc(placeholder)}"' if placeholder else ""
    return (f'<label>{esc(label)}<input type="{kind}" name="{name}" value="{esc(value)}"{ph}></label>')


def runs_page(runs: list[RunRecord], f: RunFilters, *, live: bool, store_shown: str) -> str:
    """The runs list: filters, then a table with A/B pickers that submit to the compare page."""
    form = (
        '<form class="surge-filters" method="get" action="/">'
        + _input("scenario", "scenario", f.scenario, placeholder="checkout")
        + _input("branch", "branch", f.branch, placeholder="main")
        + _input("tag", "tag", f.tag, placeholder="env=staging")
        + _input("since", "from", f.since, kind="date")
        + _input("until", "to", f.until, kind="date")
        + _input("limit", "at most", str(f.limit), kind="number")
        + '<button type="submit">Filter</button> <a href="/">clear</a></form>'
    )
    if not runs:
        empty = ("No runs match these filters." if any((f.scenario, f.branch, f.tag, f.since, f.until))
                 else "No runs recorded yet: every `surge run` records its run in the store.")
        return frame("Runs", f'<section>{form}<p class="callout">{esc(empty)}</p></section>',
                     active="runs", live=live, subtitle=f"store {esc(store_shown)}")
    rows = []
    for r in runs:
        tags = " ".join(f"{k}={v}" for k, v in sorted(r.tags.items()))
        p95 = r.p95
        rows.append(
            "<tr>"
            f'<td class="pick"><input type="radio" name="a" value="{esc(r.id)}" aria-label="baseline A"></td>'
            f'<td class="pick"><input type="radio" name="b" value="{esc(r.id)}" aria-label="run B"></td>'
            f'<td class="text"><a href="{esc(run_href(r.id))}">{esc(r.id)}</a></td>'
            f'<td class="text">{esc(r.started_at.strftime("%Y-%m-%d %H:%M:%S"))}</td>'
            f'<td class="text">{esc(r.scenario)}</td>'
            f'<td class="text">{esc(r.branch or "-")}</td>'
            f'<td class="text">{esc((r.commit or "-")[:10])}</td>'
            f'<td class="text {esc(r.status)}">{esc(r.status)}</td>'
            f'<td data-sort="{r.requests}">{r.requests:,}</td>'
            f'<td data-sort="{r.rps}">{_fmt(r.rps)}</td>'
            f'<td data-sort="{"" if p95 is None else p95}">{_fmt(p95, ",.2f")}</td>'
            f'<td data-sort="{r.error_rate}">{r.error_rate * 100:.2f}%</td>'
            f'<td class="text">{esc(tags)}</td>'
            "</tr>")
    table = (
        '<form method="get" action="/compare"><div class="table-wrap"><table class="sortable"><thead><tr>'
        "<th>A</th><th>B</th><th>run</th><th>started (UTC)</th><th>scenario</th><th>branch</th><th>commit</th>"
        "<th>status</th><th>requests</th><th>req/s</th><th>p95 ms</th><th>errors</th><th>tags</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        '<p><button type="submit">Compare A (baseline) with B</button></p></form>')
    shown = f"{len(runs)} run{'s' if len(runs) != 1 else ''}, newest first"
    return frame("Runs", f"<section>{form}<p class=\"muted\">{shown}</p>{table}</section>", active="runs",
                 live=live, subtitle=f"store {esc(store_shown)}")


# --------------------------------------------------------------------------- compare


def _run_select(name: str, label: str, choices: list[RunRecord], selected: str) -> str:
    opts = ['<option value="">(pick a run)</option>']
    ids = [r.id for r in choices]
    if selected and selected not in ids:  # an older run, or a prefix typed in the URL
        opts.append(f'<option value="{esc(selected)}" selected>{esc(selected)}</option>')
    for r in choices:
        sel = " selected" if r.id == selected else ""
        text = f"{r.id}  ({r.scenario}, {r.branch or '-'})"
        opts.append(f'<option value="{esc(r.id)}"{sel}>{esc(text)}</option>')
    return f'<label>{esc(label)}<select name="{name}">{"".join(opts)}</select></label>'


def compare_form(choices: list[RunRecord], a: str, b: str) -> str:
    return ('<form class="surge-filters" method="get" action="/compare">'
            + _run_select("a", "A: baseline", choices, a) + _run_select("b", "B: the run to judge", choices, b)
            + '<button type="submit">Compare</button></form>')


def compare_page(choices: list[RunRecord], a: str, b: str, body: str | None, *, live: bool,
                 message: str = "") -> str:
    """The compare form, and under it B judged against A (``body``) or why not (``message``)."""
    note = f'<p class="callout">{esc(message)}</p>' if message else ""
    if not choices and not body:
        note += '<p class="callout">No runs recorded yet: record two with `surge run` to compare them.</p>'
    return frame("Compare two runs", f"<section>{compare_form(choices, a, b)}{note}</section>{body or ''}",
                 active="compare", live=live)


# --------------------------------------------------------------------------- trend


@dataclass(frozen=True)
class TrendQuery:
    metric: str = "p95"
    name: str = ""
    scenario: str = ""
    branch: str = ""
    since: str = ""


def trend_figure(s: TrendSeries) -> dict[str, Any]:
    """Values per run over time, each change point marked where the new level starts.

    Labels go through :func:`esc` too: plotly reads a subset of HTML in text."""
    x = [r.started_at.strftime("%Y-%m-%d %H:%M:%S") for r, _ in s.points]
    y = [r4(v) for _, v in s.points]
    hover = [esc(f"{r.id} · {(r.commit or '-')[:10]} · {r.branch or '-'}") for r, _ in s.points]
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines+markers", "x": x, "y": y, "name": esc(s.label), "text": hover,
        "hovertemplate": "%{y}<br>%{text}<extra></extra>", "line": {"width": 1.5, "color": "#1f77b4"},
        "marker": {"size": 5},
    }]
    shapes = []
    for cp in s.change_points:
        bad = s.is_regression(cp)
        color = "#d62728" if bad else "#2ca02c"
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x[cp.index], "x1": x[cp.index],
                       "y0": 0, "y1": 1, "line": {"color": color, "dash": "dash", "width": 1.5}})
        data.append({"type": "scatter", "mode": "markers", "x": [x[cp.index]], "y": [y[cp.index]],
                     "name": f"{cp.direction} {cp.magnitude * 100:+.1f}%", "hoverinfo": "name",
                     "marker": {"size": 12, "color": color, "symbol": "diamond"}})
    return {"data": data, "layout": {
        "title": {"text": f"{esc(s.metric)} of {esc(s.label)}", "x": 0, "font": {"size": 14}},
        "height": 300, "margin": {"l": 60, "r": 20, "t": 40, "b": 40}, "showlegend": bool(s.change_points),
        "legend": {"orientation": "h", "y": -0.25}, "shapes": shapes,
        "xaxis": {"title": {"text": "run start (UTC)"}, "type": "date"},
        "yaxis": {"title": {"text": UNITS.get(s.metric, "")}, "rangemode": "tozero"},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)"}}


def _change_table(s: TrendSeries) -> str:
    if not s.change_points:
        n = len(s.points)
        why = "no change point" if n >= 6 else f"{n} run{'s' if n != 1 else ''}: change points need at least 6"
        return f'<p class="muted">{why}</p>'
    rows = []
    for cp in s.change_points:
        run = s.points[cp.index][0]
        prev = s.points[cp.index - 1][0] if cp.index > 0 else None
        cls = "bad" if s.is_regression(cp) else "ok"
        compare = ""
        if prev is not None:
            q = urlencode({"a": prev.id, "b": run.id})
            compare = f'<a href="/compare?{esc(q)}">compare with the run before</a>'
        rows.append(
            f'<tr><td class="text"><a href="{esc(run_href(run.id))}">{esc(run.id)}</a></td>'
            f'<td class="text">{esc((run.commit or "-")[:10])}</td>'
            f'<td class="text {cls}">{esc(cp.direction)} {cp.magnitude * 100:+.1f}%</td>'
            f"<td>{cp.ci_low * 100:+.1f}% .. {cp.ci_high * 100:+.1f}%</td>"
            f"<td>{r4(cp.before_mean)} → {r4(cp.after_mean)}</td><td>{cp.p_value:.3g}</td>"
            f'<td class="text">{compare}</td></tr>')
    return ('<div class="table-wrap"><table><thead><tr><th>first run of the new level</th><th>commit</th>'
            "<th>change</th><th>99% CI</th><th>mean before → after</th><th>p</th><th></th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def trend_page(series: list[TrendSeries], q: TrendQuery, names: list[str], *, live: bool,
               message: str = "") -> str:
    """The metric across runs per request name, with change points as in `surge history`."""
    metric_opts = "".join(f'<option value="{m}"{" selected" if m == q.metric else ""}>{m}</option>'
                          for m in TREND_METRICS)
    name_opts = "".join(f'<option value="{esc(n)}">' for n in names[:500])
    form = ('<form class="surge-filters" method="get" action="/trend">'
            f'<label>metric<select name="metric">{metric_opts}</select></label>'
            f'<label>request name<input type="text" name="name" value="{esc(q.name)}" list="surge-names" '
            f'placeholder="all requests"></label><datalist id="surge-names">{name_opts}</datalist>'
            + _input("scenario", "scenario", q.scenario, placeholder="checkout")
            + _input("branch", "branch", q.branch, placeholder="main")
            + _input("since", "from", q.since, kind="date")
            + '<button type="submit">Show</button></form>')
    parts = [f"<section>{form}"]
    if message:
        parts.append(f'<p class="callout">{esc(message)}</p>')
    parts.append('<p class="muted">One point per completed run, oldest first. A dashed line marks the first '
                 "run of a new level (E-divisive means, confirmed by a Welch test; red: worse, green: better), "
                 'as <code>surge history</code> reports it. Pick one scenario, or a "shift" may just be a '
                 "different workload.</p></section>")
    if not any(s.points for s in series):
        parts.append('<section><p class="callout">No recorded runs match: record runs with `surge run`, or '
                     "loosen the filters.</p></section>")
    for i, s in enumerate(series):
        if not s.points:
            continue
        parts.append(f"<section><h2>{esc(s.label)}</h2>{chart(f'trend-{i}', trend_figure(s))}"
                     f"{_change_table(s)}</section>")
    title = f"Trend of {q.metric}" + (f" of {q.name}" if q.name else "")
    return frame(title, "".join(parts), active="trend", live=live)


# --------------------------------------------------------------------------- live


def live_page() -> str:
    """The live view's skeleton; /assets/surge-live.js fills it from the SSE stream."""
    charts = "".join(
        f'<section><div class="surge-live-chart" id="live-{key}" aria-label="{label}"></div></section>'
        for key, label in (("throughput", "throughput"), ("latency", "latency"), ("errors", "errors"),
                           ("vus", "virtual users")))
    body = ('<p class="live-status" id="live-status">connecting to the run ...</p>'
            f'<div class="grid2">{charts}</div>')
    return frame("Live run", body, active="live", live=True,
                 extra_head='<script src="/assets/surge-live.js" defer></script>')
