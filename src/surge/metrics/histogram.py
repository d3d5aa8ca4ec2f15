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
ENCODING_VERSION = 2  # v2: sparse (index, count) pairs; v1 (dense zlib) is still read


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

    # A histogram is kept sparse ((index, count) pairs of its non-empty buckets) until
    # something writes to it: a run read back from disk holds one histogram per key and
    # second (86k for an hour with 8 names), and dense arrays of 36 KiB each would need
    # 3 GiB, and decoding them took 230 us each. Accumulators (merge, record) go dense.
    __slots__ = ("_counts", "_nz", "_vals", "count", "sum_ns", "min_ns", "max_ns")

    def __init__(self) -> None:
        self._counts: np.ndarray | None = None
        self._nz: np.ndarray = _EMPTY_IDX
        self._vals: np.ndarray = _EMPTY_VALS
        self.count = 0
        self.sum_ns = 0
        self.min_ns: int | None = None
        self.max_ns: int | None = None

    @property
    def counts(self) -> np.ndarray:
        """Dense bucket counts (int64, NBUCKETS long); makes the histogram dense."""
        if self._counts is None:
            c = np.zeros(NBUCKETS, dtype=np.int64)
            c[self._nz] = self._vals
            self._counts = c
            self._nz, self._vals = _EMPTY_IDX, _EMPTY_VALS
        return self._counts

    @counts.setter
    def counts(self, value: np.ndarray) -> None:
        self._counts = value
        self._nz, self._vals = _EMPTY_IDX, _EMPTY_VALS

    def nonzero(self) -> tuple[np.ndarray, np.ndarray]:
        """(bucket indices, counts) of the non-empty buckets, indices ascending."""
        if self._counts is None:
            return self._nz, self._vals
        nz = np.flatnonzero(self._counts)
        return nz, self._counts[nz]

    @classmethod
    def from_sparse(cls, idx: np.ndarray, vals: np.ndarray, count: int, sum_ns: int,
                    min_ns: int | None, max_ns: int | None) -> Histogram:
        """A histogram from its non-empty buckets (``idx`` ascending and unique)."""
        h = cls()
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= NBUCKETS):
            raise ValueError("histogram bucket index out of range")
        h._nz, h._vals = idx, np.asarray(vals, dtype=np.int64)
        h.count, h.sum_ns, h.min_ns, h.max_ns = int(count), int(sum_ns), min_ns, max_ns
        return h

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
        if other._counts is None:
            self.counts[other._nz] += other._vals  # indices are unique: plain fancy-index add
        else:
            self.counts += other._counts
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
        nz, cnt = self.nonzero()
        cum = np.cumsum(cnt)
        # Round before ceil: 99.9 / 100 * 1000 is 999.0000000000001 in floating point.
        ranks = np.maximum(np.ceil(np.round(qs * self.count / 100.0, 9)), 1).astype(np.int64)
        pos = np.minimum(np.searchsorted(cum, ranks, side="left"), len(nz) - 1)
        vals = bucket_mid(nz[pos]).astype(np.float64)
        return np.clip(vals, self.min_ns, self.max_ns)

    @property
    def mean(self) -> float:
        """Mean in ns (exact: kept as a running sum); nan when empty."""
        return self.sum_ns / self.count if self.count else float("nan")

    def spectrum(self) -> list[tuple[float, float]]:
        """(percentile, value ns) pairs of the non-empty buckets: the HdrHistogram plot."""
        nz, cnt = self.nonzero()
        if nz.size == 0:
            return []
        cum = np.cumsum(cnt)
        pct = cum / self.count * 100.0
        vals = np.clip(bucket_bounds(nz)[1] - 1, self.min_ns, self.max_ns)
        return list(zip(pct.tolist(), vals.astype(float).tolist(), strict=True))

    # -- serialisation -----------------------------------------------------
    def __getstate__(self) -> tuple:
        # Sparse for pickling between processes: a second's histogram has few
        # non-empty buckets, the dense array is 36 KiB.
        nz, vals = self.nonzero()
        return (nz.astype(np.uint16), vals, self.count, self.sum_ns, self.min_ns, self.max_ns)

    def __setstate__(self, state: tuple) -> None:
        nz, vals, self.count, self.sum_ns, self.min_ns, self.max_ns = state
        self._counts = None
        self._nz, self._vals = nz.astype(np.int64), np.asarray(vals, dtype=np.int64)

    def encode(self) -> str:
        """Compact text form: ``v2:<count>:<sum>:<min>:<max>:<base64(zlib(idx u16[], counts i64[]))>``."""
        nz, vals = self.nonzero()
        raw = nz.astype("<u2").tobytes() + vals.astype("<i8").tobytes()
        payload = base64.b64encode(zlib.compress(raw, 6)).decode("ascii")
        return (
            f"v{ENCODING_VERSION}:{self.count}:{self.sum_ns}:"
            f"{self.min_ns if self.min_ns is not None else ''}:"
            f"{self.max_ns if self.max_ns is not None else ''}:{payload}"
        )

    @classmethod
    def decode(cls, text: str) -> Histogram:
        """Read :meth:`encode` output (v2, or the dense v1 of older run directories)."""
        try:
            ver, count, total, lo, hi, payload = text.split(":", 5)
            raw = zlib.decompress(base64.b64decode(payload))
            if ver == "v2":
                n, rem = divmod(len(raw), 10)
                if rem:
                    raise ValueError("sparse payload has a partial entry")
                idx = np.frombuffer(raw[: 2 * n], dtype="<u2").astype(np.int64)
                vals = np.frombuffer(raw[2 * n:], dtype="<i8").astype(np.int64)
                if n and (np.any(np.diff(idx) <= 0)):
                    raise ValueError("bucket indices are not ascending")
            elif ver == "v1":
                dense = np.frombuffer(raw, dtype=np.int64)
                if dense.size != NBUCKETS:
                    raise ValueError("histogram has the wrong number of buckets")
                idx = np.flatnonzero(dense)
                vals = dense[idx].copy()
            else:
                raise ValueError(f"unsupported histogram encoding {ver!r}")
            if int(vals.sum()) != int(count):
                raise ValueError("bucket counts do not add up to the count")
            return cls.from_sparse(idx, vals, int(count), int(total), int(lo) if lo else None,
                                   int(hi) if hi else None)
        except (ValueError, zlib.error, TypeError) as exc:
            raise ValueError(f"corrupt encoded histogram: {exc}") from None


_EMPTY_IDX = np.zeros(0, dtype=np.int64)
_EMPTY_VALS = np.zeros(0, dtype=np.int64)
