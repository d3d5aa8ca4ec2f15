"""Marking scenario functions and describing virtual users."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

ScenarioFn = Callable[..., Awaitable[Any]]
_MARK = "__surge_scenario__"


def scenario(fn: ScenarioFn | None = None, *, weight: float = 1.0, name: str | None = None):
    """Mark an ``async def`` as a scenario; ``weight`` sets its share of iterations.

    Usable bare (``@scenario``) or with arguments (``@scenario(weight=3)``). A
    scenario takes ``client`` and, optionally, ``vu`` (:class:`VU`).
    """

    def mark(f: ScenarioFn) -> ScenarioFn:
        try:
            w = float(weight)
        except (TypeError, ValueError):
            raise ValueError(f"scenario weight must be a number > 0, got {weight!r}") from None
        if not 0 < w < math.inf:  # also refuses nan, which compares false with everything
            raise ValueError(f"scenario weight must be a finite number > 0, got {weight!r}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(f"scenario name must be a non-empty str, got {name!r}")
        setattr(f, _MARK, {"weight": w, "name": name or f.__name__})
        return f

    return mark(fn) if fn is not None else mark


def scenario_mark(fn: Any) -> dict[str, Any] | None:
    """The ``@scenario`` settings of ``fn``, or None when it is not marked."""
    return getattr(fn, _MARK, None)


@dataclass(eq=False)
class VU:
    """One virtual user, passed to scenarios that accept a ``vu`` argument.

    Attributes:
        id: 1-based id, unique across all worker processes of the run.
        iteration: 0-based count of this VU's iterations so far.
        state: a dict kept across this VU's iterations (tokens, cart ids, ...).
        setup_data: what the scenario module's ``setup()`` returned (or None).
        rng: this VU's own ``random.Random``, seeded from the run seed and VU id.
    """

    id: int
    iteration: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    setup_data: Any = None
    rng: random.Random = field(default_factory=random.Random)

    def __repr__(self) -> str:
        return f"VU(id={self.id}, iteration={self.iteration})"
