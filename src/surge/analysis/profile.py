"""Profiles as data: top functions of collapsed stacks, and what got hotter between two.

A profile is ``{stack: samples}`` where a stack is ``frame;frame;...`` from the
outermost frame to the leaf (``profile.collapsed``, read by
:func:`surge.results.sut_files.read_profile`). A frame ``name (file.py:12)`` is
counted as the function ``name (file.py)``, so samples on several lines of one
function add up and a line shift between two versions does not break a diff.
py-spy's ``process PID (...)`` root frames are not functions and are skipped.

Shares are percentages of all samples of the profile:

- **self**: samples in which the function was the leaf (it was running);
- **total**: samples in which it was anywhere on the stack (it or what it
  called was running), counted once per sample even when it recurses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r":\d+\)$")


def function_of(frame: str) -> str:
    """``name (file.py:12)`` -> ``name (file.py)``."""
    return _LINE.sub(")", frame.strip())


def _frames(stack: str) -> list[str]:
    return [function_of(f) for f in stack.split(";") if f.strip() and not f.startswith("process ")]


@dataclass(frozen=True)
class FunctionShare:
    """One function's share of a profile's samples (percent of all samples)."""

    function: str
    self_pct: float
    total_pct: float
    self_samples: int
    total_samples: int


@dataclass(frozen=True)
class FunctionDelta:
    """How one function's share changed from profile A to profile B (percentage points)."""

    function: str
    total_a: float
    total_b: float
    self_a: float
    self_b: float

    @property
    def total_pp(self) -> float:
        """Change of the total share, B - A, in percentage points (positive: hotter in B)."""
        return self.total_b - self.total_a

    @property
    def self_pp(self) -> float:
        """Change of the self share, B - A, in percentage points."""
        return self.self_b - self.self_a


def shares(stacks: dict[str, int]) -> dict[str, FunctionShare]:
    """Every function's self and total share of the samples in ``stacks``."""
    total = sum(n for n in stacks.values() if n > 0)
    own: dict[str, int] = {}
    tot: dict[str, int] = {}
    for stack, n in stacks.items():
        if n <= 0:
            continue
        frames = _frames(stack)
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for fn in set(frames):
            tot[fn] = tot.get(fn, 0) + n
    if total == 0:
        return {}
    return {fn: FunctionShare(fn, 100.0 * own.get(fn, 0) / total, 100.0 * t / total, own.get(fn, 0), t)
            for fn, t in tot.items()}


def top_functions(stacks: dict[str, int], n: int = 20, by: str = "self") -> list[FunctionShare]:
    """The ``n`` functions with the largest ``by`` share ("self" or "total"), largest first."""
    if by not in ("self", "total"):
        raise ValueError(f"by must be 'self' or 'total', not {by!r}")
    rows = list(shares(stacks).values())
    if by == "self":
        rows.sort(key=lambda r: (-r.self_samples, -r.total_samples, r.function))
    else:
        rows.sort(key=lambda r: (-r.total_samples, -r.self_samples, r.function))
    return rows[:max(n, 0)]


def diff(a: dict[str, int], b: dict[str, int]) -> list[FunctionDelta]:
    """Per function, its shares in A and in B; hottest-got-hotter first.

    Sorted by the change of the total share (B - A) descending, then by the
    change of the self share: the first rows are what takes more of the time in
    B, the last rows what takes less. Shares are relative to each profile's own
    sample count, so profiles of different lengths compare.
    """
    sa, sb = shares(a), shares(b)
    out = []
    for fn in sa.keys() | sb.keys():
        x, y = sa.get(fn), sb.get(fn)
        out.append(FunctionDelta(fn, x.total_pct if x else 0.0, y.total_pct if y else 0.0,
                                 x.self_pct if x else 0.0, y.self_pct if y else 0.0))
    out.sort(key=lambda d: (-round(d.total_pp, 9), -round(d.self_pp, 9), d.function))
    return out


def sample_count(stacks: dict[str, int]) -> int:
    """All samples of a profile."""
    return sum(n for n in stacks.values() if n > 0)
