"""The public face and the layer rules of DESIGN.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import surge

SRC = Path(__file__).resolve().parent.parent / "src" / "surge"

# layer -> surge packages it must not import (dependencies point down only)
FORBIDDEN = {
    "api": ("surge.engine", "surge.metrics", "surge.results", "surge.analysis", "surge.cli", "surge.session"),
    "metrics": ("surge.api", "surge.engine", "surge.results", "surge.analysis", "surge.cli", "surge.session"),
    "engine": ("surge.results", "surge.analysis", "surge.cli", "surge.session", "surge.demo"),
    "results": ("surge.engine", "surge.analysis", "surge.cli", "surge.session"),
    "analysis": ("surge.engine", "surge.cli", "surge.session", "surge.report", "surge.web", "surge.sut"),
    # traffic: log/HAR parsing and workload modelling; input data, not load generation
    "traffic": ("surge.engine", "surge.results", "surge.analysis", "surge.cli", "surge.session",
                "surge.report", "surge.web", "surge.sut"),
    # sut: samples and profiles the system under test; knows nothing of load or presentation
    "sut": ("surge.engine", "surge.analysis", "surge.cli", "surge.session", "surge.report", "surge.web"),
    "report": ("surge.engine", "surge.cli", "surge.session", "surge.web"),
    "web": ("surge.engine", "surge.cli"),
}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_public_names():
    assert sorted(surge.__all__) == sorted([
        "VU", "ErrorKind", "HTTPStatusError", "Options", "Response", "RunError", "Stage", "SurgeError",
        "UsageError", "__version__", "check", "constant", "exponential", "lognormal", "normal", "scenario",
        "sleep", "uniform", "Feeder", "FeederExhausted", "ExtractionError", "extract", "fake",
        "pace",
    ])
    for name in surge.__all__:
        assert hasattr(surge, name), name


def test_layers_point_down_only():
    bad = []
    for layer, forbidden in FORBIDDEN.items():
        if not (SRC / layer).is_dir():
            continue
        for f in (SRC / layer).rglob("*.py"):
            for mod in _imports(f):
                if mod.startswith(forbidden):
                    bad.append(f"{f.relative_to(SRC)} imports {mod}")
    assert not bad, bad


def test_importing_surge_has_no_side_effects():
    # No event loop policy, signal handler or logging set up at import time.
    import asyncio
    import signal

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert type(asyncio.get_event_loop_policy()).__module__.startswith("asyncio")
