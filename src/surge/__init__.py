"""surge: a performance-engineering workbench.

What a scenario file imports::

    from surge import Options, check, scenario, sleep, uniform

    options = Options(vus=10, duration="30s", thresholds=("p95<300ms",))

    @scenario(weight=3)
    async def browse(client):
        r = await client.get("/products", name="/products")
        check(r, {"status 200": lambda r: r.status == 200})
        await sleep(uniform(0.5, 1.5))
"""

from surge._version import __version__
from surge.api import extract
from surge.api.checks import check
from surge.api.errors import ErrorKind, RunError, SurgeError, UsageError
from surge.api.extract import ExtractionError
from surge.api.fake import fake
from surge.api.feeders import Feeder, FeederExhausted
from surge.api.options import Options, Stage
from surge.api.response import HTTPStatusError, Response
from surge.api.scenario import VU, scenario
from surge.api.think import constant, exponential, lognormal, normal, pace, sleep, uniform

__all__ = [
    "VU",
    "ErrorKind",
    "ExtractionError",
    "Feeder",
    "FeederExhausted",
    "HTTPStatusError",
    "Options",
    "Response",
    "RunError",
    "Stage",
    "SurgeError",
    "UsageError",
    "__version__",
    "check",
    "constant",
    "exponential",
    "extract",
    "fake",
    "lognormal",
    "normal",
    "pace",
    "scenario",
    "sleep",
    "uniform",
]
