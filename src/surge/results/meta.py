"""Run metadata: what ran, where, from which code."""

from __future__ import annotations

import dataclasses
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from surge.api.options import OPEN_MODELS


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def git_info(cwd: str | None = None) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the working directory's git repo, if any."""
    def run(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=3)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if not commit:
        return None
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "branch": run("rev-parse", "--abbrev-ref", "HEAD"), "dirty": bool(status)}


def host_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def open_schedule(model: str | None, options: dict[str, Any]) -> bool:
    """Whether a run of ``model`` ("hit", "replay" or a workload model) with ``options``
    (as :func:`options_dict` gives them) sends on an arrival schedule: an open model,
    ``hit --rate``/``--shape``, a replay."""
    if model == "hit":
        return "rate" in options or "shape" in options
    return model == "replay" or model in OPEN_MODELS


def options_dict(options) -> dict[str, Any]:
    d = dataclasses.asdict(options)
    d.pop("extra", None)
    return {k: v for k, v in d.items() if v not in (None, ())}
