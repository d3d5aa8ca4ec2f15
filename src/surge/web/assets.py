"""The only static file the dashboard serves: plotly.js, from the installed plotly package.

Nothing is read from a path taken from the URL: the route is fixed, the bytes
come from ``plotly.offline.get_plotlyjs()``. They are built (and gzipped) once,
on first use, and served with a validator and a day of caching, so a browser
downloads the 4-5 MB once.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

CACHE_SECONDS = 86400


@dataclass(frozen=True)
class Asset:
    """A file held in memory: its bytes, their gzip, an ETag."""

    body: bytes
    gzipped: bytes
    etag: str
    media_type: str


class PlotlyAsset:
    """plotly.min.js, built lazily and thread-safely (routes run in a thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asset: Asset | None = None

    def get(self) -> Asset:
        with self._lock:
            if self._asset is None:
                from plotly.offline import get_plotlyjs

                body = get_plotlyjs().encode()
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                self._asset = Asset(body, gzip.compress(body, 6, mtime=0), etag,
                                    "text/javascript; charset=utf-8")
            return self._asset

    def response(self, request: Request) -> Response:
        """200 with the script (gzip when accepted), or 304 when the browser's copy is current."""
        a = self.get()
        headers = {"cache-control": f"public, max-age={CACHE_SECONDS}", "etag": a.etag, "vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == a.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(a.gzipped, media_type=a.media_type, headers={**headers, "content-encoding": "gzip"})
        return Response(a.body, media_type=a.media_type, headers=headers)
