"""What ``--arrival`` and ``--shape`` say, parsed and checked (no schedule math here).

Open models start iterations along a rate curve. Two independent choices shape it:

- the **arrival process** (``--arrival``): how arrivals are spread around the
  curve: ``uniform`` (evenly spaced), ``poisson`` (exponential gaps) or
  ``gamma:cv=C`` (gamma-distributed gaps with coefficient of variation ``C``:
  bursts for C > 1, steadier than Poisson for C < 1, Poisson at C = 1);
- the **rate shape** (``--shape``): how the target rate moves over time:
  ``sine:period=60s,amplitude=0.5``, ``diurnal:amplitude=0.8[,day=10m]``,
  ``step:every=30s,by=50`` or ``trace:FILE.csv`` (rows ``t_s,rate``).

The engine turns these into arrival times (``engine/models/shapes.py``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from surge.api.errors import UsageError
from surge.api.limits import MAX_DURATION_S, MAX_RATE

ARRIVAL_KINDS = ("uniform", "poisson", "gamma")
SHAPE_KINDS = ("sine", "diurnal", "step", "trace")
MAX_TRACE_ROWS = 100_000

_SHAPE_HELP = (
    "use sine:period=60s,amplitude=0.5, diurnal:amplitude=0.8, step:every=30s,by=50 or trace:FILE.csv"
)


@dataclass(frozen=True)
class Arrival:
    """An arrival process: ``kind`` in :data:`ARRIVAL_KINDS`; ``cv`` (gap coefficient
    of variation) for gamma only."""

    kind: str = "uniform"
    cv: float | None = None


def parse_arrival(text: str) -> Arrival:
    """Parse ``uniform``, ``poisson`` or ``gamma:cv=2`` (cv > 0; cv = 1 is Poisson)."""
    kind, _, rest = str(text).strip().lower().partition(":")
    if kind in ("uniform", "poisson") and not rest:
        return Arrival(kind)
    if kind != "gamma":
        raise UsageError(f"unknown arrival {text!r}: use uniform, poisson or gamma:cv=2")
    params = _params(rest, f"--arrival {text!r}", allowed=("cv",), example="gamma:cv=2")
    cv = _positive(params.get("cv"), "cv", f"--arrival {text!r}", example="gamma:cv=2")
    return Arrival("gamma", cv)


@dataclass(frozen=True)
class Shape:
    """A rate shape applied on top of ``--rate``/``--stages`` (or, for a trace, instead of them).

    Attributes:
        kind: one of :data:`SHAPE_KINDS`.
        source: the text it was parsed from (shown in metadata and messages).
        period: s, for ``sine`` and ``diurnal`` (a diurnal "day"; None: the run's length).
        amplitude: 0..1, relative swing around the mean rate (sine, diurnal).
        every: s between steps (step).
        by: iterations/s added at each step (step; may be negative).
        points: ``(t_s, rate)`` rows of a trace, t ascending from its first row.
    """

    kind: str
    source: str
    period: float | None = None
    amplitude: float = 0.0
    every: float | None = None
    by: float = 0.0
    points: tuple[tuple[float, float], ...] = ()


def parse_shape(text: str) -> Shape:
    """Parse a ``--shape`` value; a trace file is read (and checked) here."""
    from surge.api.options import parse_duration  # options imports this module

    raw = str(text).strip()
    kind, sep, rest = raw.partition(":")
    kind = kind.lower()
    where = f"--shape {raw!r}"
    if kind not in SHAPE_KINDS:
        raise UsageError(f"unknown shape {kind!r} in {where}: {_SHAPE_HELP}")
    if kind == "trace":
        if not rest.strip():
            raise UsageError(f"{where} names no file: write trace:FILE.csv (rows t_s,rate)")
        return Shape("trace", raw, points=read_trace(Path(rest.strip())))
    if kind == "sine":
        p = _params(rest, where, allowed=("period", "amplitude"), example="sine:period=60s,amplitude=0.5")
        if "period" not in p:
            raise UsageError(f"{where} needs period=DURATION, e.g. sine:period=60s,amplitude=0.5")
        period = parse_duration(p["period"], what=f"period in {where}")
        if period <= 0:
            raise UsageError(f"period in {where} must be > 0, e.g. period=60s")
        return Shape("sine", raw, period=period, amplitude=_amplitude(p, where, 0.5))
    if kind == "diurnal":
        p = _params(rest, where, allowed=("day", "amplitude"), example="diurnal:amplitude=0.8,day=10m")
        day = parse_duration(p["day"], what=f"day in {where}") if "day" in p else None
        if day is not None and day <= 0:
            raise UsageError(f"day in {where} must be > 0, e.g. day=10m")
        return Shape("diurnal", raw, period=day, amplitude=_amplitude(p, where, 0.8))
    p = _params(rest, where, allowed=("every", "by"), example="step:every=30s,by=50")
    if "every" not in p or "by" not in p:
        raise UsageError(f"{where} needs every=DURATION and by=RATE, e.g. step:every=30s,by=50")
    every = parse_duration(p["every"], what=f"every in {where}")
    if every <= 0:
        raise UsageError(f"every in {where} must be > 0, e.g. every=30s")
    return Shape("step", raw, every=every, by=_number(p["by"], "by", where, "step:every=30s,by=50"))


def read_trace(path: Path) -> tuple[tuple[float, float], ...]:
    """Read a rate trace: CSV with a header naming ``t_s`` and ``rate`` (other columns ignored).

    Times are s from the start (ascending, the first is where the run starts);
    rates are iterations/s (>= 0), interpolated linearly between rows.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: a BOM (Excel's CSV) is not part of 't_s'
            reader = csv.DictReader(f)
            cols = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in ("t_s", "rate") if c not in cols]
            if missing:
                raise UsageError(
                    f"trace {path} lacks column(s) {', '.join(missing)}: its first line must name t_s and rate, "
                    f"e.g. 't_s,rate' (found {', '.join(cols) or 'nothing'})"
                )
            rows = []
            for line_no, row in enumerate(reader, start=2):
                row = {(k or "").strip(): v for k, v in row.items()}
                t = _number(row.get("t_s"), "t_s", f"trace {path} line {line_no}", "0,100")
                r = _number(row.get("rate"), "rate", f"trace {path} line {line_no}", "0,100")
                if r < 0:
                    raise UsageError(f"trace {path} line {line_no}: rate {r:g} is negative; rates are >= 0")
                if r > MAX_RATE:
                    raise UsageError(f"trace {path} line {line_no}: rate {r:g} is above {MAX_RATE:,.0f} per second")
                if rows and t <= rows[-1][0]:
                    raise UsageError(f"trace {path} line {line_no}: t_s {t:g} is not after {rows[-1][0]:g}; "
                                     "sort the rows by time")
                rows.append((t, r))
                if len(rows) > MAX_TRACE_ROWS:
                    raise UsageError(f"trace {path} has more than {MAX_TRACE_ROWS} rows: resample it coarser")
    except OSError as exc:
        raise UsageError(f"cannot read trace {path}: {exc.strerror}; check the path") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"trace {path} is not a readable CSV ({exc}): write rows t_s,rate") from None
    if len(rows) < 2:
        raise UsageError(f"trace {path} needs at least two rows t_s,rate (a start and an end)")
    if not any(r > 0 for _, r in rows):
        raise UsageError(f"trace {path} has a rate of 0 in every row: it would send nothing; "
                         "check the rate column (requests per second)")
    span = rows[-1][0] - rows[0][0]
    if span > MAX_DURATION_S:
        raise UsageError(f"trace {path} spans {span:g} s, longer than {MAX_DURATION_S / 86_400:.0f} days; "
                         "split a longer soak into several runs (are its times in s?)")
    return tuple(rows)


# --------------------------------------------------------------------------- helpers


def _params(text: str, where: str, *, allowed: tuple[str, ...], example: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise UsageError(f"invalid {part!r} in {where}: write KEY=VALUE, e.g. {example}")
        if key not in allowed:
            raise UsageError(f"unknown parameter {key!r} in {where}: use {', '.join(allowed)}, e.g. {example}")
        out[key] = value.strip()
    return out


def _number(value: str | None, name: str, where: str, example: str) -> float:
    try:
        x = float(value) if value is not None else math.nan
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise UsageError(f"invalid {name} {value!r} in {where}: must be a number, e.g. {example}")
    return x


def _positive(value: str | None, name: str, where: str, example: str) -> float:
    if value is None:
        raise UsageError(f"{where} needs {name}=NUMBER, e.g. {example}")
    x = _number(value, name, where, example)
    if x <= 0:
        raise UsageError(f"invalid {name} {value!r} in {where}: must be > 0, e.g. {example}")
    return x


def _amplitude(p: dict[str, str], where: str, default: float) -> float:
    if "amplitude" not in p:
        return default
    a = _number(p["amplitude"], "amplitude", where, "amplitude=0.5")
    if not 0 <= a <= 1:
        raise UsageError(f"amplitude {p['amplitude']} in {where} must be between 0 and 1 (a share of the mean rate)")
    return a
