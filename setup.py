"""Build hook for the one compiled module: the event loop behind `surge hit`.

Everything else is in pyproject.toml. The extension is optional: where it does not
build (no C compiler, not Linux), `surge hit` uses its pure-Python path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "surge.engine._hitloop",
            ["src/surge/engine/_hitloop.c"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        )
    ]
)
