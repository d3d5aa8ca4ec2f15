"""The flags of `surge run` that watch the system under test: --monitor, --launch,
--py-spy, --prometheus, --query (docs/monitoring.md, docs/profiling.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from surge.sut.spec import MonitorSpec, parse_queries


def sut_options(f: Callable) -> Callable:
    """Add the SUT monitoring flags to a command."""
    opts = [
        click.option("--monitor", "monitor_targets", multiple=True, metavar="PID|NAME",
                     help="Sample this SUT process and its children every second (CPU, RSS, threads, fds, IO, "
                          "context switches) into sut.jsonl; a NAME matches process names and command-line "
                          "words (e.g. uvicorn). Repeatable."),
        click.option("--launch", metavar="CMD",
                     help="Start the SUT with CMD before the load, wait (30 s max) until the base URL accepts "
                          "connections, monitor it, and stop it after the run."),
        click.option("--py-spy", "py_spy", metavar="PID|launched",
                     help="Profile this Python process (and its children) with py-spy over the steady state; "
                          "stacks go to profile.collapsed (`surge profile show RUN`)."),
        click.option("--prometheus", metavar="URL",
                     help="After the run, pull the --query series over the run window from this Prometheus "
                          "into prometheus.json."),
        click.option("--query", "prom_queries", multiple=True, metavar="NAME=PROMQL",
                     help="A PromQL range query for --prometheus, repeatable, e.g. "
                          "'cpu=rate(process_cpu_seconds_total[30s])'."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def monitor_spec(*, monitor_targets: tuple[str, ...], launch: str | None, py_spy: str | None,
                 prometheus: str | None, prom_queries: tuple[str, ...], base_url: str | None) -> Any:
    """The MonitorSpec of the flags, or None when none was given (UsageError on a bad value)."""
    spec = MonitorSpec(targets=tuple(monitor_targets), launch=launch, wait_url=base_url, py_spy=py_spy,
                       prometheus_url=prometheus, queries=parse_queries(prom_queries))
    return spec if spec.active else None
