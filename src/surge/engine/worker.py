"""A worker process: one uvloop event loop running its share of the load."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from time import monotonic_ns
from typing import Any

import numpy as np
import psutil

from surge.api.context import WorkerInfo, current_worker
from surge.api.errors import SurgeError
from surge.engine.http.client import Client, Timeouts
from surge.engine.http.pool import ConnectionPool
from surge.engine.messages import Failed, Ready, Start, Stop, Tick, WorkerPlan
from surge.engine.precise_timer import precise_timer
from surge.engine.recorder import Recorder
from surge.engine.runtime import NS, Runtime, Share
from surge.metrics.stats import SecondStats

TICK_DELAY = 0.02  # s after each second boundary before draining (lets completions land)
LAG_PROBE = 0.02  # s between event-loop lag probes


def worker_main(plan: WorkerPlan, conn: Any) -> None:
    """Process entry point: load, report Ready, wait for Start, run, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # likewise (the CLI's SIGTERM handler is inherited by fork)
    _raise_fd_limit()
    # Before the scenario is imported: feeders split rows by worker (the event
    # loop's tasks inherit this context).
    current_worker.set(WorkerInfo(plan.index, plan.count, plan.seed))
    try:
        scenarios = None
        if plan.replay is not None:  # surge replay: read this worker's slice of the trace before Ready
            from surge.engine.replay import load_share

            scenarios = load_share(plan)
        elif plan.hit is None:
            from surge.engine.loader import load_scenarios

            scenarios = load_scenarios(plan.scenario_path).scenarios  # type: ignore[arg-type]
        conn.send(Ready(plan.index, os.getpid()))
        cmd = conn.recv()
        if isinstance(cmd, Stop):
            return
        assert isinstance(cmd, Start)
        import uvloop

        # The hot path allocates many short-lived objects; with default thresholds
        # a full collection over thousands of VUs stalled the loop ~100 ms at
        # 10k req/s. Freeze what exists now and collect the old generations rarely.
        _warm_up()
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 1000)
        uvloop.run(_run(plan, conn, scenarios, cmd.start_ns))
    except SurgeError as exc:
        _send(conn, Failed(plan.index, str(exc)))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    except Exception as exc:  # an engine bug: report it rather than die silently
        import traceback

        _send(conn, Failed(plan.index, f"worker {plan.index} crashed: {exc!r}\n{traceback.format_exc()}", usage=False))
    finally:
        try:
            conn.close()
        except OSError:
            pass


def _warm_up() -> None:
    """Run the once-a-second aggregation on dummy data before the start: its first
    call pays numpy's lazy set-up (measured: a 4-10 ms loop stall in second 1)."""
    import pickle

    r = Recorder(0)
    k = r.key_id("warm-up", "/", "GET")
    for i in range(64):
        r.add(k, i, i, i + 1, i + 2, 200 if i % 2 else 503, 10, 0 if i % 2 else 9)
    pickle.dumps(sorted(r.drain().values(), key=lambda x: x.second))
    np.percentile([1, 2, 3], 99)


def _raise_fd_limit() -> None:
    """Thousands of connections need thousands of descriptors: lift the soft limit to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def _send(conn: Any, msg: Any) -> None:
    try:
        conn.send(msg)
    except (BrokenPipeError, OSError):
        pass


class _SelfMonitor:
    """Generator self-metrics: CPU % of this process and event-loop lag, per second."""

    def __init__(self) -> None:
        self.max_lag_ns = 0
        self._cpu0 = time.process_time()
        self._wall0 = time.monotonic()
        self._host0 = _host_times()

    async def probe(self) -> None:
        while True:
            t0 = monotonic_ns()
            await asyncio.sleep(LAG_PROBE)
            lag = monotonic_ns() - t0 - int(LAG_PROBE * NS)
            if lag > self.max_lag_ns:
                self.max_lag_ns = lag

    def take(self) -> tuple[float, float, float | None]:
        """(CPU % of one core, worst event-loop lag ms, hypervisor steal % of the host or None)."""
        cpu, wall = time.process_time(), time.monotonic()
        pct = 100.0 * (cpu - self._cpu0) / max(wall - self._wall0, 1e-9)
        lag_ms = max(self.max_lag_ns, 0) / 1e6
        host = _host_times()
        steal = None
        if host is not None and self._host0 is not None and host[1] > self._host0[1]:
            steal = 100.0 * (host[0] - self._host0[0]) / (host[1] - self._host0[1])
        self._cpu0, self._wall0, self.max_lag_ns, self._host0 = cpu, wall, 0, host
        return pct, lag_ms, steal


def _host_times() -> tuple[float, float] | None:
    """(steal, total) CPU seconds of the whole host; None where the OS reports no steal.

    Steal is time a virtual machine's CPUs were runnable but the hypervisor ran
    something else: on a cloud VM it shows up as schedule-lag spikes that no
    generator can avoid, so the run says how much there was.
    """
    try:
        t = psutil.cpu_times()
    except OSError:
        return None
    steal = getattr(t, "steal", None)
    return None if steal is None else (float(steal), float(sum(t)))


async def _run(plan: WorkerPlan, conn: Any, scenarios, start_ns: int) -> None:
    loop = asyncio.get_running_loop()
    recorder = Recorder(start_ns)
    share = Share(plan.index, plan.count)
    connect_t, read_t, total_t = plan.timeouts
    if plan.hit is not None:
        from surge.engine.hit_native import make_hit_runner

        runner: Any = make_hit_runner(plan, recorder, share)
        pool = runner.pool
        model: Any = runner
        rt = runner.runtime
    elif plan.replay is not None:
        from surge.engine.replay import ReplayRunner

        runner = ReplayRunner(plan, recorder, share, scenarios)
        pool, model, rt = runner.pool, runner, runner.runtime
    else:
        from surge.engine.models import build_model

        pool = ConnectionPool(connect_timeout=connect_t, insecure=plan.insecure)
        headers = dict(plan.headers)
        timeouts = Timeouts(connect_t, read_t, total_t)
        cookies = plan.options.cookies is not False

        def make_client() -> Client:
            return Client(pool, recorder, base_url=plan.options.base_url, headers=headers,
                          timeouts=timeouts, follow_redirects=plan.follow_redirects, cookies=cookies)

        model = build_model(plan.options, share)
        o = plan.options
        rt = Runtime(
            scenarios=scenarios,
            recorder=recorder,
            make_client=make_client,
            share=share,
            start_ns=start_ns,
            graceful_stop=o.graceful_stop if o.graceful_stop is not None else 30.0,
            graceful_ramp_down=o.graceful_ramp_down if o.graceful_ramp_down is not None else 30.0,
            seed=plan.seed,
            setup_data=plan.setup_data,
            pacing=o.pacing,
            slot_ns=o.slot_ns(),
        )

    def on_command() -> None:
        try:
            while conn.poll():
                if isinstance(conn.recv(), Stop):
                    rt.stop.set()
        except (EOFError, OSError):
            rt.stop.set()  # the coordinator is gone: stop

    loop.add_reader(conn.fileno(), on_command)
    # Sub-ms wake-ups for open-model arrivals (engine/precise_timer.py); None off Linux.
    rt.timer = precise_timer(loop)
    mon = _SelfMonitor()
    sent_tb: set[str] = set()

    last_k = 0
    last_vus = 0
    flush = getattr(model, "flush", None)

    def tick(k: int, final: bool) -> None:
        # Self-metrics describe the second since the previous tick; the final
        # tick may come early in a second, so it reports on the one after the last tick.
        nonlocal last_k, last_vus
        if flush is not None:
            flush()  # a model that records off the event loop (hit's compiled loop) hands it over
        seconds = recorder.drain()
        cpu, lag, steal = mon.take()
        s = last_k
        last_k = k
        st = seconds.get(s)
        if st is None:
            st = seconds[s] = SecondStats(second=s)
        st.cpu.append(round(cpu, 1))
        st.loop_lag_ms.append(round(lag, 3))
        if steal is not None:
            st.steal.append(round(steal, 2))
        lags = [v for sec in [x for x in rt.sched_lags if x <= s] for v in rt.sched_lags.pop(sec)]
        st.sched_lag_p99_ms.append(round(float(np.percentile(lags, 99)) / 1e6, 3) if lags else 0.0)
        if not final:
            st.vus = last_vus = getattr(model, "active_vus", rt.active_vus)
        else:
            # The run ended during second s: it still had the VUs last sampled,
            # unless s starts after the schedule.
            st.vus = last_vus if s < model.planned_duration else 0
        st.target_rate = model.target_rate(s + 0.5)
        st.checks = recorder.take_checks()
        new_tb = {k2: v for k2, v in rt.tracebacks.items() if k2 not in sent_tb}
        sent_tb.update(new_tb)
        _send(conn, Tick(plan.index, k, sorted(seconds.values(), key=lambda x: x.second), new_tb,
                         final=final, interrupted=rt.interrupted, connects=pool.connects,
                         folded_names=recorder.folded_names, fatal=rt.fatal if final else None))

    parent = os.getppid()

    async def ticker() -> None:
        k = 1
        while True:
            target = start_ns + k * NS + int(TICK_DELAY * NS)
            await asyncio.sleep(max(0.0, (target - monotonic_ns()) / NS))
            if os.getppid() != parent:
                rt.stop.set()  # orphaned: the coordinator is gone
            tick(k, False)
            k += 1

    prepare = getattr(model, "prepare", None)
    if prepare is not None:
        prepare(rt)  # set-up that must not eat into the first second (hit's compiled loop)
    delay = (start_ns - monotonic_ns()) / NS
    if delay > 0:
        await asyncio.sleep(delay)
    probe = asyncio.create_task(mon.probe())
    ticks = asyncio.create_task(ticker())
    try:
        await model.run(rt)
    finally:
        ticks.cancel()
        probe.cancel()
        loop.remove_reader(conn.fileno())
        pool.close()
        if rt.timer is not None:
            rt.timer.close()
    tick(last_k + 1, True)
