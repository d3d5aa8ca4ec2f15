"""Test-type presets (``surge run --profile NAME --target T``) compiled to :class:`Options`.

A preset is a stage shape in fractions of the run's length and of the target,
so ``--duration`` stretches it and ``--target`` scales it. The target says what
it counts: ``200rps`` (iterations/s: an open model, ramping-arrival-rate) or
``50vus`` (virtual users: a closed model, ramping-vus). A bare number is refused,
because the two mean very different tests. The table is in docs/presets.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from surge.api.errors import UsageError
from surge.api.options import Options, Stage

_TARGET_RE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(rps|/s|vus?)", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """What a preset ramps to: ``kind`` ``"rate"`` (iterations/s) or ``"vus"``; ``value`` > 0."""

    kind: str
    value: float

    def __str__(self) -> str:
        return f"{self.value:g}{'rps' if self.kind == 'rate' else 'vus'}"


def parse_target(text: str) -> Target:
    """``"200rps"`` / ``"200/s"`` -> a rate; ``"50vus"`` / ``"50vu"`` -> VUs."""
    s = str(text).strip()
    m = _TARGET_RE.fullmatch(s)
    if m is None:
        hint = ""
        try:
            n = float(s)
            hint = f" (for {n:g}: {n:g}rps or {n:g}vus)"
        except ValueError:
            pass
        raise UsageError(
            f"invalid --target {text!r}: say what it counts{hint}: e.g. 200rps for an arrival rate "
            "(open model) or 50vus for virtual users (closed model)"
        )
    value = float(m.group(1))
    kind = "rate" if m.group(2).lower() in ("rps", "/s") else "vus"
    if value <= 0 or (kind == "vus" and not value.is_integer()):
        raise UsageError(f"invalid --target {text!r}: must be > 0 ({'a whole number of VUs' if kind == 'vus' else 'iterations/s'})")
    return Target(kind, value)


@dataclass(frozen=True)
class Preset:
    """A named test type.

    Attributes:
        name: the ``--profile`` value.
        summary: one line for ``--help`` and the docs.
        duration: default run length in s (``--duration`` overrides).
        stages: ``(fraction of the duration, fraction of the target)`` pairs, each a
            linear ramp from where the previous ended (0 at the start); a 0 fraction
            of the duration is a jump.
        needs_target: whether ``--target`` is required.
        rate_only: the preset ramps an arrival rate (``--target`` must be a rate).
    """

    name: str
    summary: str
    duration: float
    stages: tuple[tuple[float, float], ...]
    needs_target: bool = True
    rate_only: bool = False


SPIKE_FACTOR = 5.0

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("smoke", "1 VU (or --target up to 2vus) for 30 s: does the scenario work at all?", 30.0, (),
               needs_target=False),
        Preset("load", "ramp to the target over 10 %, hold 80 %, ramp down 10 % (default 10 min)", 600.0,
               ((0.1, 1.0), (0.8, 1.0), (0.1, 0.0))),
        Preset("stress", "ramp to the target, hold, then steps to 150 % and 200 %, ramp down (default 20 min)",
               1200.0, ((0.1, 1.0), (0.15, 1.0), (0.05, 1.5), (0.2, 1.5), (0.05, 2.0), (0.3, 2.0), (0.15, 0.0))),
        Preset("spike", f"hold the target, jump to {SPIKE_FACTOR:g}x for 10 %, drop back and watch the recovery "
               "(default 10 min)", 600.0,
               ((0.1, 1.0), (0.2, 1.0), (0.0, SPIKE_FACTOR), (0.1, SPIKE_FACTOR), (0.0, 1.0), (0.5, 1.0), (0.1, 0.0))),
        Preset("soak", "ramp to the target over 5 %, hold 90 %, ramp down 5 % (default 1 h)", 3600.0,
               ((0.05, 1.0), (0.9, 1.0), (0.05, 0.0))),
        Preset("breakpoint", "ramp the arrival rate from 0 to the target (a ceiling) and stop at the first "
               "threshold failure (default 10 min)", 600.0, ((1.0, 1.0),), rate_only=True),
    )
}


def compile_preset(name: str, target: str | Target | None = None, duration: float | None = None) -> Options:
    """The :class:`Options` of preset ``name`` for ``target``, stretched to ``duration`` s.

    Pure: no file or clock. Options set elsewhere (flags) are merged over the result
    by the caller, so an explicit ``--stages`` or ``--model`` still wins.
    """
    preset = PRESETS.get(str(name).lower())
    if preset is None:
        raise UsageError(f"unknown profile {name!r}: choose one of {', '.join(PRESETS)} (or a PID for py-spy)")
    tgt = parse_target(target) if isinstance(target, str) else target
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise UsageError(f"invalid --duration for --profile {preset.name}: must be > 0, e.g. 5m")
    d = duration if duration is not None else preset.duration
    if preset.name == "smoke":
        vus = min(int(tgt.value), 2) if tgt is not None and tgt.kind == "vus" else 1
        return Options(model="constant-vus", vus=vus, duration=d)
    if tgt is None:
        unit = "200rps" if preset.rate_only else "200rps or --target 50vus"
        raise UsageError(f"--profile {preset.name} needs --target, e.g. --target {unit}")
    if preset.rate_only and tgt.kind != "rate":
        raise UsageError(f"--profile {preset.name} ramps an arrival rate: give --target as a rate, "
                         f"e.g. --target {tgt.value:g}rps")
    stages = tuple(Stage(frac_d * d, _level(frac_t * tgt.value, tgt.kind)) for frac_d, frac_t in preset.stages)
    if tgt.kind == "rate":
        return Options(model="ramping-arrival-rate", stages=stages,
                       abort_on_fail=True if preset.name == "breakpoint" else None)
    return Options(model="ramping-vus", stages=stages)


def _level(value: float, kind: str) -> float:
    """A stage target: rates as they are, VUs rounded (at least 1 when not 0)."""
    if kind == "rate" or value == 0:
        return value
    return float(max(1, round(value)))


def describe(name: str) -> str:
    """One line per preset, for ``--help``."""
    return PRESETS[name].summary
