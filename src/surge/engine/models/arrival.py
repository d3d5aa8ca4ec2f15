"""The dispatcher shared by the open (arrival-rate) models.

Arrivals come from a :class:`RateCurve`; each is handed to an idle VU, a new
VU while fewer than ``max_vus`` exist, or else counted as dropped. Each arrival
is due at the start of its arrival slot (``Options.arrival_slot``, 2 ms by
default): the arrivals of a slot start together, with one wake-up. The
iteration's intended start is that due time, so a late generator or a full VU
pool shows up in latency (coordinated-omission free), and the dispatch delay is
recorded as schedule lag.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from time import monotonic_ns

from surge.api.options import Options
from surge.engine.models.schedule import RateCurve, split_int
from surge.engine.runtime import NS, Runtime, Share, VUSlot

BURST = 256  # arrivals dispatched back to back before yielding to the loop
DEFAULT_MAX_VUS = 1000


def vu_counts(o: Options, share: Share, peak_rate: float) -> tuple[int, int]:
    """This worker's (pre-allocated, maximum) VUs."""
    pre_total = o.vus if o.vus is not None else max(1, min(100, int(peak_rate * 0.05)))
    if o.max_vus is not None:
        pre_total = min(pre_total, o.max_vus)  # --max-vus is a hard cap, pre-allocated VUs included
    max_total = o.max_vus if o.max_vus is not None else max(pre_total, DEFAULT_MAX_VUS)
    pre = split_int(pre_total, share.index, share.count)
    mx = max(split_int(max_total, share.index, share.count), pre, 1)
    return pre, mx


async def _vu_worker(rt: Runtime, slot: VUSlot, idle: list[VUSlot], first: int) -> None:
    """A VU's task: run an iteration per arrival handed to it (``first``, else its waiter's)."""
    rt.bind_sink()
    loop = asyncio.get_running_loop()
    intended = first or await slot.waiter  # a pre-allocated VU waits for its first arrival
    while intended:
        await rt.iteration(slot, intended)
        fut = slot.waiter = loop.create_future()
        idle.append(slot)
        intended = await fut


def arrival_stream(
    rt: Runtime, curve: RateCurve, *, poisson: bool, share: Share, cv: float | None = None
) -> Iterator[float]:
    """This worker's arrival offsets (s from the run's start) of ``curve``: its share of
    the run's stream, seeded from the run's seed (see :func:`due_arrivals`)."""
    if cv is not None:
        rng = random.Random(rt.seed * 7919 + 104_729)
        return curve.arrivals(rng=rng, cv=cv, stride=share.count, offset=share.index)
    rng = random.Random(rt.seed * 7919 + share.index)
    return curve.arrivals(poisson=poisson, phase=share.index / share.count, rng=rng)


async def due_arrivals(
    rt: Runtime, curve: RateCurve, *, poisson: bool, share: Share, end_ns: int, cv: float | None = None
) -> AsyncIterator[tuple[int, int]]:
    """Yield ``(due_ns, now_ns)`` for each arrival of this worker's share of ``curve``,
    sleeping until it is due; ends at ``end_ns`` or on stop. Records schedule lag.

    Shared by the scenario dispatcher below and ``surge hit``'s fast path. With
    gamma gaps (``cv``) every worker draws the same stream (same seed) and keeps
    its share of it, so the run's bursts survive the split over workers.
    """
    stream = arrival_stream(rt, curve, poisson=poisson, share=share, cv=cv)
    rt.schedule_end_ns = max(rt.schedule_end_ns, end_ns)
    burst = 0
    start, slot = rt.start_ns, rt.slot_ns
    last_t, lags = -1, None
    for off in stream:
        t = round(off * NS)  # round: 2.01 * NS is 2009999999.99..., a slot early if truncated
        t = start + (t - t % slot if slot else t)  # Runtime.slotted, inlined: this runs per arrival
        if t >= end_ns:
            return
        now = monotonic_ns()
        if t > now:
            burst = 0
            # Arrivals are due at slot starts (Runtime.slotted): one wake-up per
            # slot, and the arrivals of a slot go out back to back from it.
            if not await rt.sleep_until_precise(t):
                return
            now = monotonic_ns()
        elif rt.stop.is_set():
            return
        if t != last_t:  # the arrivals of a slot share their due time, so their second's lag list
            last_t, lags = t, rt.lag_list(t)
        lags.append(now - t)
        yield t, now
        burst += 1
        if burst >= BURST:  # far behind schedule: let responses in between
            burst, last_t = 0, -1  # the per-second lags may be harvested meanwhile
            await asyncio.sleep(0)


async def dispatch(
    rt: Runtime, curve: RateCurve, *, poisson: bool, pre_vus: int, max_vus: int, share: Share, grace_s: float,
    cv: float | None = None,
) -> None:
    """Start iterations at the curve's arrival times until its end or a stop."""
    idle: list[VUSlot] = []
    tasks: list[asyncio.Task] = []
    loop = asyncio.get_running_loop()
    for _ in range(pre_vus):
        slot = rt.new_vu()
        slot.waiter = loop.create_future()
        idle.append(slot)
        tasks.append(asyncio.create_task(_vu_worker(rt, slot, idle, 0)))
    rec = rt.recorder
    last_t = sec = -1
    async for t, _ in due_arrivals(rt, curve, poisson=poisson, share=share, end_ns=rt.at_ns(curve.duration), cv=cv):
        if t != last_t:  # the arrivals of a slot share their due time, so their second
            last_t, sec = t, rec.second_of(t)
        # A VU is busy from the moment it is handed an arrival, not from when its
        # task first runs: the end-of-run wait must see it.
        if idle:
            slot = idle.pop()
            slot.busy = True
            slot.waiter.set_result(t)
            rec.started[sec] += 1  # not a cached .started: drain() replaces it each second
        elif len(rt.vus) < max_vus:
            slot = rt.new_vu()
            slot.busy = True
            tasks.append(asyncio.create_task(_vu_worker(rt, slot, idle, t)))
            rec.started[sec] += 1
        else:
            rec.dropped[sec] += 1
    # VU tasks never end by themselves (they wait for the next arrival): wait
    # for the iterations in flight, not for the tasks.
    grace = min(grace_s, 1.0) if rt.stop.is_set() else grace_s
    deadline = monotonic_ns() + int(grace * NS)
    while any(s.busy for s in rt.vus) and monotonic_ns() < deadline:
        await asyncio.sleep(0.005)
    for slot in idle:
        if slot.waiter is not None and not slot.waiter.done():
            slot.waiter.set_result(0)
    for t in tasks:
        if not t.done():
            t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

