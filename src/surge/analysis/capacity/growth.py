"""When does growing traffic reach capacity? Compound monthly growth.

load(m) = peak · (1 + g)^m, so capacity is reached after
m* = ln(capacity / peak) / ln(1 + g) months. A month is 365.25/12 days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from surge.api.errors import UsageError

DAYS_PER_MONTH = 365.25 / 12
MAX_TABLE_MONTHS = 120


@dataclass(frozen=True)
class Growth:
    """The projection. ``peak`` and ``capacity`` in req/s (capacity after headroom),
    ``growth`` per month (0.05 = 5 %), ``months_left`` (0 when already at or over
    capacity, inf when traffic does not grow), ``runs_out`` the date (None when
    never), ``table`` (month, projected req/s) up to the month capacity is passed."""

    peak: float
    capacity: float
    growth: float
    start: date
    months_left: float
    runs_out: date | None
    table: tuple[tuple[int, float], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "peak": self.peak, "capacity": self.capacity, "growth_per_month": self.growth,
            "start": self.start.isoformat(),
            "months_left": self.months_left if math.isfinite(self.months_left) else None,
            "runs_out": self.runs_out.isoformat() if self.runs_out else None,
            "table": [{"month": m, "load": round(v, 3)} for m, v in self.table],
        }


def project_growth(peak: float, capacity: float, growth: float, start: date) -> Growth:
    """Project ``peak`` (req/s today) growing by ``growth`` per month (compounding)
    against ``capacity`` (req/s, headroom already taken off), from ``start``."""
    if not (peak > 0 and math.isfinite(peak)):
        raise UsageError("--peak-load must be a rate > 0 req/s")
    if not (capacity > 0 and math.isfinite(capacity)):
        raise UsageError("the capacity must be a finite rate > 0 req/s (give --capacity)")
    if growth <= -1:
        raise UsageError("--growth must be above -100% per month")
    if peak >= capacity:
        months = 0.0
    elif growth <= 0:
        months = math.inf
    else:
        months = math.log(capacity / peak) / math.log1p(growth)
    runs_out = start + timedelta(days=months * DAYS_PER_MONTH) if math.isfinite(months) else None
    # A year of projection when capacity is never reached, else up to the month it is.
    last = min(MAX_TABLE_MONTHS, math.ceil(months)) if math.isfinite(months) else 12
    table = tuple((m, peak * (1.0 + growth) ** m) for m in range(0, last + 1))
    return Growth(peak, capacity, growth, start, months, runs_out, table)
