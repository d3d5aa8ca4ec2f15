"""Readers of the system-under-test files of a run directory.

``sut.jsonl`` (resource samples, one JSON object a line), ``profile.collapsed``
(py-spy stacks, ``frame;frame;frame count`` lines) and ``prometheus.json``
(query_range results over the run window). The formats are described in
docs/monitoring.md and docs/profiling.md. Every reader tolerates a missing file
and a truncated last line (a run killed while writing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUT_FILE = "sut.jsonl"
PROFILE_FILE = "profile.collapsed"
PROMETHEUS_FILE = "prometheus.json"
SUT_FORMAT_VERSION = 1  # 1: first version (t, dt, procs, sys)


def read_sut(run_dir: Path | str) -> list[dict[str, Any]]:
    """The resource samples of a run, in time order; ``[]`` when the run has none."""
    path = Path(run_dir) / SUT_FILE
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash (or damaged: read_run_dir says which)
            if isinstance(rec, dict) and isinstance(rec.get("t"), int | float):
                out.append(rec)
    return out


def parse_collapsed(text: str) -> dict[str, int]:
    """``frame;frame;frame count`` lines into {stack: samples}; malformed lines are skipped."""
    stacks: dict[str, int] = {}
    for line in text.splitlines():
        stack, sep, count = line.rstrip().rpartition(" ")
        if not sep or not stack or not count.isdigit():
            continue
        stacks[stack] = stacks.get(stack, 0) + int(count)
    return stacks


def read_profile(run_dir: Path | str) -> dict[str, int] | None:
    """The py-spy stacks of a run as {stack: samples}; None when the run was not profiled."""
    path = Path(run_dir) / PROFILE_FILE
    if not path.is_file():
        return None
    return parse_collapsed(path.read_text(encoding="utf-8", errors="replace"))


def read_prometheus(run_dir: Path | str) -> dict[str, Any] | None:
    """The Prometheus queries pulled after a run (see docs/monitoring.md); None when absent or unreadable."""
    path = Path(run_dir) / PROMETHEUS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
