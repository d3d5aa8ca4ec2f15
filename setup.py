"""Build hook for the compiled modules: the event loop behind `surge hit`, the
per-request core of the scripted client's connection, and the timerfd call behind
open models' arrival wake-ups.

Everything else is in pyproject.toml. All extensions are optional: where they do not
build (no C compiler, not Linux), `surge hit` uses its pure-Python path, the
connection its Python core, and the arrival timer calls libc through ctypes.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "surge.engine._hitloop",
            ["src/surge/engine/_hitloop.c"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        ),
        Extension(
            "surge.engine.http._conncore",
            ["src/surge/engine/http/_conncore.c"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        ),
        Extension(
            "surge.engine._timerfd",
            ["src/surge/engine/_timerfd.c"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        ),
    ]
)
