"""Profiles as data: top functions of collapsed stacks, and what got hotter between two.

A profile is ``{stack: samples}`` where a stack is ``frame;frame;...`` from the
outermost frame to the leaf (``profile.collapsed``, read by
:func:`surge.results.sut_files.read_profile`). A frame ``name (file.py:12)`` is
counted as the function ``name (file.py)``, so samples on several lines of one
function add up and a line shift between two versions does not break a diff.
py-spy's ``process PID (...)`` root frames are not functions and are skipped.

Shares are percentages of all samples of the profile. Two views:

- ``view="all"``: every frame is a function of its own.

  - **self**: samples in which the function was the leaf (it was running);
  - **total**: samples in which it was anywhere on the stack (it or what it
    called was running), counted once per sample even when it recurses.

- ``view="app"``: only application code (:func:`is_library` is false), and not
  its *launchers* (:func:`launchers`: ``main``, a CLI command, the function that
  starts the server, which are on the stack of every request). A comprehension,
  generator expression or lambda counts as the function it is written in
  (``f.<locals>.<listcomp>`` is ``f``; Python 3.12 inlines comprehensions anyway).

  - **self**: samples whose innermost application frame is the function: it was
    running, or library code it called was (``re``, ``json``, a database
    driver). Samples with no application frame (the event loop, the server's
    parser, the framework's routing) are charged to no function:
    :func:`outside_app_share`.
  - **total**: samples in which it was anywhere on the stack, as above.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

_LINE = re.compile(r":\d+\)$")
_LOCALS = re.compile(r"\.<locals>\.<(listcomp|dictcomp|setcomp|genexpr|lambda)>")

VIEWS = ("app", "all")
BYS = ("self", "total")

# Runtimes and frameworks: real work happens in them, but the fix is in the application
# code that called them. py-spy writes short paths (``asyncio/runners.py``,
# ``starlette/routing.py``, ``surge/demo/app.py``): the first path part names the package.
FRAMEWORKS = frozenset({
    "uvicorn", "starlette", "anyio", "uvloop", "httptools", "h11", "fastapi", "django", "flask",
    "werkzeug", "gunicorn", "asgiref", "sqlalchemy", "pydantic", "pydantic_core", "aiohttp", "click",
    "typer", "jinja2", "hypercorn", "granian", "tornado", "twisted", "gevent", "eventlet", "site-packages",
})
LIBRARY_TOPS = FRAMEWORKS | frozenset(sys.stdlib_module_names)
_STDLIB_DIR = re.compile(r"/lib/python3[^/]*/")

# Frames of an event loop: when one of them is the leaf, the process was in C code
# (the loop's poll, uvloop, httptools, a driver) that py-spy charges to them.
_EVENT_LOOP = frozenset({"Runner.run", "run_forever", "_run_once", "select", "run_until_complete"})

NATIVE_NOTE = ("time in C code (the event loop, parsers, drivers) is charged to the nearest Python frame; "
               "use --native with py-spy to split it")


def function_of(frame: str) -> str:
    """``name (file.py:12)`` -> ``name (file.py)``."""
    return _LINE.sub(")", frame.strip())


def app_function(frame: str) -> str:
    """:func:`function_of`, and a comprehension or lambda counts as the function it is in
    (``f.<locals>.<listcomp> (app.py)`` -> ``f (app.py)``)."""
    return _LOCALS.sub("", function_of(frame))


def is_library(function: str) -> bool:
    """Whether a frame or function ``name (path)`` is library or framework code, not the application's.

    Library code: the standard library (its top-level module is in
    ``sys.stdlib_module_names``: ``asyncio/runners.py``, ``json/encoder.py``,
    ``selectors.py``), a framework or server of :data:`FRAMEWORKS`
    (``starlette/routing.py``), a full path under ``/lib/python3.X/`` outside
    ``site-packages``, and frozen or generated code (``<frozen runpy>``). Anything
    else is the application's: ``surge/demo/app.py``, ``app.py``, a script
    ``<module> (surge)``, and a package under ``site-packages/`` that is not one
    of the above.
    """
    _, _, where = function_of(function).partition(" (")
    path = where.removesuffix(")")
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        if _STDLIB_DIR.search(path):
            return True
    if "/" not in path:  # a script (``<module> (surge)``), a module file, or ``<frozen runpy>``
        return path.startswith("<") or path.removesuffix(".py") in LIBRARY_TOPS
    return path.split("/", 1)[0] in LIBRARY_TOPS


def is_event_loop(function: str) -> bool:
    """Whether a function is an event loop's (``Runner.run (asyncio/runners.py)``, ``select (selectors.py)``)."""
    name, _, _ = function_of(function).partition(" (")
    return is_library(function) and (name in _EVENT_LOOP or name.rsplit(".", 1)[-1] in _EVENT_LOOP)


def _frames(stack: str) -> list[str]:
    return [function_of(f) for f in stack.split(";") if f.strip() and not f.startswith("process ")]


def hosts_of(parsed: Iterable[tuple[list[str], list[bool]]]) -> frozenset[str]:
    """Application functions above a library -> application hand-over in some stack
    (``(frames, is_library flags)`` pairs): they host a framework that calls back into
    the application, like ``main``, a CLI command or ``run_app``."""
    hosts: set[str] = set()
    for frames, lib in parsed:
        last = max((i for i in range(1, len(frames)) if not lib[i] and lib[i - 1]), default=0)
        hosts.update(f for f, is_lib in zip(frames[:last], lib[:last], strict=True) if not is_lib)
    return frozenset(hosts)


def launchers(stacks: dict[str, int]) -> frozenset[str]:
    """Application functions that only hand over to library code which calls back into the application.

    ``main``, a CLI command, the function that starts the server: they are on the
    stack of (nearly) every sample, and the time of the framework and event loop
    below them is not theirs. A launcher is an application function that, in some
    stack, has library code below it that calls back into application code, and
    whose callee in every stack is library code or another launcher (so a handler
    that also calls application functions directly is not one).
    """
    parsed = [(fr, [is_library(f) for f in fr]) for fr in map(_frames, stacks)]
    cand = set(hosts_of(parsed))
    callees: dict[str, set[str]] = {}
    for frames, lib in parsed:
        for i in range(len(frames) - 1):
            if not lib[i]:
                callees.setdefault(frames[i], set()).add(frames[i + 1])
    changed = True
    while changed:  # drop candidates that call a non-launcher application function, until none do
        changed = False
        for fn in list(cand):
            if any(c not in cand and not is_library(c) for c in callees.get(fn, ())):
                cand.discard(fn)
                changed = True
    return frozenset(cand)


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


def _check(view: str, by: str = "self") -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be 'app' or 'all', not {view!r}")
    if by not in BYS:
        raise ValueError(f"by must be 'self' or 'total', not {by!r}")


def _counts(stacks: dict[str, int], view: str) -> tuple[int, dict[str, int], dict[str, int]]:
    """All samples, and per function its self and total samples in ``view``."""
    _check(view)
    skip = launchers(stacks) if view == "app" else frozenset()
    total = 0
    own: dict[str, int] = {}
    tot: dict[str, int] = {}
    for stack, n in stacks.items():
        if n <= 0:
            continue
        total += n
        frames = _frames(stack)
        if view == "app":
            frames = [app_function(f) for f in frames if f not in skip and not is_library(f)]
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for fn in set(frames):
            tot[fn] = tot.get(fn, 0) + n
    return total, own, tot


def shares(stacks: dict[str, int], view: str = "app") -> dict[str, FunctionShare]:
    """Every function's self and total share of the samples in ``stacks``, in ``view`` ("app" or "all")."""
    total, own, tot = _counts(stacks, view)
    if total == 0:
        return {}
    return {fn: FunctionShare(fn, 100.0 * own.get(fn, 0) / total, 100.0 * t / total, own.get(fn, 0), t)
            for fn, t in tot.items()}


def outside_app_share(stacks: dict[str, int]) -> float:
    """Percent of the samples with no application frame (other than launchers) on the stack.

    Time in the server, the framework and the event loop that no application
    function asked for: the application view charges it to no function.
    """
    total, own, _ = _counts(stacks, "app")
    return 100.0 * (total - sum(own.values())) / total if total else 0.0


def top_functions(stacks: dict[str, int], n: int = 20, by: str = "self", view: str = "app") -> list[FunctionShare]:
    """The ``n`` functions with the largest ``by`` share ("self" or "total"), largest first."""
    _check(view, by)
    rows = list(shares(stacks, view).values())
    if by == "self":
        rows.sort(key=lambda r: (-r.self_samples, -r.total_samples, r.function))
    else:
        rows.sort(key=lambda r: (-r.total_samples, -r.self_samples, r.function))
    return rows[:max(n, 0)]


def diff(a: dict[str, int], b: dict[str, int], view: str = "app", by: str = "self") -> list[FunctionDelta]:
    """Per function, its shares in A and in B; most-got-hotter first, most-got-cooler last.

    Sorted by the change of the ``by`` share (B - A) descending, then by the
    change of the other share: the first rows are what takes more of the time in
    B, the last rows what takes less. Shares are relative to each profile's own
    sample count, so profiles of different lengths compare.
    """
    _check(view, by)
    sa, sb = shares(a, view), shares(b, view)
    out = []
    for fn in sa.keys() | sb.keys():
        x, y = sa.get(fn), sb.get(fn)
        out.append(FunctionDelta(fn, x.total_pct if x else 0.0, y.total_pct if y else 0.0,
                                 x.self_pct if x else 0.0, y.self_pct if y else 0.0))
    if by == "self":
        out.sort(key=lambda d: (-round(d.self_pp, 9), -round(d.total_pp, 9), d.function))
    else:
        out.sort(key=lambda d: (-round(d.total_pp, 9), -round(d.self_pp, 9), d.function))
    return out


def hotter_cooler(rows: list[FunctionDelta], by: str = "self",
                  n: int | None = None) -> tuple[list[FunctionDelta], list[FunctionDelta]]:
    """Split :func:`diff`'s rows into what got hotter (largest increase first) and cooler (largest decrease first)."""
    _check("app", by)

    def key(r: FunctionDelta) -> tuple[float, float]:
        main, other = (r.self_pp, r.total_pp) if by == "self" else (r.total_pp, r.self_pp)
        return round(main, 9), round(other, 9)

    hotter = sorted((r for r in rows if key(r) > (0.0, 0.0)), key=lambda r: (*(-x for x in key(r)), r.function))
    cooler = sorted((r for r in rows if key(r) < (0.0, 0.0)), key=lambda r: (*key(r), r.function))
    return hotter[:n], cooler[:n]


def native_note(stacks: dict[str, int]) -> str | None:
    """:data:`NATIVE_NOTE` when the frame with the most self time (all frames) is an event loop's, else None."""
    top = top_functions(stacks, 1, by="self", view="all")
    return NATIVE_NOTE if top and is_event_loop(top[0].function) else None


def sample_count(stacks: dict[str, int]) -> int:
    """All samples of a profile."""
    return sum(n for n in stacks.values() if n > 0)
