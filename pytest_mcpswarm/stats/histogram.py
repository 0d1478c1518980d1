"""Latency histograms: a cheap hot path in front of an HdrHistogram.

Values are **integer microseconds**, trackable from 1 us to 1 hour with 3
significant digits (so every reported value is within 0.1 % of the truth).
Microseconds rather than nanoseconds because the counts array is then 22
buckets instead of 32, and a load generator written in Python cannot time a
request more precisely than a microsecond anyway.

``hdrh.HdrHistogram.record_value`` costs about 0.6 us, more than the time a
worker has per request at 50k msg/s.  So ``LatencyHistogram.record`` *is*
``array.append`` (about 30 ns): raw values wait in an ``array('q')`` and are
folded into the HdrHistogram's own counts array in one vectorised numpy step
(bucket index for every value, then ``bincount``) the next time anything reads
the histogram.  The fold reproduces ``record_value`` bit for bit: same counts,
same total, same min and max, so ``encode()`` yields the same bytes.

Min and max are kept *exact* (the raw values, not bucket bounds) so that a
histogram decoded with its ``min_us``/``max_us`` and merged stays identical to
one that recorded everything itself.

A histogram's counts array is ~190 KiB whatever it holds.  One that will
rarely change again (a finished one-second window) can be ``seal()``ed: it
then keeps only its V2 blob (under a kilobyte for a typical second) plus its
exact total, min and max.  A sealed histogram reads, merges, compares and
serialises exactly like an open one; reads decode into a temporary array,
``add`` keeps it sealed, and recording into it reopens it for good.
"""

from __future__ import annotations

import array
import binascii
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from hdrh.codec import HdrCookieException, HdrLengthException
from hdrh.histogram import HdrHistogram

LOWEST_US: Final = 1
HIGHEST_US: Final = 3_600_000_000
SIGNIFICANT_FIGURES: Final = 3

Counts = npt.NDArray[np.uint64]


class _Layout:
    """The bucket geometry of our histograms, precomputed once as numpy arrays."""

    def __init__(self) -> None:
        probe = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
        self.counts_len: int = probe.counts_len
        self.unit_magnitude: int = probe.unit_magnitude
        self.sub_bucket_mask: int = probe.sub_bucket_mask
        self.half_count: int = probe.sub_bucket_half_count
        self.half_count_magnitude: int = probe.sub_bucket_half_count_magnitude
        self.sub_bucket_count: int = probe.sub_bucket_count
        index = np.arange(self.counts_len, dtype=np.int64)
        # Value at the bottom of each counts slot (hdrh get_value_from_index).
        bucket = (index >> self.half_count_magnitude) - 1
        sub = (index & (self.half_count - 1)) + self.half_count
        first = bucket < 0
        sub[first] -= self.half_count
        bucket[first] = 0
        self.lowest: npt.NDArray[np.int64] = sub << (bucket + self.unit_magnitude)
        # Width of each slot (hdrh _hdr_size_of_equiv_value_range).
        b = self.bucket_indices(self.lowest)
        s = self.lowest >> (b + self.unit_magnitude)
        b = np.where(s >= self.sub_bucket_count, b + 1, b)
        size = np.left_shift(np.int64(1), b + self.unit_magnitude)
        self.highest: npt.NDArray[np.int64] = self.lowest + size - 1
        self.median: npt.NDArray[np.int64] = self.lowest + (size >> 1)

    def bucket_indices(self, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        # bit_length(v | mask) via frexp: exact because our values are < 2**53.
        _, exponent = np.frexp((values | self.sub_bucket_mask).astype(np.float64))
        return exponent.astype(np.int64) - self.unit_magnitude - (self.half_count_magnitude + 1)

    def counts_indices(self, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """hdrh ``_counts_index_for`` for a whole array of values at once.

        A value below ``sub_bucket_count`` (2048 us) is its own index, and most
        latencies and schedule lags are: when at most a quarter are above, only
        those take the float path (5 against 13 ns a value with a tenth of them
        above, 0.7 with none; 2-core test VM).
        """
        big = values >= self.sub_bucket_count
        n_big = int(np.count_nonzero(big))
        if n_big == 0:
            return values
        if n_big * 4 > len(values):
            return self._counts_indices_of(values)
        indices = values.copy()
        indices[big] = self._counts_indices_of(values[big])
        return indices

    def _counts_indices_of(self, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        bucket = self.bucket_indices(values)
        sub = values >> (bucket + self.unit_magnitude)
        return ((bucket + 1) << self.half_count_magnitude) + sub - self.half_count


@lru_cache(maxsize=1)
def layout() -> _Layout:
    return _Layout()


def _counts_view(hdr: HdrHistogram) -> Counts:
    # The ctypes array inside hdrh's encoder *is* the histogram: a numpy view
    # lets us add into it in place, and encode() then sees our counts.
    view: Counts = np.ctypeslib.as_array(hdr.counts)
    return view


@dataclass(frozen=True, slots=True)
class _Binned:
    """A batch of values as counts per slot, with its exact total, min and max."""

    counts: Counts
    total: int
    low: int
    high: int

    @classmethod
    def of(cls, values: npt.NDArray[Any]) -> _Binned | None:
        """Bin ``values`` (integer microseconds); None for an empty batch."""
        if values.size == 0:
            return None
        values = values.astype(np.int64, copy=False).ravel()
        low = int(values.min())
        if low < 0:
            raise ValueError(f"latency must be >= 0 us, got {low}: measure from a monotonic clock")
        high = int(values.max())
        if high > HIGHEST_US:
            values = np.minimum(values, HIGHEST_US)
            high = HIGHEST_US
        lay = layout()
        # bincount is one C pass; np.add.at is slower for large batches.
        counts = np.bincount(lay.counts_indices(values), minlength=lay.counts_len).astype(np.uint64)
        return cls(counts, int(values.size), low, high)


@dataclass(frozen=True, slots=True)
class _Sealed:
    """A histogram at rest: its V2 blob and the exact figures the blob does not carry."""

    blob: str
    total: int
    min_value: int  # hdrh's own fields: maxsize and 0 when empty
    max_value: int


def _decode_hdr(blob: str | bytes) -> HdrHistogram:
    try:
        return HdrHistogram.decode(blob)
    except (
        ValueError,
        TypeError,
        binascii.Error,
        zlib.error,
        HdrCookieException,
        HdrLengthException,
    ) as exc:
        raise ValueError(f"not an HdrHistogram V2 base64 blob: {exc!r}") from exc


def _release(hdr: HdrHistogram) -> None:
    # hdrh's histogram and its encoder point at each other: without this a
    # dropped histogram's counts wait for the cyclic GC instead of going now.
    hdr.encoder = None


def percentiles_of_counts(counts: Counts, percentiles: Sequence[float]) -> list[int]:
    """hdrh ``get_value_at_percentile`` for each percentile, in one pass over ``counts``.

    Same rounding as hdrh: the target count is ``int(p * total / 100 + 0.5)``
    (at least 1); a non-zero percentile reports the *highest* value of the
    slot that reaches it, percentile 0 the lowest.  Empty counts give 0.
    """
    cumulative = np.cumsum(counts, dtype=np.uint64)
    total = int(cumulative[-1]) if len(cumulative) else 0
    if total == 0:
        return [0 for _ in percentiles]
    lay = layout()
    out: list[int] = []
    for p in percentiles:
        target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)
        index = int(np.searchsorted(cumulative, target, side="left"))
        out.append(int(lay.highest[index] if p else lay.lowest[index]))
    return out


def mean_of_counts(counts: Counts) -> float:
    """hdrh ``get_mean_value``: each slot counts at its median value (0.0 when empty)."""
    nonzero = np.flatnonzero(counts)
    if len(nonzero) == 0:
        return 0.0
    median = layout().median
    # Python ints: count * value can exceed 2**63 summed over a long run.
    total = sum(int(counts[i]) for i in nonzero)
    weighted = sum(int(counts[i]) * int(median[i]) for i in nonzero)
    return weighted / total


class LatencyHistogram:
    """An HdrHistogram of microsecond latencies with a batched recording path.

    ``record(us)`` only appends to a buffer; everything that reads the
    histogram folds the buffer in first.  Not thread-safe (one per task/loop).
    Either open (``_hdr`` holds the counts) or sealed (``_sealed`` holds the
    blob), never both.
    """

    __slots__ = ("_hdr", "_pending", "_sealed", "record")

    record: Callable[[int], None]
    """Hot path: append one latency in integer microseconds (>= 0; above 1 hour saturates)."""

    def __init__(self) -> None:
        self._hdr: HdrHistogram | None = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
        self._sealed: _Sealed | None = None
        self._pending = array.array("q")
        self.record = self._pending.append

    # -- recording -------------------------------------------------------------

    def record_many(self, values: Iterable[int] | npt.NDArray[np.integer[Any]]) -> None:
        """Record many values at once (folded immediately)."""
        self.flush()
        arr = values if isinstance(values, np.ndarray) else np.fromiter(values, dtype=np.int64)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"latencies must be integer microseconds, got dtype {arr.dtype}")
        self._fold(arr)

    @staticmethod
    def record_many_in(histograms: Sequence[LatencyHistogram], values: npt.NDArray[np.int64]) -> None:
        """``record_many(values)`` on each of ``histograms``, the values binned only once."""
        binned = _Binned.of(values)
        if binned is None:
            return
        for histogram in histograms:
            histogram.flush()
            histogram._add_binned(binned)

    def flush(self) -> None:
        """Fold the pending buffer into the histogram.  Readers call this themselves."""
        pending = self._pending
        if not pending:
            return
        # Copy out and clear in place (not swap): callers may hold ``record``
        # bound to this very buffer.  Clearing first means a ValueError below
        # cannot leave a bad value pending forever.
        view = np.frombuffer(pending, dtype=np.int64)
        values = view.copy()
        del view  # release the buffer export, or the array cannot shrink
        del pending[:]
        self._fold(values)

    def _fold(self, values: npt.NDArray[Any]) -> None:
        binned = _Binned.of(values)
        if binned is not None:
            self._add_binned(binned)

    def _add_binned(self, binned: _Binned) -> None:
        hdr = self._open()
        counts = _counts_view(hdr)
        counts += binned.counts
        hdr.total_count += binned.total
        hdr.min_value = min(hdr.min_value, binned.low)
        hdr.max_value = max(hdr.max_value, binned.high)

    # -- sealing ---------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        """True while only the compact blob is kept (see ``seal``)."""
        return self._sealed is not None

    def seal(self) -> None:
        """Drop the counts array and keep the encoded blob: for a histogram that is done changing.

        Nothing observable changes.  Reads decode the blob into a temporary
        array each time; ``add`` decodes, adds and seals again; recording
        reopens the histogram (and it stays open until sealed again).
        """
        self.flush()
        hdr = self._hdr
        if hdr is None:
            return
        blob: bytes = hdr.encode()
        self._sealed = _Sealed(blob.decode("ascii"), int(hdr.total_count), hdr.min_value, hdr.max_value)
        self._hdr = None
        _release(hdr)

    def _open(self) -> HdrHistogram:
        """The histogram to write into: a sealed one is decoded back and stays open."""
        hdr = self._hdr
        if hdr is None:
            hdr = self._hdr = self._unsealed()
            self._sealed = None
        return hdr

    def _unsealed(self) -> HdrHistogram:
        # The decoded histogram carries slot bounds for min/max: restore the exact ones.
        sealed = self._sealed
        assert sealed is not None
        hdr = _decode_hdr(sealed.blob)
        hdr.total_count = sealed.total
        hdr.min_value = sealed.min_value
        hdr.max_value = sealed.max_value
        return hdr

    def _counts_now(self) -> Counts:
        """The counts (flushed); a sealed histogram's are decoded into a temporary array."""
        self.flush()
        if self._hdr is not None:
            return _counts_view(self._hdr)
        sealed = self._sealed
        assert sealed is not None
        decoded = _decode_hdr(sealed.blob)
        view = _counts_view(decoded)  # keeps the counts alive, not the histogram
        _release(decoded)
        return view

    # -- reading ---------------------------------------------------------------

    @property
    def hdr(self) -> HdrHistogram:
        """The underlying ``hdrh.HdrHistogram`` (flushed, unsealed); for iterators and dumps."""
        self.flush()
        return self._open()

    @property
    def counts(self) -> Counts:
        """Read-only view of the counts array (flushed)."""
        view = self._counts_now().view()
        view.flags.writeable = False
        return view

    @property
    def total_count(self) -> int:
        self.flush()
        sealed = self._sealed
        if sealed is not None:
            return sealed.total
        assert self._hdr is not None
        return int(self._hdr.total_count)

    def __len__(self) -> int:
        return self.total_count

    def _bounds(self) -> tuple[int, int] | None:
        if not self.total_count:
            return None
        sealed = self._sealed
        if sealed is not None:
            return int(sealed.min_value), int(sealed.max_value)
        assert self._hdr is not None
        return int(self._hdr.min_value), int(self._hdr.max_value)

    @property
    def min_us(self) -> int | None:
        """Exact smallest recorded value, None when empty."""
        bounds = self._bounds()
        return None if bounds is None else bounds[0]

    @property
    def max_us(self) -> int | None:
        """Exact largest recorded value, None when empty."""
        bounds = self._bounds()
        return None if bounds is None else bounds[1]

    def percentile(self, p: float) -> int:
        """Value at percentile ``p`` (0..100) in us, exactly as hdrh computes it; 0 when empty."""
        return self.percentiles([p])[0]

    def percentiles(self, ps: Sequence[float]) -> list[int]:
        if not self.total_count:
            return [0 for _ in ps]
        return percentiles_of_counts(self._counts_now(), ps)

    def mean(self) -> float:
        """Mean in us as HdrHistogram defines it (bucket medians); 0.0 when empty."""
        if not self.total_count:
            return 0.0
        return mean_of_counts(self._counts_now())

    # -- merging and the wire format ------------------------------------------

    def add(self, other: LatencyHistogram) -> None:
        """Merge ``other`` into this histogram exactly (counts, total, min, max); sealed stays sealed."""
        self.flush()
        total, bounds = other.total_count, other._bounds()
        if bounds is None:
            return
        reseal = self._sealed is not None
        hdr = self._open()
        _counts_view(hdr)[:] += other._counts_now()
        hdr.total_count += total
        # Not hdrh's add(): it takes min from get_min_value(), which is 0 for an
        # empty histogram, so merging into an empty one would lose the min.
        hdr.min_value = min(hdr.min_value, bounds[0])
        hdr.max_value = max(hdr.max_value, bounds[1])
        if reseal:
            self.seal()

    def copy(self) -> LatencyHistogram:
        clone = LatencyHistogram()
        clone.add(self)
        return clone

    @classmethod
    def merged(cls, histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
        out = cls()
        for h in histograms:
            out.add(h)
        return out

    @classmethod
    def from_counts(cls, counts: Counts, *, min_us: int | None, max_us: int | None) -> LatencyHistogram:
        """Build from a counts array of our layout (e.g. a sliding-window sum)."""
        lay = layout()
        if counts.shape != (lay.counts_len,):
            raise ValueError(f"counts must have shape ({lay.counts_len},), got {counts.shape}")
        out = cls()
        total = int(counts.sum(dtype=np.uint64))
        if total == 0:
            return out
        hdr = out._open()
        _counts_view(hdr)[:] = counts
        hdr.total_count = total
        nonzero = np.flatnonzero(counts)
        hdr.min_value = int(lay.lowest[nonzero[0]]) if min_us is None else min_us
        hdr.max_value = int(lay.highest[nonzero[-1]]) if max_us is None else max_us
        return out

    def encode(self) -> str:
        """HdrHistogram V2 compressed, base64 (readable by every HdrHistogram port)."""
        self.flush()
        sealed = self._sealed
        if sealed is not None:
            return sealed.blob
        assert self._hdr is not None
        blob: bytes = self._hdr.encode()
        return blob.decode("ascii")

    @classmethod
    def decode(
        cls, blob: str | bytes, *, min_us: int | None = None, max_us: int | None = None
    ) -> LatencyHistogram:
        """Inverse of ``encode``.  V2 blobs carry no exact min/max: pass them to keep them.

        Without them min/max are the bounds of the lowest/highest non-empty slot
        (what every HdrHistogram port reports).  A blob of another geometry
        (other range or precision) is refused rather than silently rebucketed.
        """
        decoded = _decode_hdr(blob)
        geometry = (
            decoded.lowest_trackable_value,
            decoded.highest_trackable_value,
            decoded.significant_figures,
        )
        if geometry != (LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES):
            raise ValueError(
                f"histogram geometry {geometry} is not ({LOWEST_US}, {HIGHEST_US}, {SIGNIFICANT_FIGURES})"
            )
        out = cls.from_counts(_counts_view(decoded), min_us=min_us, max_us=max_us)
        _release(decoded)
        return out

    def to_dict(self) -> dict[str, Any]:
        """orjson-able form that round-trips exactly: ``{"hdr": base64, "min": us, "max": us}``."""
        return {"hdr": self.encode(), "min": self.min_us, "max": self.max_us}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyHistogram:
        try:
            blob, low, high = data["hdr"], data["min"], data["max"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"histogram dict needs keys hdr, min, max: {exc!r}") from exc
        return cls.decode(blob, min_us=low, max_us=high)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return (
            self.total_count == other.total_count
            and self.min_us == other.min_us
            and self.max_us == other.max_us
            and bool(np.array_equal(self.counts, other.counts))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        if not self.total_count:
            return "LatencyHistogram(empty)"
        p50, p99 = self.percentiles([50, 99])
        return (
            f"LatencyHistogram(n={self.total_count}, min={self.min_us}, "
            f"p50={p50}, p99={p99}, max={self.max_us})"
        )
