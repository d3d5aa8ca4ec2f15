"""Evaluate surge.analysis.changepoints.detect on synthetic run histories.

Usage:

    .venv/bin/python eval/changepoints_eval.py [--seeds 200] [--compare]

Every series is generated from a fixed seed, so the figures are reproducible:

* shifted: 20-200 points, lognormal noise (sigma 0.05, ~5 %), 1-3 level shifts of
  10-50 % (random sign), every segment at least 10 points long. A true shift counts
  as found when a change point lies within +/- 2 points of it; any change point not
  within 2 of a true shift is an extra (false) one.
* shifted, short segments: the same with segments of at least 5 points (harder).
* shifted + outliers: shifted series with 1-3 isolated x3 spikes added.
* stationary: no shift, same noise; stationary + outliers: 1-3 isolated x3 spikes.
  Any change point here is a false positive. Also with alpha = 0.001 and 999
  permutations, and whether the spiked series get exactly the answer they get with the
  spikes replaced by None (outliers are set aside like missing values).
* CI coverage: for each found shift, whether [ci_low, ci_high] contains the true
  relative shift, and whether the sign (direction) is right.
* t-test calibration: rejection rate at alpha = 0.01 of a t-test between the two
  halves of a stationary window, as Otava computes it (pooled variance fed with ddof=0
  standard deviations) and as surge does (Welch, ddof=1); nominal is 1 %.
* runtime: per series, and one 200-point series with two shifts.

--compare also runs apache-otava, signal-processing-algorithms and ruptures on the
same series when they are importable (they are not surge dependencies; install them in
a scratch virtualenv, they pin numpy versions surge does not use).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

try:
    from surge.analysis.changepoints import ChangePointConfig, _t_sf2, _welch, detect
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from surge.analysis.changepoints import ChangePointConfig, _t_sf2, _welch, detect

TOL = 2


def shifted(seed: int, min_gap: int = 10) -> tuple[np.ndarray, list[int], list[float]]:
    """A history with 1-3 relative level shifts of 10-50 %; returns (x, shift indices, shifts)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 201))
    k = min(int(rng.integers(1, 4)), n // min_gap - 1)
    while True:
        cuts = np.sort(rng.choice(np.arange(min_gap, n - min_gap + 1), size=k, replace=False))
        bounds = np.concatenate([[0], cuts, [n]])
        if np.all(np.diff(bounds) >= min_gap):
            break
    level, lv, shifts = np.empty(n), 100.0, []
    for i in range(k + 1):
        if i:
            s = float(rng.uniform(0.10, 0.50) * rng.choice([-1, 1]))
            lv *= 1 + s
            shifts.append(s)
        level[bounds[i] : bounds[i + 1]] = lv
    return level * rng.lognormal(0, 0.05, n), [int(c) for c in cuts], shifts


def spikes(x: np.ndarray, rng: np.random.Generator, factor: float = 3.0) -> list[int]:
    """Multiply 1-3 isolated (non-adjacent) points of x by factor, in place."""
    pos: list[int] = []
    k = int(rng.integers(1, 4))
    while len(pos) < k:
        p = int(rng.integers(0, len(x)))
        if all(abs(p - q) > 1 for q in pos):
            pos.append(p)
    x[pos] *= factor
    return sorted(pos)


def stationary(seed: int, outliers: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 100.0 * rng.lognormal(0, 0.05, int(rng.integers(20, 201)))
    if outliers:
        spikes(x, rng)
    return x


def score(found: list[int], true: list[int]) -> tuple[int, int]:
    hit = sum(any(abs(f - t) <= TOL for f in found) for t in true)
    extra = sum(not any(abs(f - t) <= TOL for t in true) for f in found)
    return hit, extra


def surge_method(x: np.ndarray) -> list[int]:
    return [c.index for c in detect(x)]


def run_suite(name: str, method: Callable[[np.ndarray], list[int]], seeds: int) -> None:
    t0 = time.perf_counter()
    hits = total = extra = 0
    for s in range(seeds):
        x, cuts, _ = shifted(s)
        h, e = score(method(x), cuts)
        hits, total, extra = hits + h, total + len(cuts), extra + e
    fp_st = sum(bool(method(stationary(10_000 + s, False))) for s in range(seeds))
    fp_out = sum(bool(method(stationary(20_000 + s, True))) for s in range(seeds))
    print(
        f"  {name:34s} found {hits}/{total} = {hits / total:6.1%}   extra on shifted {extra:3d}   "
        f"FP series: stationary {fp_st}/{seeds}, +outliers {fp_out}/{seeds}   "
        f"{time.perf_counter() - t0:6.1f} s"
    )


def compare_methods() -> list[tuple[str, Callable[[np.ndarray], list[int]]]]:
    import warnings

    warnings.filterwarnings("ignore")
    out: list[tuple[str, Callable[[np.ndarray], list[int]]]] = []
    try:
        from otava.analysis import compute_change_points, compute_change_points_orig

        out.append(("otava compute_change_points p=.01", lambda x: [c.index for c in compute_change_points(list(x), max_pvalue=0.01)[0]]))
        out.append(("otava compute_change_points p=.001", lambda x: [c.index for c in compute_change_points(list(x), max_pvalue=0.001)[0]]))
        out.append(("otava e-divisive (orig) p=.01", lambda x: [c.index for c in compute_change_points_orig(x, max_pvalue=0.01, seed=0)[0]]))
    except ImportError:
        print("  (apache-otava not importable: skipped)")
    try:
        from signal_processing_algorithms.energy_statistics.energy_statistics import e_divisive

        def spa(x: np.ndarray) -> list[int]:
            np.random.seed(0)  # the library draws from the global numpy RNG
            return sorted(e_divisive(x, pvalue=0.01, permutations=199))

        out.append(("signal-processing-algorithms p=.01", spa))
    except ImportError:
        print("  (signal-processing-algorithms not importable: skipped)")
    try:
        import ruptures

        def pelt(x: np.ndarray) -> list[int]:
            s = np.log(x)
            sigma = np.median(np.abs(np.diff(s))) / 0.6745 / math.sqrt(2)  # robust noise scale
            pen = 2 * math.log(len(x)) * sigma**2 * 3
            return ruptures.Pelt(model="l2", min_size=3).fit(s).predict(pen=pen)[:-1]

        out.append(("ruptures Pelt l2 (BIC-like penalty)", pelt))
    except ImportError:
        print("  (ruptures not importable: skipped)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--compare", action="store_true", help="also run the third-party libraries if importable")
    args = ap.parse_args()
    n = args.seeds
    cfg = ChangePointConfig()
    print(f"surge.analysis.changepoints.detect, {cfg}; {n} seeds per suite; match = within +/-{TOL} points\n")

    times: list[float] = []
    found_by_size = {"10-20%": [0, 0], "20-35%": [0, 0], "35-50%": [0, 0]}
    hits = total = extra = covered = signs = matched = 0
    for s in range(n):
        x, cuts, shifts = shifted(s)
        t0 = time.perf_counter()
        cps = detect(x, cfg)
        times.append(time.perf_counter() - t0)
        h, e = score([c.index for c in cps], cuts)
        hits, total, extra = hits + h, total + len(cuts), extra + e
        for cut, sh in zip(cuts, shifts, strict=True):
            key = "10-20%" if abs(sh) < 0.20 else "20-35%" if abs(sh) < 0.35 else "35-50%"
            near = [c for c in cps if abs(c.index - cut) <= TOL]
            found_by_size[key][1] += 1
            if near:
                found_by_size[key][0] += 1
                c = min(near, key=lambda c: abs(c.index - cut))
                matched += 1
                covered += c.ci_low <= sh <= c.ci_high
                signs += (c.direction == "up") == (sh > 0) and (c.magnitude > 0) == (sh > 0)
    print("shifted (segments >= 10 points):")
    print(f"  shifts found within +/-{TOL}: {hits}/{total} = {hits / total:.1%}")
    for key, (f, t) in found_by_size.items():
        print(f"    shift {key}: {f}/{t} = {f / t:.1%}")
    print(f"  extra change points: {extra} in {n} series")
    print(f"  direction and magnitude sign right: {signs}/{matched} = {signs / matched:.1%}")
    print(f"  {1 - cfg.alpha:.0%} CI of the relative shift contains the true shift: {covered}/{matched} = {covered / matched:.1%}")
    print(f"  runtime per series: median {1e3 * np.median(times):.0f} ms, max {1e3 * max(times):.0f} ms")

    hits = total = extra = 0
    for s in range(n):
        x, cuts, _ = shifted(s, min_gap=5)
        h, e = score([c.index for c in detect(x, cfg)], cuts)
        hits, total, extra = hits + h, total + len(cuts), extra + e
    print("\nshifted, short segments (>= 5 points):")
    print(f"  shifts found within +/-{TOL}: {hits}/{total} = {hits / total:.1%}; extra change points: {extra}")

    hits = total = extra = 0
    for s in range(n):
        x, cuts, _ = shifted(s)
        spikes(x, np.random.default_rng(30_000 + s))
        h, e = score([c.index for c in detect(x, cfg)], cuts)
        hits, total, extra = hits + h, total + len(cuts), extra + e
    print("\nshifted + 1-3 isolated x3 spikes:")
    print(f"  shifts found within +/-{TOL}: {hits}/{total} = {hits / total:.1%}; extra change points: {extra}")

    hits = total = extra = 0
    for s in range(n):
        x, cuts, _ = shifted(s)
        h, e = score([c.index for c in detect(x, ChangePointConfig(alpha=0.001, permutations=999))], cuts)
        hits, total, extra = hits + h, total + len(cuts), extra + e
    print("\nshifted, alpha = 0.001 and 999 permutations:")
    print(f"  shifts found within +/-{TOL}: {hits}/{total} = {hits / total:.1%}; extra change points: {extra}")

    strict = ChangePointConfig(alpha=0.001, permutations=999)
    for label, out, base in (("stationary", False, 10_000), ("stationary + 1-3 isolated x3 spikes", True, 20_000)):
        print(f"\n{label}:")
        for c in (cfg, strict):
            counts = [len(detect(stationary(base + s, out), c)) for s in range(n)]
            bad = sum(k > 0 for k in counts)
            print(
                f"  alpha={c.alpha}, permutations={c.permutations}: series with any change point: "
                f"{bad}/{n} = {bad / n:.1%} (change points: {sum(counts)})"
            )

    same = 0
    for s in range(n):
        rng = np.random.default_rng(20_000 + s)
        x = 100.0 * rng.lognormal(0, 0.05, int(rng.integers(20, 201)))
        pos = spikes(x, rng)
        holes: list[float | None] = list(x)
        for p in pos:
            holes[p] = None
        same += detect(x, cfg) == detect(holes, cfg)
    print(f"  same answer as with the spikes replaced by None: {same}/{n}")

    print("\nsingle x3 spike at every position of a 40-point stationary series (20 seeds):")
    bad = 0
    for s in range(20):
        base = 100.0 * np.random.default_rng(40_000 + s).lognormal(0, 0.05, 40)
        for p in range(40):
            x = base.copy()
            x[p] *= 3
            bad += bool(detect(x, cfg))
    print(f"  series with any change point: {bad}/800")

    print("\nt-test calibration, stationary halves, nominal alpha = 1% (20,000 windows each):")
    rng = np.random.default_rng(50_000)
    for half in (3, 5, 10, 25):
        pooled0 = welch = 0
        for _ in range(20_000):
            w = rng.lognormal(0, 0.05, 2 * half)
            left, right = w[:half], w[half:]
            sd1, sd2 = left.std(), right.std()  # ddof=0, as Otava's TTestSignificanceTester
            sp = math.sqrt(((half - 1) * sd1**2 + (half - 1) * sd2**2) / (2 * half - 2))
            t = (right.mean() - left.mean()) / (sp * math.sqrt(2 / half))
            pooled0 += _t_sf2(abs(t), 2 * half - 2) <= 0.01
            welch += _welch(left, right)[1] <= 0.01
        print(f"  {half}+{half} points: pooled with ddof=0 (Otava) {pooled0 / 20_000:.2%}   Welch ddof=1 (surge) {welch / 20_000:.2%}")

    x = 100.0 * np.random.default_rng(0).lognormal(0, 0.05, 200)
    x[100:] *= 1.2
    x[150:] *= 0.8
    t0 = time.perf_counter()
    cps = detect(x, cfg)
    print(f"\n200 points, shifts +20% at 100 and -20% at 150: {time.perf_counter() - t0:.2f} s")
    for c in cps:
        print(
            f"  index {c.index}: {c.before_mean:.1f} -> {c.after_mean:.1f} ({c.magnitude:+.1%}, "
            f"{1 - cfg.alpha:.0%} CI {c.ci_low:+.1%} .. {c.ci_high:+.1%}), p = {c.p_value:.1e}, {c.direction}"
        )

    if args.compare:
        print(f"\ncomparison on the same series ({n} seeds; shifted segments >= 10 points):")
        for name, method in [("surge detect (defaults)", surge_method), *compare_methods()]:
            run_suite(name, method, n)


if __name__ == "__main__":
    main()
