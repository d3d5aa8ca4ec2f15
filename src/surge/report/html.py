"""The HTML page around a report body: inline CSS, the chart script, and plotly.js.

The report is one file that works offline, so plotly.js (about 4.8 MB) is inlined.
Measured: gzip -9 brings it to 1.47 MB, base64 to 1.96 MB, which leaves a 1-hour
run's figures room under 5 MB; the page decompresses it with the browser's
``DecompressionStream('gzip')`` (Chrome 80+, Firefox 113+, Safari 16.4+) before
drawing. The dashboard instead serves plotly.js as a file (``plotly_js=None``).
"""

from __future__ import annotations

import base64
import gzip
import html
from functools import lru_cache
from importlib import resources

__all__ = ["asset", "bundled_plotly_js", "page"]

DASHBOARD_PLOTLY_SRC = "/assets/plotly.min.js"


@lru_cache(maxsize=8)
def asset(name: str) -> str:
    """The text of a file in ``surge/report/assets`` (surge.js, surge.css)."""
    return resources.files("surge.report").joinpath("assets", name).read_text(encoding="utf-8")


def bundled_plotly_js() -> str:
    """The plotly.js shipped with the plotly package (the report inlines it)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


@lru_cache(maxsize=2)
def _gzip_b64(text: str) -> str:
    # mtime=0: the same input gives the same bytes, so two reports of one run are identical
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def _plotly_tag(plotly_js: str | None) -> str:
    if plotly_js is None:
        return f'<script src="{DASHBOARD_PLOTLY_SRC}"></script>'
    # base64 has no '<', so the payload cannot end the script element early
    return f'<script type="application/octet-stream" id="surge-plotly-gz">{_gzip_b64(plotly_js)}</script>'


def page(title: str, body: str, *, plotly_js: str | None, extra_head: str = "") -> str:
    """A complete HTML document around ``body`` (an HTML fragment, already escaped).

    ``plotly_js``: the plotly.js source to embed (compressed) for a self-contained
    file, or None to load it from ``/assets/plotly.min.js`` (the dashboard).
    ``extra_head``: trusted markup added to ``<head>`` (the caller escapes it).
    """
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{asset('surge.css')}</style>{extra_head}</head>\n"
        '<body><div id="surge-js-error" hidden></div>\n'
        f"{body}\n"
        f"{_plotly_tag(plotly_js)}\n"
        f"<script>{asset('surge.js')}</script>\n"
        "</body></html>\n"
    )
