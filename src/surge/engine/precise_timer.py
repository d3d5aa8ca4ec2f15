"""Sub-millisecond wake-ups for the worker's event loop, from a Linux timerfd.

The loop's own timers (libuv's, under uvloop; epoll's timeout, under asyncio) have
1 ms resolution, so an arrival due 0.3 ms from now was sent up to 1 ms late: the
schedule-lag p99 of open models sat at 1.2-1.3 ms. A timerfd armed at the arrival's
due time (CLOCK_MONOTONIC, the clock of ``time.monotonic_ns``) becomes readable at
that time to within tens of microseconds, and the loop wakes on it like on a socket.

Python 3.11 has no ``os.timerfd_create`` (3.13 has), so libc is called through
ctypes; on other systems :func:`precise_timer` returns None and callers fall back
to ``asyncio.sleep``. The timer is re-armed at every wake-up, so that one call goes
through the small C module ``_timerfd`` where it was built (0.65 us a call against
1.54 us through ctypes).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import sys
import time
from typing import Any

_CLOCK_MONOTONIC = getattr(time, "CLOCK_MONOTONIC", 1)
_TFD_TIMER_ABSTIME = 1
_TFD_NONBLOCK = os.O_NONBLOCK  # timerfd's flags are defined as O_NONBLOCK / O_CLOEXEC
_TFD_CLOEXEC = os.O_CLOEXEC


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


try:
    from surge.engine._timerfd import arm_abs as _arm_abs
except ImportError:  # not built (no C compiler): the ctypes call below does the same
    _arm_abs = None

_libc: Any = None


def _load_libc() -> Any:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.timerfd_settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                         ctypes.c_void_p)
        _libc = libc
    return _libc


class PreciseTimer:
    """One timerfd registered with ``loop``: :meth:`sleep_until` wakes at a ns deadline.

    One sleeper at a time (a worker's arrival dispatcher); a second concurrent
    sleeper would re-arm the timer, so it is refused.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        libc = _load_libc()
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd = fd
        self.loop = loop
        self._spec = _Itimerspec()
        self._settime = libc.timerfd_settime
        self._ref = ctypes.byref(self._spec)
        self._arm = _arm_abs
        self._waiter: asyncio.Future | None = None
        try:
            loop.add_reader(fd, self._fired)
        except BaseException:
            os.close(fd)
            raise

    def __repr__(self) -> str:
        return f"<PreciseTimer fd={self.fd}>"

    @property
    def busy(self) -> bool:
        """A coroutine is sleeping on this timer."""
        return self._waiter is not None and not self._waiter.done()

    def _fired(self) -> None:
        try:
            os.read(self.fd, 8)  # the expiration count; reading re-arms readiness
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                raise
            # Nothing expired: the timer was re-armed (a new sleeper after a cancelled
            # one) between the readiness and this call. Waking now would be early.
            return
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def sleep_until(self, t_ns: int) -> None:
        """Return at monotonic time ``t_ns`` (ns) or just after; at once if it has passed."""
        if self.busy:
            raise RuntimeError("PreciseTimer has one sleeper at a time")
        arm = self._arm
        if arm is not None:
            arm(self.fd, t_ns)  # OSError on failure, like the ctypes path
        else:
            spec = self._spec
            spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(max(t_ns, 1), 1_000_000_000)
            if self._settime(self.fd, _TFD_TIMER_ABSTIME, self._ref, None) != 0:
                raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        fut = self._waiter = self.loop.create_future()
        try:
            await fut
        finally:
            if self._waiter is fut:  # a sleeper that came after a cancelled one keeps its future
                self._waiter = None

    def close(self) -> None:
        try:
            self.loop.remove_reader(self.fd)
        finally:
            os.close(self.fd)


def precise_timer(loop: asyncio.AbstractEventLoop) -> PreciseTimer | None:
    """A :class:`PreciseTimer` on Linux, or None where timerfd is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return PreciseTimer(loop)
    except (OSError, AttributeError):
        return None
