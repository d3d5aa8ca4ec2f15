"""The timerfd sleeper behind open-model arrivals: never early, one sleeper, clean close."""

from __future__ import annotations

import asyncio
import sys
from time import monotonic_ns

import pytest

from surge.engine.precise_timer import precise_timer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux-only")


def test_never_wakes_before_the_deadline_and_returns_at_once_for_the_past():
    async def go():
        pt = precise_timer(asyncio.get_running_loop())
        assert pt is not None
        try:
            for gap_us in (50, 300, 900, 2500):
                t = monotonic_ns() + gap_us * 1000
                await pt.sleep_until(t)
                assert monotonic_ns() >= t
            t0 = monotonic_ns()
            await pt.sleep_until(t0 - 5_000_000)  # already past: returns on the next loop turn
            assert not pt.busy
        finally:
            pt.close()

    asyncio.run(go())


def test_one_sleeper_at_a_time():
    async def go():
        pt = precise_timer(asyncio.get_running_loop())
        try:
            first = asyncio.create_task(pt.sleep_until(monotonic_ns() + 20_000_000))
            await asyncio.sleep(0)
            assert pt.busy
            with pytest.raises(RuntimeError):
                await pt.sleep_until(monotonic_ns() + 1_000_000)
            await first
            assert not pt.busy
        finally:
            pt.close()

    asyncio.run(go())
