"""Load a scenario file into a :class:`ScenarioSet` (every user mistake -> UsageError)."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surge.api.errors import UsageError
from surge.api.options import Options
from surge.api.scenario import scenario_mark


@dataclass(frozen=True)
class Scenario:
    """One scenario function and its share of iterations."""

    name: str
    fn: Any
    weight: float
    takes_vu: bool


@dataclass(frozen=True)
class ScenarioSet:
    path: str
    sha256: str
    scenarios: tuple[Scenario, ...]
    options: Options
    setup: Any = None
    teardown: Any = None


def _import(path: Path) -> Any:
    name = f"surge_scenario_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load scenario file {path}: it must be a Python file (.py)")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # let scenarios import helpers beside them
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise UsageError(
            f"syntax error in scenario file {path}, line {exc.lineno}: {exc.msg}; fix the file and retry"
        ) from None
    except UsageError:
        raise  # already one line naming the input (a feeder file, bad options)
    except SystemExit as exc:  # sys.exit() at import: not the run's exit code (3 would read "threshold failed")
        raise UsageError(
            f"scenario file {path} called sys.exit({exc.code!r}) while being imported; remove it and retry"
        ) from None
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        where = next((f"line {f.lineno}" for f in reversed(tb) if f.filename == str(path)), "import")
        raise UsageError(
            f"scenario file {path} raised {type(exc).__name__}: {exc} (at {where}) while being imported; fix it and retry"
        ) from None
    finally:
        if sys.path and sys.path[0] == str(path.parent):
            sys.path.pop(0)
    return module


def load_scenarios(path: str | Path) -> ScenarioSet:
    """Import ``path`` and collect its scenarios, options and hooks.

    Scenarios are the functions marked ``@scenario``; when none are marked, every
    public ``async def`` defined in the file (except ``setup``/``teardown``).
    """
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise UsageError(f"scenario file {path} not found: check the path")
    if p.is_dir():
        raise UsageError(f"scenario path {path} is a directory: give a .py file")
    data = p.read_bytes()
    if b"\0" in data:
        raise UsageError(f"scenario file {path} is not Python source (it contains NUL bytes): give a .py file")
    module = _import(p)
    marked, plain = [], []
    for attr, obj in vars(module).items():
        if not callable(obj) or attr.startswith("_"):
            continue
        mark = scenario_mark(obj)
        if mark is not None:
            marked.append((mark["name"], obj, mark["weight"]))
        elif (
            inspect.iscoroutinefunction(obj)
            and getattr(obj, "__module__", None) == module.__name__
            and attr not in ("setup", "teardown")
        ):
            plain.append((attr, obj, 1.0))
    found = marked or plain
    if not found:
        raise UsageError(
            f"scenario file {path} defines no scenario: add e.g. 'async def visit(client): await client.get(\"/\")'"
        )
    names = [name for name, _, _ in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"scenario name {twice[0]!r} is used twice in {path}: give each @scenario its own name=")
    scenarios = []
    for name, fn, weight in found:
        if not inspect.iscoroutinefunction(fn):
            raise UsageError(f"scenario {name!r} in {path} must be an 'async def'")
        params = [
            p for p in inspect.signature(fn).parameters.values()
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if not 1 <= len(params) <= 2:
            raise UsageError(
                f"scenario {name!r} in {path} must take (client) or (client, vu), not {len(params)} arguments"
            )
        scenarios.append(Scenario(name, fn, weight, len(params) == 2))
    raw = getattr(module, "options", None)
    if raw is None:
        options = Options()
    elif isinstance(raw, Options):
        options = raw.normalised(source=f"options in {path}")
    elif isinstance(raw, dict):
        options = Options.from_mapping(raw, source=f"options in {path}")
    else:
        raise UsageError(f"'options' in {path} must be surge.Options(...) or a dict")
    return ScenarioSet(
        path=str(p),
        sha256=hashlib.sha256(data).hexdigest(),
        scenarios=tuple(scenarios),
        options=options,
        setup=getattr(module, "setup", None),
        teardown=getattr(module, "teardown", None),
    )
