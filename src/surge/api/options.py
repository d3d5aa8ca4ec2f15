"""Load-shape options: durations, stages and the frozen :class:`Options` a run uses.

A scenario module may define ``options = Options(...)`` (or a plain dict with the
same keys); CLI flags override it field by field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from surge.api.errors import UsageError
from surge.api.limits import MAX_DURATION_S, MAX_RATE, MAX_VUS
from surge.api.shapes import Shape, parse_arrival, parse_shape

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)")
_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

MODELS = (
    "constant-vus",
    "ramping-vus",
    "constant-arrival-rate",
    "ramping-arrival-rate",
    "per-vu-iterations",
    "shared-iterations",
)
ARRIVALS = ("uniform", "poisson", "gamma:cv=C")  # see surge.api.shapes
OPEN_MODELS = ("constant-arrival-rate", "ramping-arrival-rate")
# Open-model arrivals are grouped into slots of this length (s): every arrival due
# within a slot is sent at the slot's start, which is also its intended start, so
# the grouping adds no schedule lag. One wake-up per slot instead of one per
# arrival: on a VM each wake-up of an idle core is expensive, and at 5,000 req/s
# against nginx the generator's CPU per request was, by slot (bench/peers.py,
# interleaved): 0: 54 us (hit) / 72 (run); 1 ms: 19 / 36; 2 ms: 12.5 / 24.
# The price is burstiness: at 5,000 req/s, 10 requests leave together every 2 ms
# (latency p50 against nginx 0.15 ms at slot 0, 0.22 at 2 ms). 0 = exact times.
DEFAULT_ARRIVAL_SLOT_S = 0.002
MIN_ARRIVAL_SLOT_S = 0.0001
MAX_ARRIVAL_SLOT_S = 0.1
NS_PER_S = 1_000_000_000


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """Parse ``"30s"``, ``"1m30s"``, ``"250ms"``, ``"2h"`` or a bare number of seconds into s."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):  # True is an int: not a duration
        raise UsageError(f"invalid {what} {text!r}: give a number with a unit, e.g. 30s, 1m30s, 250ms, 2h")
    if isinstance(text, int | float):
        value = float(text)
    else:
        s = str(text).strip().lower()
        try:
            value = float(s)
        except ValueError:
            pos, value = 0, 0.0
            for m in _DURATION_RE.finditer(s):
                if m.start() != pos:
                    break
                value += float(m.group(1)) * _UNIT_S[m.group(2)]
                pos = m.end()
            if pos != len(s) or not s:
                raise UsageError(
                    f"invalid {what} {text!r}: use a number with a unit, e.g. 30s, 1m30s, 250ms, 2h"
                ) from None
    if not math.isfinite(value):
        raise UsageError(f"invalid {what} {text!r}: must be a finite number of seconds, e.g. 30s")
    if value < 0:
        raise UsageError(f"invalid {what} {text!r}: must not be negative")
    if value > MAX_DURATION_S:
        raise UsageError(f"invalid {what} {text!r}: longer than {MAX_DURATION_S / 86_400:.0f} days; "
                         "split a longer soak into several runs")
    return value


@dataclass(frozen=True)
class Stage:
    """Ramp linearly to ``target`` (VUs, or iterations/s for arrival-rate models) over ``duration`` s."""

    duration: float
    target: float


def parse_stages(text: str) -> tuple[Stage, ...]:
    """Parse ``"30s:100,1m:100,10s:0"`` into stages (duration:target, comma separated)."""
    stages = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        dur, sep, target = part.partition(":")
        if not sep:
            raise UsageError(
                f"invalid stage {part!r} in --stages {text!r}: write DURATION:TARGET, e.g. 30s:100"
            )
        try:
            tgt = float(target)
            if not math.isfinite(tgt):
                raise ValueError
        except ValueError:
            raise UsageError(
                f"invalid stage target {target!r} in --stages {text!r}: must be a number"
            ) from None
        if tgt < 0:
            raise UsageError(f"invalid stage target {target!r} in --stages {text!r}: must be >= 0")
        if tgt > MAX_RATE:
            raise UsageError(f"invalid stage target {target!r} in --stages {text!r}: above {MAX_RATE:,.0f}")
        stages.append(Stage(parse_duration(dur, what=f"stage duration in {text!r}"), tgt))
    if not stages:
        raise UsageError(f"invalid --stages {text!r}: give at least one DURATION:TARGET")
    return tuple(stages)


@dataclass(frozen=True)
class Options:
    """How much load, in what shape, and what must hold.

    Attributes (all optional; ``None`` means "not set here"):
        model: one of :data:`MODELS`; inferred from the other fields when None.
        base_url: prefix for relative request URLs, e.g. ``"http://127.0.0.1:8000"``.
        vus: concurrent virtual users (closed models) or pre-allocated VUs (open).
        rate: iterations started per second (open models).
        duration: run length in s (or a string such as ``"1m"``).
        stages: ramp stages; targets are VUs, or iterations/s with ``rate``-style models.
        iterations: total iterations (shared) or per VU (per-vu-iterations).
        max_vus: cap on VUs an open model may allocate; iterations that find no free VU
            are dropped and counted.
        arrival: ``"uniform"``, ``"poisson"`` or ``"gamma:cv=2"`` inter-arrival times (open models).
        arrival_slot: s; open-model arrivals due within one slot start together at the
            slot's start (default 2 ms; 0 = each at its own time, at more CPU per request).
        shape: a rate shape over the open model's rate: ``"sine:period=60s,amplitude=0.5"``,
            ``"diurnal:amplitude=0.8"``, ``"step:every=30s,by=50"`` or ``"trace:FILE.csv"``
            (see :mod:`surge.api.shapes`); a trace needs no ``rate``.
        pacing: s from one iteration's start to the next on each VU (closed models); an
            iteration that takes longer starts the next at once and fails the ``pacing`` check.
        graceful_stop: s that in-flight iterations may take to finish at the end.
        graceful_ramp_down: s that iterations of VUs being removed may take to finish.
        thresholds: expressions such as ``"p95<300ms"``.
        abort_on_fail: stop the run early when a threshold fails during it.
        max_duration: hard bound in s for iteration-count models (default 10 min).
        cookies: ``False`` turns off the per-VU cookie jar (on by default).
        setup_timeout: s ``setup()`` may take before the run is refused (default 60, as k6).
        teardown_timeout: s ``teardown()`` may take before it is abandoned with a warning
            (default 60); the run's results are kept either way.
    """

    model: str | None = None
    base_url: str | None = None
    vus: int | None = None
    rate: float | None = None
    duration: float | None = None
    stages: tuple[Stage, ...] | None = None
    iterations: int | None = None
    max_vus: int | None = None
    arrival: str | None = None
    arrival_slot: float | None = None
    shape: Shape | str | None = None
    pacing: float | None = None
    graceful_stop: float | None = None
    graceful_ramp_down: float | None = None
    thresholds: tuple[str, ...] = ()
    abort_on_fail: bool | None = None
    max_duration: float | None = None
    cookies: bool | None = None
    setup_timeout: float | None = None
    teardown_timeout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, source: str = "options") -> Options:
        """Build from a dict (scenario ``options = {...}``), validating keys and units."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(repr(k) if not isinstance(k, str) else k for k in set(data) - names)
        if unknown:
            raise UsageError(
                f"unknown key(s) {', '.join(unknown)} in {source}: allowed are {', '.join(sorted(names - {'extra'}))}"
            )
        return cls(**data).normalised(source=source)

    def normalised(self, *, source: str = "options") -> Options:
        """Return a copy with durations and stages parsed and values checked."""
        kw: dict[str, Any] = {}
        if isinstance(self.shape, str):
            kw["shape"] = parse_shape(self.shape)
        for key in ("duration", "graceful_stop", "graceful_ramp_down", "max_duration", "pacing",
                    "setup_timeout", "teardown_timeout", "arrival_slot"):
            val = getattr(self, key)
            if val is not None:
                kw[key] = parse_duration(val, what=f"{key} in {source}")
        if self.stages is not None and not (
            isinstance(self.stages, tuple) and all(isinstance(s, Stage) for s in self.stages)
        ):
            st = self.stages
            if isinstance(st, str):
                kw["stages"] = parse_stages(st)
            else:
                try:
                    kw["stages"] = tuple(
                        s if isinstance(s, Stage)
                        else Stage(parse_duration(s["duration"]), float(s["target"]))
                        if isinstance(s, dict)
                        else Stage(parse_duration(s[0]), float(s[1]))
                        for s in st
                    )
                except (KeyError, IndexError, TypeError, ValueError):
                    raise UsageError(
                        f"invalid stages in {source}: use \"30s:100,1m:0\" or a list of (duration, target)"
                    ) from None
        if isinstance(self.thresholds, str):
            kw["thresholds"] = (self.thresholds,)
        elif not isinstance(self.thresholds, tuple):
            if not isinstance(self.thresholds, list) or not all(isinstance(t, str) for t in self.thresholds):
                raise UsageError(f"invalid thresholds {self.thresholds!r} in {source}: give a list of "
                                 "expressions, e.g. [\"p95<300ms\", \"error_rate<1%\"]")
            kw["thresholds"] = tuple(self.thresholds)
        out = dataclasses.replace(self, **kw)
        out._validate(source)
        return out

    def _validate(self, source: str) -> None:
        if self.model is not None and self.model not in MODELS:
            raise UsageError(f"unknown model {self.model!r} in {source}: choose one of {', '.join(MODELS)}")
        if self.arrival is not None:
            parse_arrival(self.arrival)
        if self.arrival_slot is not None:
            slot_ns = self.slot_ns()
            # slots tile each second exactly, so no arrival moves into another second; under
            # 100 us a slot would keep the compiled loop polling all but continuously
            if slot_ns and (not MIN_ARRIVAL_SLOT_S * NS_PER_S <= slot_ns <= MAX_ARRIVAL_SLOT_S * NS_PER_S
                            or NS_PER_S % slot_ns):
                given = f"{self.arrival_slot * 1000:.9g}ms"
                what = f"--arrival-slot {given}" if source == "command line" else f"arrival_slot {given} in {source}"
                raise UsageError(
                    f"invalid {what}: give a slot that divides 1 s evenly, "
                    f"from {MIN_ARRIVAL_SLOT_S * 1e6:g}us to {MAX_ARRIVAL_SLOT_S * 1000:g}ms, e.g. 250us, 1ms, "
                    "2ms (the default), 10ms; 0 sends each arrival at its own time")
        if self.base_url is not None and not isinstance(self.base_url, str):
            raise UsageError(f"invalid base_url {self.base_url!r} in {source}: give a URL string, "
                             "e.g. \"http://127.0.0.1:8000\"")
        for key in ("vus", "iterations", "max_vus"):
            val = getattr(self, key)
            if val is not None and (not isinstance(val, int) or isinstance(val, bool) or val < 0):
                raise UsageError(f"invalid {key} {val!r} in {source}: must be a whole number >= 0")
            if key != "iterations" and val is not None and val > MAX_VUS:
                raise UsageError(f"invalid {key} {val!r} in {source}: above {MAX_VUS:,} VUs per run")
        for key in ("cookies", "abort_on_fail"):
            val = getattr(self, key)
            if val is not None and not isinstance(val, bool):
                raise UsageError(f"invalid {key} {val!r} in {source}: use True or False")
        if self.rate is not None and (not isinstance(self.rate, int | float) or isinstance(self.rate, bool)):
            raise UsageError(f"invalid rate {self.rate!r} in {source}: give a number of iterations per second, "
                             "e.g. 50")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise UsageError(f"invalid rate {self.rate!r} in {source}: must be > 0 (iterations per second)")
        if self.rate is not None and self.rate > MAX_RATE:
            raise UsageError(f"invalid rate {self.rate:g} in {source}: above {MAX_RATE:,.0f} per second")

    def check_timing(self) -> None:
        """Pacing and rate shapes against the resolved model (checked once all sources are merged)."""
        open_model = self.resolved_model() in OPEN_MODELS
        if self.duration is not None and self.duration <= 0:
            raise UsageError("the duration must be > 0: give e.g. -d 30s (or leave it out)")
        if self.max_duration is not None and self.max_duration <= 0:
            raise UsageError("--max-duration must be > 0: give e.g. --max-duration 10m (or leave it out)")
        if self.stages and sum(st.duration for st in self.stages) <= 0:
            raise UsageError("the stages last 0 s: give at least one stage a duration, e.g. --stages 30s:100")
        if not open_model and self.vus == 0 and not self.stages:
            raise UsageError("--vus 0 runs nothing in a closed model: give --vus 1 or more (or --rate for an open model)")
        if self.pacing is not None and open_model:
            raise UsageError("pacing applies to closed models (VUs): an open model already decides when "
                             "iterations start; drop --pacing or use --vus")
        if self.shape is not None and not open_model:
            raise UsageError("--shape needs an open model: add --rate N (iterations/s), or use a trace:FILE.csv shape")

    def merged(self, override: Options) -> Options:
        """Fields set in ``override`` (not None / non-empty) win over ours."""
        kw = {
            f.name: getattr(override, f.name)
            for f in dataclasses.fields(self)
            if f.name != "extra" and getattr(override, f.name) not in (None, ())
        }
        return dataclasses.replace(self, **kw)

    def slot_ns(self) -> int:
        """The open-model arrival slot in ns (``arrival_slot``, default 2 ms; 0 = exact times)."""
        slot = self.arrival_slot if self.arrival_slot is not None else DEFAULT_ARRIVAL_SLOT_S
        return round(slot * 1e9)

    def resolved_model(self) -> str:
        """The workload model these options describe (explicit ``model`` wins).

        Inference, like k6's shortcuts: rate + stages -> ramping-arrival-rate;
        rate -> constant-arrival-rate; stages -> ramping-vus; iterations ->
        shared-iterations; otherwise constant-vus.
        """
        if self.model:
            return self.model
        if self.rate is not None or (isinstance(self.shape, Shape) and self.shape.kind == "trace"):
            return "ramping-arrival-rate" if self.stages else "constant-arrival-rate"
        if self.stages:
            return "ramping-vus"
        if self.iterations is not None:
            return "shared-iterations"
        return "constant-vus"
