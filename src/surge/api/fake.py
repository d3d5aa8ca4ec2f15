"""Generated test data through Faker, reproducible with the run's ``--seed``::

    from surge import fake

    async def signup(client, vu):
        f = fake(vu)                       # this VU's own stream of fake data
        await client.post("/users", json={"name": f.name(), "email": f.email()})
        city = fake.city()                 # the worker's shared stream

``fake(vu)`` gives a view of Faker whose random stream belongs to ``vu``: seeded
from the run seed and ``vu.id``, so the same seed gives every VU the same values
in every run, whatever the other VUs do. ``fake.<provider>()`` uses one stream
per worker: cheaper to think about, but its values depend on which VU asks first.

Faker is imported on first use (it costs ~0.3 s), and one Faker object serves
the whole worker: a VU's view swaps its own ``random.Random`` in for each call
(~1 us) instead of building a Faker per VU (~1 ms each).
"""

from __future__ import annotations

import random
import weakref
from typing import Any

from surge.api.context import current_worker

LOCALE = "en_US"


class FakeData:
    """Faker for scenarios: call with a VU for its own stream, or use its providers directly.

    Args:
        locale: the Faker locale (``"en_US"`` by default; e.g. ``"de_DE"``).
    """

    def __init__(self, locale: str = LOCALE) -> None:
        self.locale = locale
        self._faker: Any = None
        self._worker: tuple[Any, random.Random] | None = None  # (WorkerInfo, its stream)
        self._views: weakref.WeakKeyDictionary[Any, VUFaker] = weakref.WeakKeyDictionary()

    def __call__(self, vu: Any) -> VUFaker:
        """This VU's view: every provider call draws from the VU's own seeded stream."""
        view = self._views.get(vu)
        if view is None:
            info = current_worker.get()
            seed = info.seed if info is not None else 0
            view = self._views[vu] = VUFaker(self, random.Random(f"surge-fake:{seed}:vu{vu.id}"))
        return view

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        info = current_worker.get()
        if self._worker is None or self._worker[0] is not info:
            w, seed = (info.index, info.seed) if info is not None else (0, 0)
            self._worker = (info, random.Random(f"surge-fake:{seed}:worker{w}"))
        return _bind(self.faker, self._worker[1], name)

    @property
    def faker(self) -> Any:
        """The worker's ``faker.Faker`` (created on first use)."""
        if self._faker is None:
            from faker import Faker  # lazily: importing Faker takes ~0.3 s

            self._faker = Faker(self.locale)
        return self._faker

    def __repr__(self) -> str:
        return f"<surge.fake locale={self.locale!r}>"


class VUFaker:
    """Faker's providers on one VU's random stream: ``fake(vu).email()``."""

    __slots__ = ("_owner", "_rng")

    def __init__(self, owner: FakeData, rng: random.Random) -> None:
        self._owner, self._rng = owner, rng

    def __getattr__(self, name: str) -> Any:
        return _bind(self._owner.faker, self._rng, name)

    def __repr__(self) -> str:
        return f"<surge.fake view locale={self._owner.locale!r}>"


def _bind(faker: Any, rng: random.Random, name: str) -> Any:
    """Faker's attribute ``name``; a provider method comes wrapped to draw from ``rng``."""
    attr = getattr(faker, name)
    if not callable(attr):
        return attr

    def call(*args: Any, **kwargs: Any) -> Any:
        # Swap the stream in for this call only: Faker calls are synchronous, so no
        # other VU can run in between on this worker's single event loop thread.
        faker.random = rng
        return attr(*args, **kwargs)

    return call


fake = FakeData()
"""The instance scenario files import: ``from surge import fake``."""
