"""A/A false-positive rate and power of ``surge compare`` (surge.analysis.compare).

Simulated (default; ~2 min)::

    .venv/bin/python eval/compare_aa_power.py [--pairs 100] [--names 5] [--seconds 10,30,60]

Each simulated run has ``--names`` request names at ~100 requests/s (Poisson per
second); latency is log-normal around 10 ms (sigma 0.3 on the log scale) with AR(1)
dependence between consecutive requests (phi = 0.6); 1 % of requests fail. Two
variants: "ar1" is exactly that; "ar1+drift" adds a slowly wandering server speed
(a per-second AR(1) on the log scale, phi = 0.6, sd 0.05). A/A pairs draw both
sides from the same process; power pairs multiply B's latencies by 1.2.

A request name counts as a false positive when any of its 6 rows is REGRESSED or
IMPROVED, and as detected when any row is REGRESSED. For contrast, the A/A pairs
are also judged by Mann-Whitney on the raw per-request latencies (the rank test
the method deliberately avoids).

Live (``--live``; ~11 min for 20 pairs of 10 s runs)::

    .venv/bin/python eval/compare_aa_power.py --live [--pairs 20] [--duration 10]

starts ``tests/servers.py``, and for each pair runs ``surge run`` three times
(baseline A, baseline A', and B whose delays are 20 % longer; two request names,
/delay/10 and /delay/20), then compares A vs A' (A/A) and A vs B (power) with
``read_series`` + ``samples_from_series`` + ``compare``.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np

from surge.analysis.compare import (
    CompareConfig,
    Comparison,
    Sample,
    compare,
    samples_from_series,
)
from surge.metrics.stats import RequestStats

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- simulation


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """n values of a stationary AR(1) series with unit variance (truncated MA form)."""
    k = int(math.log(1e-9) / math.log(phi)) + 1 if 0 < phi < 1 else 1
    e = rng.standard_normal(n + k) * math.sqrt(1 - phi * phi)
    return np.convolve(e, phi ** np.arange(k))[k:n + k]


def simulate_run(rng: np.random.Generator, seconds: int, names: int, *, scale: float = 1.0,
                 rps: int = 100, sigma: float = 0.3, phi: float = 0.6, drift_sd: float = 0.0,
                 drift_phi: float = 0.6, error_rate: float = 0.01,
                 ) -> tuple[dict[str, Sample], dict[str, np.ndarray]]:
    """One simulated run: per-second samples and the raw latencies (ns) per name."""
    samples, raw = {}, {}
    for k in range(names):
        counts = rng.poisson(rps, seconds)
        z = sigma * ar1(rng, int(counts.sum()), phi)
        if drift_sd:
            z += np.repeat(drift_sd * ar1(rng, seconds, drift_phi), counts)
        lat = (10e6 * scale * np.exp(z)).astype(np.int64)
        ends = np.cumsum(counts)
        units = []
        for s in range(seconds):
            st = RequestStats(count=int(counts[s]))
            st.latency.record_many(lat[ends[s] - counts[s]:ends[s]])
            ne = int(rng.binomial(counts[s], error_rate))
            if ne:
                st.errors["http_5xx"] = ne
            units.append(st)
        name = f"GET /n{k}"
        samples[name] = Sample(units=units, unit="second", duration_s=float(seconds))
        raw[name] = lat
    return samples, raw


def mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (normal approximation; continuous data)."""
    n1, n2 = x.size, y.size
    ranks = np.empty(n1 + n2)
    ranks[np.argsort(np.concatenate([x, y]), kind="stable")] = np.arange(1, n1 + n2 + 1)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    z = (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return math.erfc(abs(z) / math.sqrt(2))


def tally(c: Comparison) -> tuple[int, int, int]:
    """(names, names with any REGRESSED/IMPROVED row, names with any REGRESSED row)."""
    by: dict[str, set[str]] = {}
    for r in c.rows:
        by.setdefault(r.name, set()).add(r.verdict)
    return (len(by), sum(bool(v & {"REGRESSED", "IMPROVED"}) for v in by.values()),
            sum("REGRESSED" in v for v in by.values()))


def simulate(args: argparse.Namespace) -> None:
    cfg = CompareConfig(n_boot=args.n_boot)
    print(f"simulated: {args.pairs} pairs x {args.names} names per cell, n_boot={cfg.n_boot}, "
          f"delta={cfg.delta:.0%}, alpha={cfg.alpha}")
    print(f"{'model':10s} {'run':>5s}  {'A/A false pos.':>15s}  {'raw p<.05 (p50)':>16s}  "
          f"{'Mann-Whitney':>12s}  {f'power (+{args.shift:.0%})':>12s}  {'A/A SAME p50':>12s}  {'s/compare':>9s}")
    for model, drift in (("ar1", 0.0), ("ar1+drift", 0.05)):
        for secs in args.seconds:
            rng = np.random.default_rng(1000 * secs + int(drift * 100))
            names = fp = det = mw = raw = same = 0
            t_cmp = 0.0
            for i in range(args.pairs):
                a, ra = simulate_run(rng, secs, args.names, drift_sd=drift)
                b, rb = simulate_run(rng, secs, args.names, drift_sd=drift)
                b2, _ = simulate_run(rng, secs, args.names, drift_sd=drift, scale=1.0 + args.shift)
                t0 = time.perf_counter()
                c = compare(a, b, CompareConfig(n_boot=args.n_boot, seed=i))
                c2 = compare(a, b2, CompareConfig(n_boot=args.n_boot, seed=i))
                t_cmp += time.perf_counter() - t0
                n, f, _ = tally(c)
                names += n
                fp += f
                det += tally(c2)[2]
                mw += sum(mann_whitney_p(ra[k], rb[k]) < 0.05 for k in ra)
                p50 = [r for r in c.rows if r.metric == "p50"]
                raw += sum(r.p_value is not None and r.p_value < 0.05 for r in p50)
                same += sum(r.verdict == "SAME" for r in p50)
            print(f"{model:10s} {secs:4d}s  {fp / names:15.1%}  {raw / names:16.1%}  {mw / names:12.1%}  "
                  f"{det / names:12.1%}  {same / names:12.1%}  {t_cmp / (2 * args.pairs):9.3f}")
    print("A/A false pos.: names with any REGRESSED/IMPROVED row (required <= 5 %); power: names "
          "with a REGRESSED row (required >= 95 %).")


# --------------------------------------------------------------------------- live


SCENARIO = textwrap.dedent('''
    import os
    from surge import scenario

    _SCALE = float(os.environ.get("DELAY_SCALE", "1.0"))

    @scenario
    async def hit(client):
        await client.get(f"/delay/{10 * _SCALE:g}", name="/fast")
        await client.get(f"/delay/{20 * _SCALE:g}", name="/slow")
''')


def _start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "servers.py"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"test server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def _surge_run(scenario: Path, url: str, out: Path, scale: float, duration: int, vus: int) -> Path:
    surge = Path(sys.executable).parent / "surge"
    env = {**os.environ, "DELAY_SCALE": str(scale)}
    cmd = [str(surge), "run", str(scenario), "--base-url", url, "--vus", str(vus),
           "-d", f"{duration}s", "-w", "1", "--out", str(out), "-q", "--no-store"]
    subprocess.run(cmd, env=env, check=True, timeout=duration + 60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (run_dir,) = list(out.iterdir())
    return run_dir


def _load(run_dir: Path, warmup_s: int) -> dict[str, Sample]:
    import json

    from surge.results.rundir import read_series

    meta = json.loads((run_dir / "meta.json").read_text())
    return samples_from_series(read_series(run_dir), warmup_s=warmup_s,
                               end_s=meta.get("planned_duration_s"))


def live(args: argparse.Namespace) -> None:
    proc, url = _start_server()
    cfg = CompareConfig(n_boot=args.n_boot)
    aa, pw = Counter(), Counter()
    aa_rows, pw_rows = Counter(), Counter()
    ratios: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scen = Path(tmp) / "delays.py"
            scen.write_text(SCENARIO)
            t0 = time.monotonic()
            for i in range(args.pairs):
                dirs = {}
                for tag, scale in (("a", 1.0), ("a2", 1.0), ("b", 1.2)):
                    dirs[tag] = _surge_run(scen, url, Path(tmp) / f"{i}-{tag}", scale, args.duration, args.vus)
                a, a2, b = (_load(dirs[t], warmup_s=1) for t in ("a", "a2", "b"))
                c_aa = compare(a, a2, CompareConfig(n_boot=args.n_boot, seed=i))
                c_pw = compare(a, b, CompareConfig(n_boot=args.n_boot, seed=i))
                n, f, _ = tally(c_aa)
                aa.update(names=n, fp=f)
                n, _, d = tally(c_pw)
                pw.update(names=n, det=d)
                aa_rows.update((r.metric, r.verdict) for r in c_aa.rows)
                pw_rows.update((r.metric, r.verdict) for r in c_pw.rows)
                for r in c_pw.rows:
                    if r.metric == "p50" and r.ratio:
                        ratios.setdefault(r.name, []).append(r.ratio)
                print(f"pair {i + 1:2d}/{args.pairs}  A/A: {c_aa.name_verdicts()}  "
                      f"+20%: {c_pw.name_verdicts()}  ({time.monotonic() - t0:.0f} s)", flush=True)
    finally:
        proc.kill()
        proc.wait()
    print(f"\nlive: {args.pairs} pairs of {args.duration} s runs, {args.vus} VUs, 1 worker, "
          f"warmup 1 s, n_boot={cfg.n_boot}")
    print(f"A/A: {aa['fp']} of {aa['names']} name comparisons REGRESSED/IMPROVED "
          f"({aa['fp'] / aa['names']:.1%}); SAME or INCONCLUSIVE in {1 - aa['fp'] / aa['names']:.1%}")
    print(f"+20 % delays: {pw['det']} of {pw['names']} names REGRESSED ({pw['det'] / pw['names']:.1%})")
    for name, rs in sorted(ratios.items()):
        print(f"  {name}: p50 ratio B/A median {np.median(rs):.3f}")
    print("A/A verdicts per metric:", dict(sorted(aa_rows.items())))
    print("+20 % verdicts per metric:", dict(sorted(pw_rows.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", action="store_true", help="real runs against tests/servers.py")
    ap.add_argument("--pairs", type=int, default=None, help="pairs per cell (sim 100, live 20)")
    ap.add_argument("--names", type=int, default=5, help="request names per simulated run")
    ap.add_argument("--seconds", default="10,30,60", help="simulated run lengths")
    ap.add_argument("--duration", type=int, default=10, help="live run length, s")
    ap.add_argument("--vus", type=int, default=10, help="live VUs")
    ap.add_argument("--shift", type=float, default=0.2, help="simulated slowdown of B for power (0.2 = +20 %%)")
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()
    args.seconds = [int(s) for s in args.seconds.split(",")]
    if args.live:
        args.pairs = args.pairs or 20
        live(args)
    else:
        args.pairs = args.pairs or 100
        simulate(args)


if __name__ == "__main__":
    main()
