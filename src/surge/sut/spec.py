"""What to watch on the system under test: the parsed ``--monitor``, ``--launch``,
``--py-spy`` and ``--prometheus`` flags, and the profiling window rule."""

from __future__ import annotations

from dataclasses import dataclass

from surge.api.errors import UsageError

LAUNCHED = "launched"  # the label of the --launch'ed process, and the --py-spy word for it


@dataclass(frozen=True)
class MonitorSpec:
    """Monitoring and profiling of the SUT for one run.

    ``targets``: PIDs or process names (a name matches a process's name or any
    word of its command line). ``launch``: a command started before the load and
    stopped after it; ``wait_url`` is the URL whose host:port must accept TCP
    connections before the load starts (within ``launch_timeout`` s).
    ``py_spy``: a PID or ``"launched"``. ``queries``: (name, PromQL) pairs pulled
    from ``prometheus_url`` after the run. ``interval``: s between samples.
    """

    targets: tuple[str, ...] = ()
    launch: str | None = None
    wait_url: str | None = None
    launch_timeout: float = 30.0
    py_spy: str | None = None
    prometheus_url: str | None = None
    queries: tuple[tuple[str, str], ...] = ()
    interval: float = 1.0

    def __post_init__(self) -> None:
        if self.py_spy is not None and self.py_spy != LAUNCHED and not self.py_spy.isdigit():
            raise UsageError(f"--py-spy {self.py_spy!r}: give a PID, or 'launched' for the --launch'ed process")
        if self.py_spy == LAUNCHED and not self.launch:
            raise UsageError("--py-spy launched needs --launch CMD (or give the PID to profile)")
        if self.queries and not self.prometheus_url:
            raise UsageError("--query needs --prometheus URL (the Prometheus server to ask)")
        if self.prometheus_url and not self.queries:
            raise UsageError("--prometheus needs at least one --query NAME=PROMQL to pull")
        if self.prometheus_url and not self.prometheus_url.startswith(("http://", "https://")):
            raise UsageError(f"--prometheus {self.prometheus_url!r}: give an http(s) URL, e.g. http://127.0.0.1:9090")

    @property
    def active(self) -> bool:
        """Whether there is anything to do."""
        return bool(self.targets or self.launch or self.py_spy or self.prometheus_url)


def parse_queries(values: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``NAME=PROMQL`` strings (``--query``, repeatable) into (name, query) pairs."""
    out = []
    for v in values:
        name, sep, query = v.partition("=")
        if not sep or not name.strip() or not query.strip():
            raise UsageError(f"--query {v!r}: write NAME=PROMQL, e.g. --query 'cpu=rate(process_cpu_seconds_total[1m])'")
        out.append((name.strip(), query.strip()))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise UsageError(f"--query names must be unique; got {', '.join(names)}")
    return tuple(out)


def steady_window(planned_s: float, first_stage_s: float | None = None) -> tuple[float, float]:
    """The part of a run that py-spy records, as (start, end) in s since the run's start.

    Starts after the first stage when the run has several stages (the ramp-up),
    otherwise after the first 10 % of the planned duration; ends 5 % of the
    planned duration (at least 0.5 s) before its end, so the ramp-down and the
    in-flight tail are left out. At least 1 s long when the run allows it.
    """
    planned = max(float(planned_s), 0.0)
    start = first_stage_s if first_stage_s is not None and first_stage_s < planned else 0.1 * planned
    end = planned - max(0.05 * planned, 0.5)
    if end - start < 1.0:  # a very short run: take what there is
        start, end = min(start, max(planned - 1.0, 0.0)), max(planned, start + 1.0)
    return round(start, 3), round(end, 3)
