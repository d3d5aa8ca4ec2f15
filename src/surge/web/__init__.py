"""The dashboard: a small ASGI app (Starlette, served by uvicorn) over the run store, plus the live view.

Presentation only: it reads the store, the report's views and the analysis
results; it never measures or computes statistics of its own. See docs/dashboard.md.
"""

from surge.web.app import create_app

__all__ = ["create_app"]
