"""Log-linear latency histogram with bounded relative error.

Values are integer nanoseconds. Layout (HdrHistogram-like, 7 significant bits):

- values 0..255 ns have one bucket each (exact);
- above that, each power-of-two range [2^e, 2^(e+1)) is cut into 128 equal
  buckets, so a bucket's width is at most 1/128 of its lower bound.

Reporting a bucket's midpoint therefore errs by at most 1/256 (0.39 %) of the
true value, for every value from 1 us to 1 h and beyond (up to 2^42 ns ~ 73 min;
larger values are clamped into the last bucket and counted in ``max_ns`` exactly).

Counts live in a dense ``int64`` numpy array of :data:`NBUCKETS` (36 KiB), so
memory is bounded whatever the run length, merging is exact (element-wise
addition) and recording a batch is one vectorised ``np.bincount``.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable

import numpy as np

SUB_BITS = 7
SUB = 1 << SUB_BITS  # 128 linear sub-buckets per power of two
MAX_EXP = 42  # 2^42 ns = 73.3 min
NBUCKETS = (MAX_EXP - SUB_BITS + 1) * SUB  # 4608
ENCODING_VERSION = 1


def bucket_index(values_ns: np.ndarray) -> np.ndarray:
    """Bucket index of each value (int ns); negative values count as 0."""
    v = np.clip(np.asarray(values_ns, dtype=np.int64), 0, (1 << MAX_EXP) - 1)
    # frexp gives v = m * 2**e with m in [0.5, 1): e is the bit length of v.
    _, e = np.frexp(v.astype(np.float64))
    shift = np.maximum(e.astype(np.int64) - (SUB_BITS + 1), 0)
    return np.where(shift == 0, v, shift * SUB + (v >> shift))


def bucket_bounds(index: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Lower (inclusive) and upper (exclusive) bound in ns of bucket ``index``."""
    i = np.asarray(index, dtype=np.int64)
    small = i < 2 * SUB
    shift = np.where(small, 0, i // SUB - 1)
    mant = np.where(small, i, i - shift * SUB)
    low = mant << shift
    high = (mant + 1) << shift
    return low, high


def bucket_mid(index: np.ndarray | int) -> np.ndarray:
    low, high = bucket_bounds(index)
    return np.where(high - low <= 1, low, (low + high) / 2.0)


class Histogram:
    """A mergeable latency histogram (int ns in, ms/ns out).

    >>> h = Histogram(); h.record_many([20_000_000, 21_000_000]); round(h.percentile(50) / 1e6, 1)
    20.0
    """

    __slots__ = ("counts", "count", "sum_ns", "min_ns", "max_ns")

    def __init__(self) -> None:
        self.counts = np.zeros(NBUCKETS, dtype=np.int64)
        self.count = 0
        self.sum_ns = 0
        self.min_ns: int | None = None
        self.max_ns: int | None = None

    def __repr__(self) -> str:
        if not self.count:
            return "Histogram(empty)"
        return (
            f"Histogram(n={self.count}, p50={self.percentile(50) / 1e6:.3f}ms, "
            f"p99={self.percentile(99) / 1e6:.3f}ms, max={self.max_ns / 1e6:.3f}ms)"
        )

    # -- recording ---------------------------------------------------------
    def record(self, value_ns: int) -> None:
        self.record_many(np.array([value_ns], dtype=np.int64))

    def record_many(self, values_ns: Iterable[int] | np.ndarray) -> None:
        """Record a batch of values in ns (vectorised)."""
        v = np.asarray(values_ns, dtype=np.int64)
        if v.size == 0:
            return
        v = np.maximum(v, 0)
        self.counts += np.bincount(bucket_index(v), minlength=NBUCKETS)[:NBUCKETS]
        self.count += int(v.size)
        self.sum_ns += int(v.sum())
        lo, hi = int(v.min()), int(v.max())
        self.min_ns = lo if self.min_ns is None else min(self.min_ns, lo)
        self.max_ns = hi if self.max_ns is None else max(self.max_ns, hi)

    def merge(self, other: Histogram) -> Histogram:
        """Add ``other`` into this histogram (exact); returns self."""
        if other.count == 0:
            return self
        self.counts += other.counts
        self.count += other.count
        self.sum_ns += other.sum_ns
        for attr, pick in (("min_ns", min), ("max_ns", max)):
            a, b = getattr(self, attr), getattr(other, attr)
            setattr(self, attr, b if a is None else pick(a, b))
        return self

    def copy(self) -> Histogram:
        h = Histogram()
        return h.merge(self)

    # -- reading -----------------------------------------------------------
    def percentile(self, q: float) -> float:
        """Value in ns at percentile ``q`` (0-100); nan when empty.

        Nearest-rank definition: the smallest recorded value such that at least
        q % of values are <= it, reported as its bucket's midpoint (clamped to
        the exact min and max).
        """
        return float(self.percentiles([q])[0])

    def percentiles(self, qs: Iterable[float]) -> np.ndarray:
        qs = np.asarray(list(qs), dtype=np.float64)
        if self.count == 0:
            return np.full(qs.shape, np.nan)
        cum = np.cumsum(self.counts)
        # Round before ceil: 99.9 / 100 * 1000 is 999.0000000000001 in floating point.
        ranks = np.maximum(np.ceil(np.round(qs * self.count / 100.0, 9)), 1).astype(np.int64)
        idx = np.searchsorted(cum, ranks, side="left")
        vals = bucket_mid(idx).astype(np.float64)
        return np.clip(vals, self.min_ns, self.max_ns)

    @property
    def mean(self) -> float:
        """Mean in ns (exact: kept as a running sum); nan when empty."""
        return self.sum_ns / self.count if self.count else float("nan")

    def spectrum(self) -> list[tuple[float, float]]:
        """(percentile, value ns) pairs of the non-empty buckets: the HdrHistogram plot."""
        nz = np.nonzero(self.counts)[0]
        if nz.size == 0:
            return []
        cum = np.cumsum(self.counts[nz])
        pct = cum / self.count * 100.0
        vals = np.clip(bucket_bounds(nz)[1] - 1, self.min_ns, self.max_ns)
        return list(zip(pct.tolist(), vals.astype(float).tolist(), strict=True))

    # -- serialisation -----------------------------------------------------
    def __getstate__(self) -> tuple:
        # Sparse for pickling between processes: a second's histogram has few
        # non-empty buckets, the dense array is 36 KiB.
        nz = np.flatnonzero(self.counts).astype(np.uint16)
        return (nz, self.counts[nz], self.count, self.sum_ns, self.min_ns, self.max_ns)

    def __setstate__(self, state: tuple) -> None:
        nz, vals, self.count, self.sum_ns, self.min_ns, self.max_ns = state
        self.counts = np.zeros(NBUCKETS, dtype=np.int64)
        self.counts[nz.astype(np.int64)] = vals

    def encode(self) -> str:
        """Compact text form: ``v1:<count>:<sum>:<min>:<max>:<base64(zlib(counts))>``."""
        payload = base64.b64encode(zlib.compress(self.counts.tobytes(), 6)).decode("ascii")
        return (
            f"v{ENCODING_VERSION}:{self.count}:{self.sum_ns}:"
            f"{self.min_ns if self.min_ns is not None else ''}:"
            f"{self.max_ns if self.max_ns is not None else ''}:{payload}"
        )

    @classmethod
    def decode(cls, text: str) -> Histogram:
        try:
            ver, count, total, lo, hi, payload = text.split(":", 5)
            if ver != f"v{ENCODING_VERSION}":
                raise ValueError(f"unsupported histogram encoding {ver!r}")
            counts = np.frombuffer(zlib.decompress(base64.b64decode(payload)), dtype=np.int64)
            if counts.size != NBUCKETS:
                raise ValueError("histogram has the wrong number of buckets")
        except (ValueError, zlib.error, TypeError) as exc:
            raise ValueError(f"corrupt encoded histogram: {exc}") from None
        h = cls()
        h.counts = counts.copy()
        h.count = int(count)
        h.sum_ns = int(total)
        h.min_ns = int(lo) if lo else None
        h.max_ns = int(hi) if hi else None
        return h
