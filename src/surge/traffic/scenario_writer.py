"""Write a :class:`~surge.traffic.workload.Workload` as a runnable, readable scenario file.

Two shapes, chosen by ``unit``:

- ``"request"`` (default): one iteration is one request drawn from the endpoint
  mix, and the arrival-rate stages follow the log's request rate, so a run
  reproduces the log's mix and rate curve.
- ``"session"``: one iteration is a user session: a number of requests drawn
  from the log's session lengths, with think times fitted to the log between
  them; the stages follow the rate at which sessions started.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from surge.api.errors import UsageError
from surge.traffic.workload import Workload, fmt_rate

MAX_MIX = 50  # endpoints written out; the rest are folded into the last ones' weights (by share)
UNITS = ("request", "session")


def _dur(seconds: float) -> str:
    """A duration literal for Options: whole seconds when possible ("90s"), else ms."""
    if abs(seconds - round(seconds)) < 1e-3:
        return f"{round(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _stages_code(start: float, stages: tuple[tuple[float, float], ...]) -> list[str]:
    lines = [f"    rate={max(start, 0.001):.4g},  # arrivals/s at the start", "    stages=["]
    for d, t in stages:
        lines.append(f"        ({_dur(d)!r}, {t:.4g}),")
    lines.append("    ],")
    return lines


def render_scenario(w: Workload, *, source: str, base_url: str | None = None, unit: str = "request",
                    out_name: str | None = None) -> str:
    """The text of a scenario file modelling ``w`` (read from ``source``; written as ``out_name``)."""
    if unit not in UNITS:
        raise UsageError(f"unknown --unit {unit!r}: use request or session")
    s = w.sessions
    when = datetime.fromtimestamp(w.first_time, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if math.isfinite(
        w.first_time) else "?"
    mix = w.endpoints[:MAX_MIX]
    folded = sum(e.share for e in w.endpoints[MAX_MIX:])
    out = [
        f'"""Workload model of {Path(source).name}, derived by `surge model`.',
        "",
        f"The log: {w.requests:,} requests over {w.duration_s:,.1f} s from {when}, "
        f"mean {fmt_rate(w.mean_rate)} req/s, peak {fmt_rate(w.peak_rate)} req/s.",
        f"{len(w.endpoints)} endpoint(s); {s.count:,} session(s) (client = cookie or IP + user agent, "
        f"{s.gap_s:.0f} s inactivity gap),",
        f"{s.mean_length:.2f} requests per session on average.",
        "",
        "One iteration is " + ("one request drawn from the endpoint mix; the arrival rate follows the"
                               " log's request rate." if unit == "request" else
                               "one session: requests drawn from the mix with think time between them;"
                               " the arrival rate follows the log's session starts."),
        "Edit freely: the weights, the URL lists and the stages are plain data.",
        "",
        f"    surge run {out_name or Path(source).stem + '_model.py'}" + ("" if base_url else " --base-url http://HOST:PORT"),
        '"""',
        "",
        "from surge import Options, exponential, lognormal, scenario, sleep" if unit == "session"
        else "from surge import Options, scenario",
        "",
        "options = Options(",
        f"    base_url={base_url!r},",
        '    model="ramping-arrival-rate",',
    ]
    if unit == "request":
        out += _stages_code(w.rate.start_rate, w.rate.stages)
    else:
        out += _stages_code(s.rate.start_rate, s.rate.stages)
        peak_sessions = max([s.rate.start_rate, *(t for _, t in s.rate.stages)] or [1.0])
        # Concurrent sessions ~ arrival rate x session duration (Little's law), with headroom.
        out.append(f"    max_vus={max(10, math.ceil(peak_sessions * max(s.p95_duration_s, 1.0) * 1.5))},"
                   "  # concurrent sessions (Little's law on the p95 session length, x1.5)")
    out += [")", "", "# The endpoint mix: (weight = share of requests in the log, method, name, URLs seen).",
            "# A request picks one of the URLs at random, so ids come from the log.", "MIX = ["]
    for e in mix:
        out.append(f"    ({e.share:.6f}, {e.method!r}, {e.template!r}, [")
        for ex in e.examples:
            out.append(f"        {ex!r},")
        out.append("    ]),")
    out.append("]")
    if folded > 0:
        out.append(f"# {len(w.endpoints) - MAX_MIX} rarer endpoint(s) ({folded:.2%} of requests) left out.")
    out += [
        "_TOTAL = sum(m[0] for m in MIX)",
        "",
        "",
        "def pick(rng):",
        '    """An endpoint of MIX, in proportion to its weight."""',
        "    x = rng.random() * _TOTAL",
        "    for entry in MIX:",
        "        x -= entry[0]",
        "        if x < 0:",
        "            return entry",
        "    return MIX[-1]",
        "",
        "",
        "async def one_request(client, vu):",
        "    _, method, name, urls = pick(vu.rng)",
        "    await client.request(method, vu.rng.choice(urls), name=name)",
        "",
    ]
    if unit == "request":
        out += ["", "@scenario", "async def request(client, vu):",
                '    """One request from the mix."""', "    await one_request(client, vu)", ""]
    else:
        out += [
            "",
            "# Requests per session: (length, share of sessions).",
            "SESSION_LENGTHS = [" + ", ".join(f"({k}, {v:.6f})" for k, v in s.lengths) + "]",
            f"# Think time between a session's requests, fitted to {s.think.n:,} gaps "
            f"(mean {s.think.mean:.3g} s; {s.think.kind}).",
            f"THINK = {s.think.as_code()}",
            "",
            "",
            "def session_length(rng):",
            "    x = rng.random()",
            "    for length, share in SESSION_LENGTHS:",
            "        x -= share",
            "        if x < 0:",
            "            return length",
            "    return SESSION_LENGTHS[-1][0] if SESSION_LENGTHS else 1",
            "",
            "",
            "@scenario",
            "async def session(client, vu):",
            '    """One user session: a few requests from the mix, thinking in between."""',
            "    for i in range(session_length(vu.rng)):",
            "        if i:",
            "            await sleep(THINK, vu.rng)",
            "        await one_request(client, vu)",
            "",
        ]
    return "\n".join(out)


def write_scenario(path: Path, text: str) -> None:
    """Write ``text`` to ``path``; raises UsageError when it cannot."""
    try:
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write scenario file {path}: {exc.strerror}; choose another -o path") from None


__all__ = ["UNITS", "render_scenario", "write_scenario"]
