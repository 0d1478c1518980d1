"""LatencyHistogram: the batched path must be indistinguishable from hdrh's record_value."""

from __future__ import annotations

import gc
import random
import tracemalloc

import numpy as np
import orjson
import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_mcpswarm.stats.histogram import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_FIGURES,
    LatencyHistogram,
    layout,
    mean_of_counts,
    percentiles_of_counts,
)

PERCENTILES = [0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100]
latencies = st.lists(
    st.one_of(st.integers(0, 4096), st.integers(0, 10_000_000), st.integers(0, HIGHEST_US)), max_size=300
)


def reference(values: list[int]) -> HdrHistogram:
    hdr = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
    for v in values:
        assert hdr.record_value(v)
    return hdr


def recorded(values: list[int]) -> LatencyHistogram:
    hist = LatencyHistogram()
    for v in values:
        hist.record(v)
    return hist


def assert_same_as_reference(hist: LatencyHistogram, ref: HdrHistogram) -> None:
    hdr = hist.hdr
    assert list(hdr.counts) == list(ref.counts)
    assert hdr.total_count == ref.total_count
    assert hdr.min_value == ref.min_value
    assert hdr.max_value == ref.max_value
    assert hist.encode() == ref.encode().decode("ascii")


def test_layout_matches_hdrh_for_every_slot() -> None:
    lay = layout()
    ref = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
    assert lay.counts_len == ref.counts_len
    for index in range(lay.counts_len):
        value = ref.get_value_from_index(index)
        assert lay.lowest[index] == value
        assert lay.highest[index] == ref.get_highest_equivalent_value(value)
        assert lay.median[index] == ref._hdr_median_equiv_value(value)
    # Every slot's bounds map back to that slot.
    idx = np.arange(lay.counts_len)
    assert np.array_equal(lay.counts_indices(lay.lowest), idx)
    assert np.array_equal(lay.counts_indices(lay.highest), idx)


@settings(max_examples=60, deadline=None)
@given(latencies)
def test_batched_record_equals_record_value(values: list[int]) -> None:
    assert_same_as_reference(recorded(values), reference(values))


def test_batched_record_equals_record_value_at_bucket_edges() -> None:
    edges = [0, 1, 2, 2047, 2048, 2049, 4095, 4096, 4097, 2**20 - 1, 2**20, 2**31, HIGHEST_US - 1, HIGHEST_US]
    rng = random.Random(7)
    values = edges + [rng.randrange(HIGHEST_US) for _ in range(5000)]
    assert_same_as_reference(recorded(values), reference(values))


def test_batches_below_the_first_bucket_edge_equal_record_value() -> None:
    # Values under 2048 us are their own slot: a batch of only those skips the float path.
    values = [*range(2048), 7, 7, 2047]
    assert_same_as_reference(recorded(values), reference(values))
    lay = layout()
    small = np.arange(lay.sub_bucket_count, dtype=np.int64)
    assert np.array_equal(lay.counts_indices(small), lay._counts_indices_of(small))


@settings(max_examples=60, deadline=None)
@given(latencies)
def test_percentiles_and_mean_equal_hdrh(values: list[int]) -> None:
    hist, ref = recorded(values), reference(values)
    assert hist.percentiles(PERCENTILES) == [ref.get_value_at_percentile(p) for p in PERCENTILES]
    assert hist.mean() == pytest.approx(ref.get_mean_value(), rel=1e-12)


def test_percentile_single_and_many_agree() -> None:
    hist = recorded(list(range(1, 10_001)))
    assert [hist.percentile(p) for p in PERCENTILES] == hist.percentiles(PERCENTILES)
    assert hist.percentile(50) == 5003  # 5000 lies in a 4-us-wide slot: its top is reported
    assert hist.min_us == 1 and hist.max_us == 10_000


def test_empty_histogram() -> None:
    hist = LatencyHistogram()
    assert hist.total_count == 0 == len(hist)
    assert hist.min_us is None and hist.max_us is None
    assert hist.percentiles([50, 99]) == [0, 0]
    assert hist.mean() == 0.0
    assert percentiles_of_counts(np.zeros(0, dtype=np.uint64), [50]) == [0]
    assert mean_of_counts(hist.counts) == 0.0
    back = LatencyHistogram.decode(hist.encode())
    assert back == hist and back.total_count == 0
    assert repr(hist) == "LatencyHistogram(empty)"


def test_record_is_bound_for_good_and_survives_flushes() -> None:
    hist = LatencyHistogram()
    record = hist.record  # a hot loop caches the bound method
    record(10)
    assert hist.total_count == 1  # a read flushes
    record(20)
    record(30)
    assert hist.total_count == 3
    assert hist.max_us == 30


def test_record_rejects_non_integers_immediately() -> None:
    hist = LatencyHistogram()
    with pytest.raises(TypeError):
        hist.record(1.5)  # type: ignore[arg-type]


def test_negative_value_raises_and_discards_the_batch() -> None:
    hist = LatencyHistogram()
    hist.record(5)
    hist.flush()
    hist.record(7)
    hist.record(-1)
    with pytest.raises(ValueError, match=r"latency must be >= 0 us, got -1"):
        hist.flush()
    # The bad batch is gone, the earlier data is intact, and recording goes on.
    assert hist.total_count == 1 and hist.max_us == 5
    hist.record(9)
    assert hist.total_count == 2


def test_values_above_one_hour_saturate() -> None:
    hist = recorded([HIGHEST_US * 5, 10])
    assert hist.max_us == HIGHEST_US
    assert hist.percentile(100) == reference([HIGHEST_US]).get_value_at_percentile(100)


def test_record_many_accepts_lists_and_arrays() -> None:
    values = [3, 1000, 77_777, 0]
    a = LatencyHistogram()
    a.record_many(values)
    b = LatencyHistogram()
    b.record(42)
    b.record_many(np.array(values, dtype=np.int32))  # pending 42 is folded too
    assert a == recorded(values)
    assert b == recorded([42, *values])
    a.record_many([])
    assert a.total_count == 4


def test_record_many_rejects_float_arrays() -> None:
    with pytest.raises(TypeError, match="integer microseconds"):
        LatencyHistogram().record_many(np.array([1.5]))


def test_encode_is_readable_by_plain_hdrh() -> None:
    values = [1, 500, 123_456, 9_999_999]
    hist = recorded(values)
    decoded = HdrHistogram.decode(hist.encode())
    assert decoded.get_total_count() == 4
    assert decoded.get_value_at_percentile(50) == reference(values).get_value_at_percentile(50)


def test_decode_of_hdrh_blob_without_min_max_uses_slot_bounds() -> None:
    values = [1001, 2_000_001]
    blob = reference(values).encode()
    hist = LatencyHistogram.decode(blob)
    assert hist.total_count == 2
    lay = layout()
    assert hist.min_us == 1001  # below 2048 every slot is 1 us wide
    assert hist.max_us == int(lay.highest[lay.counts_indices(np.array([2_000_001]))[0]])
    assert hist.max_us != 2_000_001
    exact = LatencyHistogram.decode(blob, min_us=1001, max_us=2_000_001)
    assert exact == recorded(values)


def test_decode_rejects_garbage_and_other_geometries() -> None:
    with pytest.raises(ValueError, match="not an HdrHistogram V2"):
        LatencyHistogram.decode("definitely not base64!")
    with pytest.raises(ValueError, match="not an HdrHistogram V2"):
        LatencyHistogram.decode("SGVsbG8gd29ybGQ=")
    other = HdrHistogram(1, 1_000_000, 2)
    other.record_value(5)
    with pytest.raises(ValueError, match="geometry"):
        LatencyHistogram.decode(other.encode())


def test_to_dict_round_trips_through_json() -> None:
    hist = recorded([7, 70, 700_000, 7_000_000])
    data = orjson.loads(orjson.dumps(hist.to_dict()))
    assert data["min"] == 7 and data["max"] == 7_000_000
    assert LatencyHistogram.from_dict(data) == hist
    with pytest.raises(ValueError, match="keys hdr, min, max"):
        LatencyHistogram.from_dict({"hdr": data["hdr"]})


@settings(max_examples=40, deadline=None)
@given(latencies, st.integers(1, 5))
def test_merge_of_parts_equals_recording_everything(values: list[int], parts: int) -> None:
    pieces = [recorded(values[i::parts]) for i in range(parts)]
    # Through the wire format, as a controller receives them.
    wired = [LatencyHistogram.from_dict(orjson.loads(orjson.dumps(p.to_dict()))) for p in pieces]
    merged = LatencyHistogram.merged(wired)
    assert merged == recorded(values)
    assert_same_as_reference(merged, reference(values))


def test_add_into_empty_keeps_exact_min() -> None:
    # hdrh's own add() would set min to 0 here (it reads get_min_value() of the empty side).
    target = LatencyHistogram()
    target.add(recorded([500, 900]))
    assert target.min_us == 500
    target.add(LatencyHistogram())
    assert target.min_us == 500 and target.total_count == 2


def test_copy_is_independent() -> None:
    original = recorded([1, 2, 3])
    clone = original.copy()
    clone.record(4)
    assert clone.total_count == 4 and original.total_count == 3


def test_from_counts_checks_shape_and_derives_bounds() -> None:
    with pytest.raises(ValueError, match="shape"):
        LatencyHistogram.from_counts(np.zeros(3, dtype=np.uint64), min_us=None, max_us=None)
    counts = recorded([10, 20]).counts.copy()
    hist = LatencyHistogram.from_counts(counts, min_us=None, max_us=None)
    assert (hist.min_us, hist.max_us, hist.total_count) == (10, 20, 2)
    empty = LatencyHistogram.from_counts(np.zeros_like(counts), min_us=3, max_us=4)
    assert empty.total_count == 0 and empty.min_us is None


def test_counts_view_is_read_only() -> None:
    counts = recorded([5]).counts
    with pytest.raises(ValueError, match="read-only"):
        counts[0] = 1


def test_equality_and_repr() -> None:
    a, b = recorded([100, 200]), recorded([200, 100])
    assert a == b
    assert a != recorded([100, 201])
    assert a != recorded([100])
    assert a.__eq__(object()) is NotImplemented
    assert repr(a) == "LatencyHistogram(n=2, min=100, p50=100, p99=200, max=200)"
    with pytest.raises(TypeError):
        hash(a)


def sealed(values: list[int]) -> LatencyHistogram:
    hist = recorded(values)
    hist.seal()
    assert hist.sealed
    return hist


@settings(max_examples=40, deadline=None)
@given(latencies)
def test_a_sealed_histogram_reads_like_the_open_one(values: list[int]) -> None:
    open_, closed = recorded(values), sealed(values)
    assert closed == open_ and open_ == closed
    assert closed.total_count == open_.total_count
    assert (closed.min_us, closed.max_us) == (open_.min_us, open_.max_us)
    assert closed.percentiles(PERCENTILES) == open_.percentiles(PERCENTILES)
    assert closed.mean() == open_.mean()
    assert closed.to_dict() == open_.to_dict()
    assert repr(closed) == repr(open_)
    assert closed.sealed  # reading does not unseal


def test_sealed_counts_outlive_the_temporary_decode() -> None:
    counts = sealed([5, 5, 70_000]).counts
    gc.collect()
    assert int(counts.sum()) == 3 and counts.flags.writeable is False


def test_add_keeps_a_sealed_histogram_sealed_and_exact() -> None:
    target = sealed([10, 20])
    target.add(recorded([30]))
    target.add(sealed([1, 40_000]))
    target.add(LatencyHistogram())
    assert target.sealed
    assert target == recorded([10, 20, 30, 1, 40_000])
    empty = sealed([])
    empty.add(sealed([7]))
    assert empty.sealed and empty == recorded([7]) and empty.min_us == 7


def test_recording_into_a_sealed_histogram_reopens_it() -> None:
    hist = sealed([100, 200])
    record = hist.record  # bound before sealing: still the live buffer
    record(300)
    hist.record_many([400])
    assert hist == recorded([100, 200, 300, 400])
    assert not hist.sealed
    hist.seal()
    hist.seal()  # idempotent
    assert hist.sealed and hist == recorded([100, 200, 300, 400])
    assert hist.hdr.total_count == 4 and not hist.sealed  # hdrh access reopens


def test_sealing_keeps_only_the_blob() -> None:
    # The point of sealing: a second of traffic costs about a kilobyte, not a 190 KiB counts array.
    rng = random.Random(3)
    batches = [[int(rng.lognormvariate(6.0, 0.6)) for _ in range(2000)] for _ in range(50)]
    sealed(batches[0])  # first use builds the cached bucket layout: not part of a histogram
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [sealed(values) for values in batches]
        gc.collect()
        per_histogram = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_histogram < 4096, per_histogram
    assert kept[0] == recorded(batches[0])
