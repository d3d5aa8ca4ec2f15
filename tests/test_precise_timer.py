"""The timerfd sleeper behind open-model arrivals: never early, one sleeper, clean close."""

from __future__ import annotations

import asyncio
import os
import sys
from time import monotonic_ns

import pytest

from surge.engine import precise_timer as precise_timer_module
from surge.engine.precise_timer import precise_timer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux-only")


@pytest.fixture(autouse=True, params=["C", "ctypes"])
def arm_path(request, monkeypatch):
    """Every test runs with each way of arming the timer: the _timerfd module and ctypes."""
    if request.param == "C":
        if precise_timer_module._arm_abs is None:
            if os.environ.get("SURGE_REQUIRE_NATIVE") == "1":
                pytest.fail("SURGE_REQUIRE_NATIVE=1 but surge.engine._timerfd is not built (pip install needs a C compiler)")
            pytest.skip("surge.engine._timerfd is not built here")
    else:
        monkeypatch.setattr(precise_timer_module, "_arm_abs", None)
    return request.param


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


def test_a_stale_readiness_does_not_wake_the_next_sleeper_early():
    # A sleeper cancelled after its deadline, and a new one armed before the loop ran the
    # timer's callback: the re-arm cleared the expiry, so the callback must not wake it.
    async def go():
        pt = precise_timer(asyncio.get_running_loop())
        try:
            first = asyncio.create_task(pt.sleep_until(monotonic_ns() + 1_000_000))
            await asyncio.sleep(0)
            end = monotonic_ns() + 3_000_000
            while monotonic_ns() < end:  # past the deadline without yielding: the fd is readable
                pass
            first.cancel()
            target = monotonic_ns() + 200_000_000
            second = asyncio.create_task(pt.sleep_until(target))
            await asyncio.sleep(0.01)
            assert not second.done()
            second.cancel()
        finally:
            pt.close()

    asyncio.run(go())


def _runtime(timer_on: bool):
    from surge.engine.recorder import Recorder
    from surge.engine.runtime import Runtime

    rt = Runtime(scenarios=(), recorder=Recorder(start_ns=monotonic_ns()), make_client=lambda: None)
    rt.timer = precise_timer(asyncio.get_running_loop()) if timer_on else None
    return rt


def test_sleep_until_precise_waits_long_stops_and_falls_back():
    async def go():
        rt = _runtime(True)
        try:
            t = monotonic_ns() + 120_000_000  # longer than a stop-poll slice
            assert await rt.sleep_until_precise(t) is True and monotonic_ns() >= t
            assert await rt.sleep_until_precise(monotonic_ns() - 1) is True  # already due

            # a stop during the wait ends it within about a stop-poll slice (50 ms)
            loop = asyncio.get_running_loop()
            loop.call_later(0.03, rt.stop.set)
            t0 = monotonic_ns()
            assert await rt.sleep_until_precise(t0 + 2_000_000_000) is False
            assert monotonic_ns() - t0 < 500_000_000
            rt.stop.clear()

            # timerfd_settime refused: the timer is dropped and the loop's timers take over
            def refuse(*a):
                raise OSError(22, "Invalid argument")

            if rt.timer._arm is not None:
                rt.timer._arm = refuse
            rt.timer._settime = lambda *a: -1
            t = monotonic_ns() + 5_000_000
            assert await rt.sleep_until_precise(t) is True and monotonic_ns() >= t
            assert rt.timer is None
        finally:
            if rt.timer is not None:
                rt.timer.close()

    asyncio.run(go())


def test_arming_at_or_before_zero_still_fires():
    # An all-zero it_value would disarm a timerfd instead of firing it: both paths arm
    # at 1 ns at least, which is long past, so the sleeper returns at once.
    async def go():
        pt = precise_timer(asyncio.get_running_loop())
        try:
            await asyncio.wait_for(pt.sleep_until(0), timeout=1.0)
            await asyncio.wait_for(pt.sleep_until(-5), timeout=1.0)
        finally:
            pt.close()

    asyncio.run(go())


def test_the_c_call_reports_bad_arguments_as_python_errors(arm_path):
    if arm_path != "C":
        pytest.skip("the C module's own argument checks")
    from surge.engine._timerfd import arm_abs

    with pytest.raises(TypeError):
        arm_abs(3)
    with pytest.raises(ValueError):
        arm_abs(-1, 1)
    with pytest.raises(OverflowError):
        arm_abs(3, 1 << 70)
    r, w = os.pipe()  # a file descriptor that is not a timerfd
    try:
        with pytest.raises(OSError):
            arm_abs(r, monotonic_ns() + 1_000_000)
    finally:
        os.close(r)
        os.close(w)
