"""The dashboard: a small Starlette app over the run store (and, in `surge run --dashboard`, a live run).

Routes (all GET; nothing is written, nothing is read from a path in the URL):

==========================  =====================================================
``/``                       runs list with filters (scenario, branch, tag, dates)
``/runs/{id}``              one run, the same sections as the HTML report
``/compare?a=ID&b=ID``      B judged against A (pick them in the form)
``/trend?metric=p95&...``   a metric per request name across runs, change points
``/live``                   the run in progress (only with a live feed)
``/api/runs``               the runs list as JSON (same filters)
``/api/live/stream``        Server-Sent Events of the run in progress
``/assets/plotly.min.js``   plotly.js from the installed package
``/assets/surge-live.js``   the live view's script
==========================  =====================================================

Page handlers are plain functions (Starlette runs them in its thread pool, so
store queries never block the event loop). A user's mistake (an unknown run
id, a malformed date) is a page saying so with a 4xx status; a store that
cannot be read is a 503 page; nothing ever shows a traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import traceback
from base64 import b64encode
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from surge.api.errors import SurgeError, UsageError
from surge.report.html import asset
from surge.results.store import Store
from surge.web import pages
from surge.web.assets import PlotlyAsset
from surge.web.auth import AccessGuard
from surge.web.live import CLOSED, LiveHub
from surge.web.live_js import LIVE_JS
from surge.web.trend import TREND_METRICS, trend

log = logging.getLogger("surge.web")
KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies from closing an idle stream
MAX_LIST = 1000
COMPARE_CHOICES = 200


class StoreHolder:
    """The run store: given open, or opened on first use (so a live run's page works even
    when the store cannot be opened; its pages then say why)."""

    def __init__(self, store: Store | str) -> None:
        self._url = store if isinstance(store, str) else None
        self._store: Store | None = None if isinstance(store, str) else store
        self._lock = threading.Lock()

    @property
    def shown(self) -> str:
        """The store's URL for display (password hidden), once it is open."""
        return self._store.url if self._store is not None else "(not open yet)"

    def get(self) -> Store:
        with self._lock:
            if self._store is None:
                assert self._url is not None
                self._store = Store.open(self._url)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class PageError(Exception):
    """A page that ends in a message instead of its content."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _csp() -> str:
    """Scripts only from this server plus the one inline script of the page (by hash): an
    injected ``<script>`` or ``onerror=`` would not run even if escaping ever failed."""
    digest = b64encode(hashlib.sha256(asset("surge.js").encode()).digest()).decode()
    return ("default-src 'self'; "
            f"script-src 'self' 'sha256-{digest}'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def create_app(store: Store | str, *, token: str | None = None, hub: LiveHub | None = None) -> Starlette:
    """The dashboard ASGI app over ``store`` (open, or a URL opened on first use); ``hub``
    enables the live view.

    ``token``: required on every request (see :mod:`surge.web.auth`); None serves
    loopback host names only. ``app.state.close()`` releases the store and ends live streams.
    """
    holder = StoreHolder(store)
    plotly = PlotlyAsset()
    live = hub is not None
    headers = {"content-security-policy": _csp(), "x-content-type-options": "nosniff",
               "referrer-policy": "no-referrer", "x-frame-options": "DENY", "cache-control": "no-store"}

    def html_page(fn: Callable[[Request], str]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return HTMLResponse(fn(request), headers=headers)
            except PageError as exc:
                body = pages.message_page(exc.title, exc.message, live=live)
                return HTMLResponse(body, status_code=exc.status, headers=headers)
            except UsageError as exc:  # the store's word for "no such run" and other user mistakes
                return HTMLResponse(pages.message_page("Not found", str(exc), live=live), status_code=404,
                                    headers=headers)
            except SurgeError as exc:
                return HTMLResponse(pages.message_page("Run store unavailable", str(exc), live=live),
                                    status_code=503, headers=headers)
        return endpoint

    # ------------------------------------------------------------------ pages

    def runs_list(request: Request) -> str:
        f, kw = _run_filters(request)
        return pages.runs_page(_list(holder.get(), f, kw), f, live=live, store_shown=holder.shown)

    def run_detail(request: Request) -> str:
        from surge.report.views import render_run_body

        run = _load_run(holder.get(), request.path_params["run_id"])
        return pages.run_frame(f"Run {run.run_id}", render_run_body(run), live=live)

    def compare(request: Request) -> str:
        from surge.report.views import render_run_body

        a, b = (request.query_params.get(k, "").strip() for k in ("a", "b"))
        store = holder.get()
        choices = store.list_runs(limit=COMPARE_CHOICES)
        if not a or not b:
            msg = "Pick a baseline A and a run B." if (a or b) else ""
            return pages.compare_page(choices, a, b, None, live=live, message=msg)
        try:
            run_a, run_b = _load_run(store, a), _load_run(store, b)
        except UsageError as exc:
            raise PageError(404, "Compare two runs", str(exc)) from None
        if run_a.run_id == run_b.run_id:
            return pages.compare_page(choices, a, b, None, live=live,
                                      message="A and B are the same run: pick two different runs.")
        return pages.compare_page(choices, run_a.run_id, run_b.run_id, render_run_body(run_b, baseline=run_a),
                                  live=live)

    def trend_view(request: Request) -> str:
        qp = request.query_params
        q = pages.TrendQuery(metric=qp.get("metric") or "p95", name=(qp.get("name") or "").strip(),
                             scenario=(qp.get("scenario") or "").strip(), branch=(qp.get("branch") or "").strip(),
                             since=(qp.get("since") or "").strip())
        if q.metric not in TREND_METRICS:
            raise PageError(400, "Trend", f"unknown metric {q.metric!r}: use one of {', '.join(TREND_METRICS)}")
        store = holder.get()
        series = trend(store, metric=q.metric, name=q.name or None, scenario=q.scenario or None,
                       branch=q.branch or None, since=_date(q.since, "from"))
        from surge.web.trend import request_names

        names = request_names(store, scenario=q.scenario or None, branch=q.branch or None)
        return pages.trend_page(series, q, names, live=live)

    def live_view(request: Request) -> str:
        if hub is None:
            raise PageError(404, "Live run", "No run is in progress here: the live view belongs to "
                                             "`surge run --dashboard`, which serves it while the test runs.")
        return pages.live_page()

    # ------------------------------------------------------------------ JSON, SSE, assets

    def api_runs(request: Request) -> Response:
        try:
            f, kw = _run_filters(request)
            runs = _list(holder.get(), f, kw)
        except (PageError, UsageError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400, headers=headers)
        except SurgeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503, headers=headers)
        return JSONResponse([_jsonable(asdict(r)) for r in runs], headers=headers)

    async def live_stream(request: Request) -> Response:
        if hub is None:
            return JSONResponse({"error": "no live run in this process"}, status_code=404, headers=headers)
        snapshot, queue = hub.subscribe()

        async def events() -> AsyncIterator[str]:
            try:
                yield snapshot
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if item is CLOSED:
                        return
                    yield item
            finally:
                hub.unsubscribe(queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={**headers, "x-accel-buffering": "no"})

    def plotly_js(request: Request) -> Response:
        return plotly.response(request)

    def live_js(request: Request) -> Response:
        return Response(LIVE_JS, media_type="text/javascript; charset=utf-8",
                        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"})

    # ------------------------------------------------------------------ errors

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status == 405:
            body = pages.message_page("Method not allowed", "The dashboard only reads: use GET.", live=live)
        else:
            body = pages.message_page("Not found", f"There is no page at {request.url.path}: start from the "
                                                   "runs list.", live=live)
        return HTMLResponse(body, status_code=status, headers=headers)

    async def crashed(request: Request, exc: Exception) -> Response:
        log.error("dashboard page %s failed:\n%s", request.url.path,
                  "".join(traceback.format_exception(exc)))
        body = pages.message_page("Something went wrong",
                                  f"This page failed ({type(exc).__name__}); the details are in the terminal "
                                  "running the dashboard.", live=live)
        return HTMLResponse(body, status_code=500, headers=headers)

    routes = [
        Route("/", html_page(runs_list)),
        Route("/runs/{run_id}", html_page(run_detail)),
        Route("/compare", html_page(compare)),
        Route("/trend", html_page(trend_view)),
        Route("/live", html_page(live_view)),
        Route("/api/runs", api_runs),
        Route("/api/live/stream", live_stream),
        Route("/assets/plotly.min.js", plotly_js),
        Route("/assets/surge-live.js", live_js),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found, Exception: crashed})

    def close() -> None:
        if hub is not None:
            hub.close()
        holder.close()

    app.state.store = holder
    app.state.close = close
    app.state.hub = hub
    app.add_middleware(AccessGuard, token=token)
    return app


# --------------------------------------------------------------------------- helpers


def _load_run(store: Store, ref: str) -> Any:
    """A stored run by id, unique prefix or 'latest': only ever from the store, never a path."""
    from surge.results.rundata import from_store  # a run directory named in a URL is never read

    return from_store(ref, store)


def _date(text: str, what: str) -> datetime | None:
    if not text:
        return None
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise PageError(400, "Bad filter", f"{what} {text!r} is not a date: use YYYY-MM-DD") from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _run_filters(request: Request) -> tuple[pages.RunFilters, dict[str, Any]]:
    """The runs list's filters from the query string, and the matching ``list_runs`` arguments."""
    qp = request.query_params
    raw = {k: (qp.get(k) or "").strip() for k in ("scenario", "branch", "tag", "since", "until", "limit")}
    try:
        limit = min(max(int(raw["limit"] or 100), 1), MAX_LIST)
    except ValueError:
        raise PageError(400, "Bad filter", f"at most {raw['limit']!r} is not a number") from None
    tag = None
    if raw["tag"]:
        k, sep, v = raw["tag"].partition("=")
        if not sep or not k.strip():
            raise PageError(400, "Bad filter", f"tag {raw['tag']!r}: write it as key=value, e.g. env=staging")
        tag = (k.strip(), v.strip())
    until = _date(raw["until"], "to")
    f = pages.RunFilters(raw["scenario"], raw["branch"], raw["tag"], raw["since"], raw["until"], limit)
    kw = {"scenario": f.scenario or None, "branch": f.branch or None, "tag": tag,
          "since": _date(raw["since"], "from"),
          # a bare date means the whole day
          "until": until + timedelta(days=1) if until and len(raw["until"]) <= 10 else until}
    return f, kw


def _list(store: Store, f: pages.RunFilters, kw: dict[str, Any]) -> list[Any]:
    until = kw.pop("until")
    if until is None:
        return store.list_runs(limit=f.limit, **kw)
    # list_runs has no upper bound: newest first, so skip past the newer ones
    runs = store.list_runs(limit=MAX_LIST * 10, **kw)
    return [r for r in runs if r.started_at < until][:f.limit]


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()}
