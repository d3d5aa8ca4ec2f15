"""Build hook for the compiled modules: the event loop behind `surge hit`, and the
timerfd call behind open models' arrival wake-ups.

Everything else is in pyproject.toml. Both extensions are optional: where they do not
build (no C compiler, not Linux), `surge hit` uses its pure-Python path and the
arrival timer calls libc through ctypes.
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
            "surge.engine._timerfd",
            ["src/surge/engine/_timerfd.c"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        ),
    ]
)
