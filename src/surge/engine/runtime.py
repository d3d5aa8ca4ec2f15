"""What a workload model drives inside one worker: VUs and their iterations.

Models (``engine/models/*``) decide *when* iterations start and how many VUs
exist; the runtime runs one iteration of a scenario on a VU, records its
outcome and hands models the clock and the stop signal.
"""

from __future__ import annotations

import asyncio
import random
import traceback
from bisect import bisect_right
from dataclasses import dataclass, field
from time import monotonic_ns
from typing import Any

from surge.api.context import current_sink
from surge.api.errors import UsageError
from surge.api.feeders import FeederExhausted
from surge.api.scenario import VU
from surge.api.think import PACING_CHECK, iteration_start, pace_sleeper, pacing_delay
from surge.engine.http.client import Client
from surge.engine.loader import Scenario
from surge.engine.recorder import Recorder

NS = 1_000_000_000
STOP_POLL = 0.05  # s: the longest a sleeping model takes to notice a stop
MIN_SLEEP = 0.001  # s: the event loop's timer resolution


@dataclass(frozen=True)
class Share:
    """This worker's slice of the load: worker ``index`` of ``count``."""

    index: int = 0
    count: int = 1


@dataclass(eq=False)
class VUSlot:
    """A VU with its client; ``retire`` asks it to stop after its current iteration."""

    vu: VU
    client: Client
    task: asyncio.Task | None = None
    retire: bool = False
    busy: bool = False
    waiter: asyncio.Future | None = None


@dataclass
class Runtime:
    """Per-worker execution context handed to a workload model's ``run``.

    Attributes:
        scenarios: the weighted scenarios to pick from each iteration.
        recorder: where requests, checks and iteration outcomes go.
        make_client: builds a fresh Client for a new VU.
        share: which slice of the load this worker carries.
        start_ns: the run's common start (monotonic ns).
        graceful_stop: s in-flight iterations may take after the end.
        graceful_ramp_down: s iterations of retired VUs may take.
        seed: base of per-VU random seeds.
        setup_data: what the scenario's setup() returned.
        pacing: s from one iteration's start to the next on a VU (``Options.pacing``), or None.
        slot_ns: open-model arrival slot in ns (``Options.arrival_slot``); 0 = exact times.
    """

    scenarios: tuple[Scenario, ...]
    recorder: Recorder
    make_client: Any
    share: Share = field(default_factory=Share)
    start_ns: int = 0
    graceful_stop: float = 30.0
    graceful_ramp_down: float = 30.0
    seed: int = 0
    setup_data: Any = None
    pacing: float | None = None
    slot_ns: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    vus: list[VUSlot] = field(default_factory=list)
    target_rate: float = 0.0  # iterations/s this worker is asked for right now (open models)
    sched_lags: dict[int, list[int]] = field(default_factory=dict)  # second -> lags in ns
    tracebacks: dict[str, str] = field(default_factory=dict)  # exception type -> first traceback
    interrupted: int = 0  # iterations cancelled at the hard stop
    fatal: str | None = None  # a usage error raised inside the run (e.g. relative URL, no base URL)
    timer: Any = None  # PreciseTimer for arrival wake-ups (engine/precise_timer.py), set by the worker
    schedule_end_ns: int = 0  # when the model's schedule ends (0: not known); bounds pace()
    _cum_weights: list[float] = field(default_factory=list)
    _vu_counter: int = 0

    def __post_init__(self) -> None:
        total = 0.0
        for s in self.scenarios:
            total += s.weight
            self._cum_weights.append(total)

    # -- clock -----------------------------------------------------------------
    def now_s(self) -> float:
        """s since the run's start."""
        return (monotonic_ns() - self.start_ns) / NS

    def at_ns(self, offset_s: float) -> int:
        return self.start_ns + int(offset_s * NS)

    def slotted(self, offset_ns: int) -> int:
        """The monotonic ns at which an arrival ``offset_ns`` after the start is sent:
        the start of its arrival slot (slots are counted from the run's start and
        divide 1 s, so no arrival moves into another second). Also for an int64 numpy
        array of offsets (the compiled loop's feed)."""
        slot = self.slot_ns
        return self.start_ns + (offset_ns - offset_ns % slot if slot else offset_ns)

    async def sleep_until(self, t_ns: int) -> bool:
        """Sleep until ``t_ns`` or until stop; returns False when stopped.

        A plain ``asyncio.sleep`` in slices of at most STOP_POLL s: waiting on the
        stop event under ``asyncio.timeout`` cost ~25 us per wake-up (a
        cancellation each time), which dominated CPU per request in open models.
        """
        stop = self.stop
        while not stop.is_set():
            delay = (t_ns - monotonic_ns()) / NS
            if delay <= 0:
                return True
            # The loop's timers have 1 ms resolution (libuv): a shorter sleep returns
            # at once and the loop would spin at 100 % CPU until the due time. So a
            # due time under 1 ms away costs up to 1 ms of schedule lag instead; the
            # latency is measured from the due time all the same.
            await asyncio.sleep(min(max(delay, MIN_SLEEP), STOP_POLL))
        return False

    async def sleep_until_precise(self, t_ns: int) -> bool:
        """:meth:`sleep_until` to within tens of us (a timerfd), for arrival schedules.

        Falls back to :meth:`sleep_until` without a timer, or while another
        coroutine uses it (it has one sleeper).
        """
        timer = self.timer
        if timer is None or timer.busy:
            return await self.sleep_until(t_ns)
        stop = self.stop
        while not stop.is_set():
            delay = (t_ns - monotonic_ns()) / NS
            if delay <= 0:
                return True
            if delay > STOP_POLL:  # long waits in slices, to notice a stop
                await asyncio.sleep(STOP_POLL)
                continue
            try:
                await timer.sleep_until(t_ns)
            except OSError:  # timerfd_settime refused: carry on with the loop's own timers
                timer.close()
                self.timer = None
                return await self.sleep_until(t_ns)
        return False

    # -- VUs and iterations ----------------------------------------------------
    @property
    def active_vus(self) -> int:
        return sum(1 for s in self.vus if not s.retire)

    def new_vu(self) -> VUSlot:
        """Allocate a VU (its id is unique across workers)."""
        local = self._vu_counter
        self._vu_counter += 1
        vid = local * self.share.count + self.share.index + 1
        vu = VU(id=vid, setup_data=self.setup_data, rng=random.Random(self.seed * 1_000_003 + vid))
        slot = VUSlot(vu, self.make_client())
        self.vus.append(slot)
        return slot

    def pick(self, rng: random.Random) -> Scenario:
        if len(self.scenarios) == 1:
            return self.scenarios[0]
        x = rng.random() * self._cum_weights[-1]
        return self.scenarios[min(bisect_right(self._cum_weights, x), len(self.scenarios) - 1)]

    async def iteration(self, slot: VUSlot, intended_ns: int = 0) -> None:
        """Run one iteration of a weighted-random scenario on ``slot``.

        An exception in the scenario is counted by type (the first traceback of
        each type is kept) and the run goes on.
        """
        vu = slot.vu
        sc = self.scenarios[0] if len(self.scenarios) == 1 else self.pick(vu.rng)
        client = slot.client
        client.scenario = sc.name
        client.intended_ns = intended_ns
        started = intended_ns or monotonic_ns()
        iteration_start.set(started)  # for pace() in the scenario
        error = None
        slot.busy = True
        try:
            if sc.takes_vu:
                await sc.fn(client, vu)
            else:
                await sc.fn(client)
        except asyncio.CancelledError:
            self.interrupted += 1
            raise
        except UsageError as exc:
            # Not the server's fault and the same in every iteration: stop the run
            # and tell the user, instead of failing thousands of iterations.
            error = type(exc).__name__
            if self.fatal is None:
                self.fatal = str(exc)
                self.stop.set()
        except GeneratorExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - scenario code: any exception is the iteration's
            # sys.exit(), a KeyboardInterrupt or any other BaseException raised by scenario
            # code is the iteration's error like any other; left alone it ended the worker
            # (asyncio re-raises the first two) or silently killed the VU's task (the rest).
            error = type(exc).__name__
            if error not in self.tracebacks:
                self.tracebacks[error] = "".join(traceback.format_exception(exc)).strip()
            if isinstance(exc, FeederExhausted):
                slot.retire = True  # out of data: a closed-model VU stops instead of spinning
        finally:
            slot.busy = False
        vu.iteration += 1
        self.recorder.iteration_done(monotonic_ns(), error)

    async def _pace_until(self, t_ns: int) -> bool:
        """pace() in a scenario: sleep until ``t_ns``, the schedule's end or a stop."""
        end = self.schedule_end_ns
        return await self.sleep_until(min(t_ns, end) if end else t_ns)

    async def pace(self, started: int, end_ns: int) -> None:
        """Options.pacing (closed models): hold the VU until ``pacing`` s after ``started``
        (monotonic ns), the end of the schedule, or a stop; an overrun starts the next
        iteration at once and fails the pacing check."""
        assert self.pacing is not None
        delay = pacing_delay(started, self.pacing, monotonic_ns())
        self.recorder.record_check(PACING_CHECK, delay >= 0)
        if delay > 0:
            await self.sleep_until(min(started + int(self.pacing * NS), end_ns))

    def bind_sink(self) -> None:
        """Make ``check()`` and ``pace()`` in the current task (a VU's) use this worker.

        Called once when a VU's task starts, not per iteration: its context lives as
        long as the task."""
        current_sink.set(self.recorder)
        pace_sleeper.set(self._pace_until)

    def note_lag(self, intended_ns: int, now_ns: int) -> None:
        """Record how late an arrival was dispatched (schedule lag, ns)."""
        self.lag_list(intended_ns).append(now_ns - intended_ns)

    def lag_list(self, intended_ns: int) -> list[int]:
        """The schedule lags (ns) of the second ``intended_ns`` falls in, to append to; valid
        until the worker next harvests them (it may between two awaits)."""
        s = self.recorder.second_of(intended_ns)
        lags = self.sched_lags.get(s)
        if lags is None:  # not setdefault: that builds a new empty list per arrival
            lags = self.sched_lags[s] = []
        return lags

    async def finish(self, tasks: list[asyncio.Task], grace_s: float) -> None:
        """Wait up to ``grace_s`` for ``tasks``, then cancel what is left (counted as interrupted)."""
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=max(grace_s, 0.0))
            for t in still:
                t.cancel()
            if still:
                await asyncio.wait(still, timeout=5.0)
