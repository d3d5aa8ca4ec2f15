"""``surge hit`` on the compiled event loop (``surge.engine._hitloop``).

The pure-Python fast path (:mod:`surge.engine.hit`) costs 18-26 µs of user CPU
per request at a fixed 5,000 req/s, where h2load costs 3.5-4.5, and uvloop's
1 ms timers put its schedule-lag p99 near 3 ms. For plain-HTTP targets the
request loop therefore runs in C, in a thread without the GIL, while this
module keeps the parts that are not per request:

- the arrival schedule (same curve, seed and split as ``due_arrivals``), fed
  about 2 s ahead in int64 ns blocks;
- each second, the loop's records (intended, send, first byte, done, status,
  bytes, error) go into the worker's :class:`~surge.engine.recorder.Recorder`,
  its schedule lags into ``Runtime.sched_lags``, and its starts and drops into
  the per-second counters, so the worker, summary and report see the same
  data as from the Python path;
- a stop from the coordinator (Ctrl-C, abort-on-fail) becomes ``Engine.stop``.

``SURGE_HIT_ENGINE=python`` forces the Python path (``native`` makes a missing
extension an error instead of a silent fallback). TLS targets always use the
Python path.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
from time import monotonic_ns

import numpy as np

from surge.api.errors import ErrorKind, UsageError
from surge.engine.hit import HitRunner
from surge.engine.messages import WorkerPlan
from surge.engine.models.arrival import arrival_stream
from surge.engine.recorder import FIELDS, Recorder
from surge.engine.runtime import NS, Runtime, Share

try:
    from surge.engine import _hitloop
except ImportError:  # not built (no compiler, or not Linux): the Python path only
    _hitloop = None

ENGINE_ENV = "SURGE_HIT_ENGINE"
FEED_AHEAD_S = 2.0  # arrivals handed to the loop ahead of the clock
FEED_PERIOD_S = 0.25  # how often the feed is topped up
FEED_BLOCK = 4096  # arrivals pulled from the generator per step

# The order the C loop expects (its E_* enum).
ERROR_KINDS = tuple(int(k) for k in (
    ErrorKind.REFUSED, ErrorKind.CONNECT_TIMEOUT, ErrorKind.TIMEOUT, ErrorKind.RESET,
    ErrorKind.PROTOCOL, ErrorKind.HTTP_4XX, ErrorKind.HTTP_5XX, ErrorKind.CONNECT,
))


class NativeUnavailable(RuntimeError):
    """``SURGE_HIT_ENGINE=native`` was asked for but cannot be used for this target."""


def native_available() -> bool:
    """True when the compiled loop was built and imports."""
    return _hitloop is not None


def _engine_choice() -> str:
    """``SURGE_HIT_ENGINE``, normalised (``auto`` when unset or empty)."""
    return os.environ.get(ENGINE_ENV, "auto").strip().lower() or "auto"


def _static_reason(tls: bool) -> str | None:
    """Why the compiled loop can't serve a target, as far as is known without resolving it."""
    if _hitloop is None:
        return ("the compiled extension surge.engine._hitloop is not built (reinstall with a C compiler "
                "and the Python headers)")
    if tls:
        return "HTTPS targets use the Python path (TLS)"
    return None


def expected_engine(url: str) -> str:
    """``"native"`` or ``"python"``: the engine the workers will pick for ``url`` (for the
    run's metadata; a host that does not resolve still falls back to ``python``)."""
    if _engine_choice() == "python" or _static_reason(url.lower().startswith("https:")):
        return "python"
    return "native"


def check_engine_choice(url: str) -> None:
    """Raise :class:`UsageError` (exit 2, before any worker starts) when
    ``SURGE_HIT_ENGINE=native`` asks for what cannot be had for ``url``."""
    choice = _engine_choice()
    if choice not in ("auto", "native", "python"):
        raise UsageError(f"{ENGINE_ENV}={choice!r}: use auto, native or python")
    why = _static_reason(url.lower().startswith("https:"))
    if choice == "native" and why:
        raise UsageError(f"{ENGINE_ENV}=native: {why}; unset it to let surge choose")


def make_hit_runner(plan: WorkerPlan, recorder: Recorder, share: Share) -> HitRunner:
    """The runner for ``plan.hit``: the compiled loop where it applies, else the Python path."""
    choice = _engine_choice()
    if choice == "python":
        return HitRunner(plan, recorder, share)
    runner = NativeHitRunner(plan, recorder, share)
    why = runner.unusable_reason()
    if why is None:
        return runner
    if choice == "native":
        raise NativeUnavailable(f"{ENGINE_ENV}=native: {why}")
    return HitRunner(plan, recorder, share)


class NativeHitRunner(HitRunner):
    """:class:`HitRunner` with the request loop in C; same configuration and interface."""

    def __init__(self, plan: WorkerPlan, recorder: Recorder, share: Share) -> None:
        super().__init__(plan, recorder, share)
        self.method = plan.hit.method.upper() if plan.hit else "GET"
        self.engine = None
        self.address: tuple[int, str, int] | None = None
        self._lock = threading.Lock()  # flush() runs from the tick and from run()'s end

    def unusable_reason(self) -> str | None:
        """Why the compiled loop can't run this target, or None (and the address is resolved)."""
        why = _static_reason(self.origin.tls)
        if why:
            return why
        try:
            infos = socket.getaddrinfo(self.origin.host, self.origin.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            return f"cannot resolve {self.origin.host}: {exc}"  # the Python path reports it as dns errors
        addrs = [(int(i[0]), i[4][0]) for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
        if not addrs:
            return f"no IPv4/IPv6 address for {self.origin.host}"
        # The C loop connects to one address. Like create_connection, take the first that
        # accepts (``localhost`` is often ::1 first while the server listens on 127.0.0.1
        # only); if none does, the first, whose refusals are then counted as errors.
        family, ip = next((a for a in addrs if _accepts(*a, self.origin.port, self.connect_t)), addrs[0])
        self.address = (family, ip, self.origin.port)
        return None

    @property
    def active_vus(self) -> int:
        return self.engine.open_connections if self.engine is not None else 0

    def close(self) -> None:
        pass  # the loop closes its sockets when run() returns

    def prepare(self, rt: Runtime) -> None:
        """Build the loop and feed its first arrivals before the synchronized start
        (the worker calls this while it waits), so the first second's sends are not
        late by the set-up time."""
        assert self.address is not None, "unusable_reason() resolves the address first"
        self.end_ns = rt.at_ns(self.duration)
        family, ip, port = self.address
        closed = self.curve is None
        self.engine = _hitloop.Engine(
            family, ip, port, self.request, self.connections, closed,
            self.iterations if (closed and self.iterations is not None) else -1,
            self.end_ns, (int(self.connect_t * NS), int(self.read_t * NS), int(self.total_t * NS)),
            ERROR_KINDS, self.method == "HEAD", rt.slot_ns, rt.start_ns)
        self._more = False
        if not closed:
            rt.schedule_end_ns = max(rt.schedule_end_ns, self.end_ns)
            self._stream = arrival_stream(rt, self.curve, poisson=self.poisson, share=self.share, cv=self.cv)
            self._pending: np.ndarray | None = None
            self._more = self._top_up()

    async def run(self, rt: Runtime) -> None:
        if self.engine is None:
            self.prepare(rt)
        loop = asyncio.get_running_loop()
        tasks = []
        if self._more:
            tasks.append(asyncio.create_task(self._feed()))
        tasks.append(asyncio.create_task(self._stop_on(rt)))
        # A thread of its own, not the default executor: the loop runs for the whole run.
        done = loop.create_future()

        def body() -> None:
            try:
                self.engine.run()
                loop.call_soon_threadsafe(_settle, done, None)
            except BaseException as exc:  # surfaced in the worker like any model failure
                loop.call_soon_threadsafe(_settle, done, exc)

        threading.Thread(target=body, name="surge-hitloop", daemon=True).start()
        try:
            await done
            # Requests the server had not answered by the end of the grace period:
            # no latency to record, but not silently gone either (summary: interrupted).
            rt.interrupted += self.engine.interrupted
        finally:
            if not done.done():  # cancelled: don't leave the loop running to its end
                self.engine.stop(True)
            for t in tasks:
                t.cancel()
            self.flush()

    async def _stop_on(self, rt: Runtime) -> None:
        await rt.stop.wait()
        self.engine.stop(True)

    async def _feed(self) -> None:
        """Keep the loop's schedule FEED_AHEAD_S ahead of the clock until the end."""
        while self._top_up():
            await asyncio.sleep(FEED_PERIOD_S)

    def _top_up(self) -> bool:
        """Feed the arrivals due before now + FEED_AHEAD_S; False once the schedule is all fed."""
        horizon = min(monotonic_ns() + int(FEED_AHEAD_S * NS), self.end_ns)
        while True:
            if self._pending is None:
                offs = np.fromiter(itertools.islice(self._stream, FEED_BLOCK), dtype=np.float64)
                if not len(offs):
                    return False
                # due at the start of their arrival slot; rint: truncation puts some a slot early
                self._pending = self.runtime.slotted(np.rint(offs * NS).astype(np.int64))
            cut = int(np.searchsorted(self._pending, horizon))
            if cut:
                self.engine.feed(self._pending[:cut].tobytes())
            if cut < len(self._pending):
                self._pending = self._pending[cut:]
                return self._pending[0] < self.end_ns
            self._pending = None

    def flush(self) -> None:
        """Move what the loop gathered into the recorder (called by the worker's tick)."""
        if self.engine is None:
            return
        with self._lock:
            recs, lags, starts, drops = self.engine.harvest()
            self.connects = self.engine.connects
        rec = self.recorder
        if recs:
            a = np.frombuffer(recs, dtype=np.int64).reshape(-1, FIELDS - 1)
            full = np.empty((len(a), FIELDS), dtype=np.int64)
            full[:, 0] = self.key
            full[:, 1:] = a
            rec.add_block(full)
        if lags:
            pairs = np.frombuffer(lags, dtype=np.int64).reshape(-1, 2)
            secs = np.maximum(0, (pairs[:, 0] - rec.start_ns) // NS)
            for s in np.unique(secs).tolist():
                self.runtime.sched_lags.setdefault(s, []).extend(pairs[secs == s, 1].tolist())
        for buf, counter in ((starts, rec.started), (drops, rec.dropped)):
            if buf:
                t = np.frombuffer(buf, dtype=np.int64)
                secs, counts = np.unique(np.maximum(0, (t - rec.start_ns) // NS), return_counts=True)
                for s, n in zip(secs.tolist(), counts.tolist(), strict=True):
                    counter[s] += n


def _accepts(family: int, ip: str, port: int, timeout_s: float) -> bool:
    """Whether a TCP connection to (ip, port) opens within ``timeout_s`` (at most 1 s)."""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(min(timeout_s, 1.0))
            s.connect((ip, port))
        return True
    except OSError:
        return False


def _settle(fut: asyncio.Future, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


__all__ = ["NativeHitRunner", "NativeUnavailable", "check_engine_choice", "expected_engine", "make_hit_runner", "native_available"]
