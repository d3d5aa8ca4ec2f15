"""The latency histogram: exact merging, bounded percentile error, serialisation."""

from __future__ import annotations

import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surge.metrics.histogram import NBUCKETS, Histogram, bucket_bounds, bucket_index

US = 1_000
MS = 1_000_000
HOUR = 3_600_000_000_000

# Values from 1 us to 1 h in ns, plus the exact small range.
values_ns = st.integers(min_value=0, max_value=HOUR)
value_lists = st.lists(values_ns, min_size=0, max_size=300)
PCTS = (0.0, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0)

fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hist(values) -> Histogram:
    h = Histogram()
    h.record_many(np.asarray(list(values), dtype=np.int64))
    return h


def same(a: Histogram, b: Histogram) -> None:
    assert np.array_equal(a.counts, b.counts)
    assert a.count == b.count
    assert a.sum_ns == b.sum_ns
    assert a.min_ns == b.min_ns
    assert a.max_ns == b.max_ns


def nearest_rank(sorted_vals: list[int], q: float) -> int:
    """Exact nearest-rank percentile: the smallest value with at least q % of values <= it."""
    n = len(sorted_vals)
    rank = max(math.ceil(Fraction(str(q)) * n / 100), 1)
    return sorted_vals[rank - 1]


# --------------------------------------------------------------------------- merge


@fast
@given(value_lists, value_lists)
def test_merge_equals_histogram_of_concatenation(a, b):
    merged = hist(a).merge(hist(b))
    same(merged, hist(a + b))


@fast
@given(st.lists(value_lists, min_size=1, max_size=6))
def test_merge_is_associative_and_commutative(parts):
    forward = Histogram()
    for p in parts:
        forward.merge(hist(p))
    backward = Histogram()
    for p in reversed(parts):
        backward.merge(hist(p))
    everything = hist([v for p in parts for v in p])
    same(forward, everything)
    same(backward, everything)


def test_merge_into_empty_and_of_empty():
    h = hist([5 * MS, 7 * MS])
    same(Histogram().merge(h), h)
    same(h.copy().merge(Histogram()), h)
    e = Histogram().merge(Histogram())
    assert e.count == 0 and e.min_ns is None and e.max_ns is None


def test_copy_is_independent():
    h = hist([MS])
    c = h.copy()
    c.record(2 * MS)
    assert h.count == 1 and c.count == 2


@fast
@given(value_lists)
def test_count_sum_min_max_are_exact(vals):
    h = hist(vals)
    assert h.count == len(vals)
    assert int(h.counts.sum()) == len(vals)
    assert h.sum_ns == sum(vals)
    assert h.min_ns == (min(vals) if vals else None)
    assert h.max_ns == (max(vals) if vals else None)


# --------------------------------------------------------------------------- buckets


@fast
@given(st.integers(min_value=0, max_value=(1 << 42) - 1))
def test_every_value_lies_in_its_bucket_and_buckets_are_narrow(v):
    i = int(bucket_index(np.array([v]))[0])
    assert 0 <= i < NBUCKETS
    low, high = (int(x) for x in bucket_bounds(i))
    assert low <= v < high
    if v >= 256:
        assert (high - low) / low <= 1 / 128
    else:
        assert high - low == 1  # exact below 256 ns


def test_bucket_index_is_monotonic():
    v = np.unique(np.geomspace(1, HOUR, 20_000).astype(np.int64))
    idx = bucket_index(v)
    assert np.all(np.diff(idx) >= 0)


# --------------------------------------------------------------------------- percentiles


def _check_percentiles(vals: list[int]) -> None:
    h = hist(vals)
    s = sorted(vals)
    for q in PCTS:
        exact = nearest_rank(s, q)
        got = h.percentile(q)
        assert abs(got - exact) <= max(0.01 * exact, 0.5), (q, exact, got)
    # Reported values never leave the recorded range.
    vals_out = h.percentiles(PCTS)
    assert np.all(vals_out >= s[0]) and np.all(vals_out <= s[-1])
    assert np.all(np.diff(vals_out) >= 0)  # monotonic in q


# n is kept below 1000: at n = 1000, 2000, ... p99.9 hits the float rounding
# bug shown by test_p999_nearest_rank_float_rounding below.
@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=900),
    st.floats(min_value=np.log(US), max_value=np.log(60_000 * MS)),
    st.floats(min_value=0.1, max_value=2.0),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_percentiles_within_1pct_lognormal(n, mu, sigma, seed):
    rng = np.random.default_rng(seed)
    vals = np.clip(rng.lognormal(mu, sigma, n), US, HOUR).astype(np.int64).tolist()
    _check_percentiles(vals)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=900),
    st.integers(min_value=US, max_value=HOUR),
    st.integers(min_value=US, max_value=HOUR),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_percentiles_within_1pct_uniform(n, a, b, seed):
    lo, hi = min(a, b), max(a, b)
    rng = np.random.default_rng(seed)
    vals = rng.integers(lo, hi, n, endpoint=True).tolist()
    _check_percentiles(vals)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=US, max_value=HOUR), min_size=1, max_size=500))
def test_percentiles_within_1pct_arbitrary(vals):
    _check_percentiles(vals)


def test_percentiles_of_known_data():
    h = hist([i * MS for i in range(1, 101)])  # 1..100 ms
    assert h.percentile(50) == pytest.approx(50 * MS, rel=0.004)
    assert h.percentile(90) == pytest.approx(90 * MS, rel=0.004)
    assert h.percentile(99) == pytest.approx(99 * MS, rel=0.004)
    assert h.percentile(100) == pytest.approx(100 * MS, rel=0.004)
    assert h.max_ns == 100 * MS and h.min_ns == 1 * MS
    assert h.mean == pytest.approx(50.5 * MS)


def test_small_values_are_exact():
    vals = list(range(256))
    h = hist(vals)
    for q in (1, 25, 50, 75, 99, 100):
        assert h.percentile(q) == nearest_rank(vals, q)


def test_values_up_to_an_hour_and_beyond_clamp():
    h = hist([HOUR])
    assert h.percentile(50) == HOUR
    big = 100 * HOUR  # beyond the last bucket: clamped, but max stays exact
    h2 = hist([MS, big])
    assert h2.max_ns == big
    assert h2.percentile(100) <= big
    assert int(h2.counts.sum()) == 2


def test_negative_values_count_as_zero():
    h = hist([-5, 10])
    assert h.min_ns == 0 and h.count == 2


def test_p999_nearest_rank_float_rounding():
    vals = [1 * MS] * 999 + [1000 * MS]
    h = hist(vals)
    # 999 of 1000 values (99.9 %) are <= 1 ms: nearest-rank p99.9 is 1 ms.
    assert h.percentile(99.9) == pytest.approx(1 * MS, rel=0.01)


# --------------------------------------------------------------------------- empty


def test_empty_histogram():
    h = Histogram()
    assert h.count == 0
    assert math.isnan(h.percentile(50))
    assert all(math.isnan(x) for x in h.percentiles([0, 50, 100]))
    assert math.isnan(h.mean)
    assert h.spectrum() == []
    assert h.min_ns is None and h.max_ns is None
    assert "empty" in repr(h)
    h.record_many([])
    assert h.count == 0


# --------------------------------------------------------------------------- serialisation


@fast
@given(value_lists)
def test_encode_decode_round_trip(vals):
    h = hist(vals)
    text = h.encode()
    assert isinstance(text, str) and text.startswith("v2:")
    same(Histogram.decode(text), h)


@fast
@given(value_lists)
def test_dense_v1_encoding_of_older_runs_is_still_read(vals):
    import base64
    import zlib

    h = hist(vals)
    payload = base64.b64encode(zlib.compress(h.counts.tobytes())).decode()
    v1 = f"v1:{h.count}:{h.sum_ns}:{'' if h.min_ns is None else h.min_ns}:{'' if h.max_ns is None else h.max_ns}:{payload}"
    same(Histogram.decode(v1), h)


def test_decoded_histograms_stay_sparse_until_written():
    h = Histogram.decode(hist([MS, 2 * MS, 40 * MS]).encode())
    assert h._counts is None and len(h.nonzero()[0]) == 3
    assert h.percentile(50) == hist([MS, 2 * MS, 40 * MS]).percentile(50)
    acc = Histogram().merge(h).merge(h)
    assert acc.count == 6 and h._counts is None


@fast
@given(value_lists)
def test_pickle_round_trip(vals):
    h = hist(vals)
    same(pickle.loads(pickle.dumps(h)), h)


def test_round_trip_keeps_zero_min():
    h = hist([0, 0, 3])
    same(Histogram.decode(h.encode()), h)
    same(pickle.loads(pickle.dumps(h)), h)


def test_decoded_histogram_is_writable_and_mergeable():
    h = Histogram.decode(hist([MS, 2 * MS]).encode())
    h.record(3 * MS)
    h.merge(hist([4 * MS]))
    assert h.count == 4 and h.max_ns == 4 * MS


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "v9:1:1:1:1:eJwDAAAAAAE=",  # unknown version
        "v2:1:1:1:1:eJwDAAAAAAE=",  # no buckets but a count of 1
        "v1:1:1:1:1:not base64!!",
        "v1:1:1:1:1:" + "A" * 16,  # base64 but not zlib
        "v1:1:1:1:1:eJwDAAAAAAE=",  # zlib of b"": wrong number of buckets
        "v1:x:1:1:1:eJwDAAAAAAE=",
    ],
)
def test_corrupt_encoding_raises_value_error(text):
    with pytest.raises(ValueError):
        Histogram.decode(text)


def test_truncated_encoding_raises_value_error():
    text = hist([MS, 2 * MS, 3 * MS]).encode()
    with pytest.raises(ValueError):
        Histogram.decode(text[: len(text) - 10])
