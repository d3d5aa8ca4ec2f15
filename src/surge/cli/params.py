"""Click parameter types shared by the commands."""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteRange(click.FloatRange):
    """A float within bounds that is also finite.

    ``click.FloatRange`` lets ``nan`` through (every comparison with it is False) and,
    without a maximum, ``inf``: values that reach a schedule or a statistics routine
    as a hang or a traceback instead of a usage error.
    """

    name = "float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if isinstance(rv, float) and not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number: {self._describe_range()}.", param, ctx)
        return rv
