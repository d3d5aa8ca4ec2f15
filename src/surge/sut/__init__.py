"""Monitoring and profiling of the system under test (the server surge loads).

Samples the SUT's processes and the machine once a second (``sut.jsonl``),
records py-spy profiles over the steady state (``profile.collapsed``), pulls
Prometheus queries over the run window (``prometheus.json``), and can launch
the SUT itself. Knows nothing of the engine: the session wraps ``execute()``
in a :class:`SutMonitor`. See docs/monitoring.md and docs/profiling.md.
"""

from surge.sut.monitor import SutMonitor
from surge.sut.spec import LAUNCHED, MonitorSpec, parse_queries, steady_window
from surge.sut.summary import sut_summary

__all__ = ["LAUNCHED", "MonitorSpec", "SutMonitor", "parse_queries", "steady_window", "sut_summary"]
