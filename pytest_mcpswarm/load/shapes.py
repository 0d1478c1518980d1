"""Load shapes (executors) as pure functions of time.

**Open model** (``Ramp``; wrk2's constant throughput): every connection sends
at times fixed in advance, whatever the server does, so a slow server shows up
as latency (measured from the *intended* send time) instead of silently
lowering the load.  Connection counts and per-connection rates follow stages,
each ramping linearly from the previous stage's values to its own over its
duration (a stage of duration 0 is a step).  With ``Λ(t) = ∫₀ᵗ rate`` the
number of sends per connection so far, connection ``i`` sends whenever
``Λ(t) = k + φᵢ`` for an integer ``k`` while it is running; ``φᵢ`` is a
per-connection phase in [0, 1) so connections do not fire in lockstep.  For a
constant rate that is ``t = (k + φᵢ) / rate``.  Because sends are grid points
of one function, the number scheduled in any time span is an exact integer,
and counts over adjacent spans add up: the accounting relies on that.

**Closed model** (``ClosedModel``): one request in flight per connection; the
next one is scheduled when the previous answer arrives.  Nothing to count in
advance: each request is scheduled the moment it is issued.

**Churn** (``Churn``): a connection is closed and reopened every N calls.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from pytest_mcpswarm.errors import UsageError

#: Fractional part of the golden ratio: i * this mod 1 spreads phases evenly
#: for *any* number of running connections (a low-discrepancy sequence).
_GOLDEN: Final = (math.sqrt(5) - 1) / 2

FloatArray = npt.NDArray[np.float64]


def _check_number(name: str, value: float, *, positive: bool = False) -> None:
    ok = isinstance(value, int | float) and math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        kind = "a positive" if positive else "a non-negative"
        raise UsageError(f"{name} must be {kind} finite number, got {value!r}")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{name} must be a whole number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Stage:
    """Ramp linearly to ``connections`` connections sending ``rate`` msg/s each, over ``duration_s``."""

    duration_s: float
    connections: int
    rate: float

    def __post_init__(self) -> None:
        _check_number("stage duration", self.duration_s)
        _check_count("stage connections", self.connections)
        _check_number("stage rate", self.rate)


class ConnectionSpan(NamedTuple):
    """Connection number ``connection`` runs during ``[start_s, stop_s)``."""

    connection: int
    start_s: float
    stop_s: float


@dataclass(frozen=True)
class Ramp:
    """Open-model schedule: connections and per-connection rate over time.

    Before the first stage the load is ``start_connections`` at ``start_rate``
    (default: the first stage's rate, so a ramp of connections keeps the rate).
    """

    stages: tuple[Stage, ...]
    start_connections: int = 0
    start_rate: float | None = None
    # Breakpoints: time, connections, rate, and Λ (sends per connection so far).
    _t: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _c: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _r: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _lam: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stages:
            raise UsageError("a load shape needs at least one stage")
        _check_count("start connections", self.start_connections)
        rate0 = self.stages[0].rate if self.start_rate is None else self.start_rate
        _check_number("start rate", rate0)
        t, c, r, lam = [0.0], [self.start_connections], [float(rate0)], [0.0]
        for stage in self.stages:
            # Trapezoid: the rate is linear within a stage, so this is exact.
            lam.append(lam[-1] + (r[-1] + stage.rate) / 2 * stage.duration_s)
            t.append(t[-1] + stage.duration_s)
            c.append(stage.connections)
            r.append(float(stage.rate))
        if t[-1] <= 0:
            raise UsageError("a load shape must last longer than 0 s")
        object.__setattr__(self, "_t", tuple(t))
        object.__setattr__(self, "_c", tuple(c))
        object.__setattr__(self, "_r", tuple(r))
        object.__setattr__(self, "_lam", tuple(lam))

    @classmethod
    def constant(cls, connections: int, rate: float, duration_s: float) -> Ramp:
        """``connections`` connections each sending ``rate`` msg/s for ``duration_s``."""
        return cls((Stage(duration_s, connections, rate),), start_connections=connections)

    @property
    def duration_s(self) -> float:
        return self._t[-1]

    @property
    def max_connections(self) -> int:
        return max(self._c)

    # -- instantaneous values -----------------------------------------------------

    def _segment(self, t: float) -> int:
        # Last breakpoint <= t; with zero-length stages that is the last of the
        # equal times, so the segment after it is never empty (right-continuous).
        return bisect.bisect_right(self._t, t) - 1

    def _interp(self, values: Sequence[float], t: float) -> float:
        j = self._segment(t)
        t0, t1 = self._t[j], self._t[j + 1]
        return values[j] + (values[j + 1] - values[j]) * (t - t0) / (t1 - t0)

    def rate_at(self, t: float) -> float:
        """Per-connection rate (msg/s) at ``t``; 0 outside ``[0, duration)``."""
        if not 0 <= t < self.duration_s:
            return 0.0
        return self._interp(self._r, t)

    def target_connections_at(self, t: float) -> float:
        """Linearly interpolated (fractional) connection target at ``t``; 0 outside the run."""
        if not 0 <= t < self.duration_s:
            return 0.0
        return self._interp(self._c, t)

    def connections_at(self, t: float) -> int:
        """Connections running at ``t``: ``floor(target_connections_at(t))`` (see ``connection_spans``)."""
        return sum(1 for span in self.connection_spans() if span.start_s <= t < span.stop_s)

    def sends_before(self, t: float) -> float:
        """Λ(t): how many sends one connection running since 0 has made before ``t``."""
        if t <= 0:
            return 0.0
        if t >= self.duration_s:
            return self._lam[-1]
        j = self._segment(t)
        u, width = t - self._t[j], self._t[j + 1] - self._t[j]
        slope = (self._r[j + 1] - self._r[j]) / width
        return self._lam[j] + self._r[j] * u + slope * u * u / 2

    def _time_of(self, y: FloatArray) -> FloatArray:
        """Λ⁻¹ for an ascending array of values in [0, Λ(end))."""
        steady = self._steady_time_of(y)
        return self._quadratic_time_of(y) if steady is None else steady

    def _steady_time_of(self, y: FloatArray) -> FloatArray | None:
        """Λ⁻¹ when all of ``y`` falls in one segment of constant rate (the common chunk), else None.

        The quadratic's root is then ``d / r0`` exactly (``sqrt(r0²) == r0`` in IEEE
        arithmetic), so this agrees with ``_quadratic_time_of`` bit for bit, at a
        third of its cost (12 against 33 ns a send time on the 2-core test VM).
        """
        if not y.size:
            return None
        j = bisect.bisect_right(self._lam, float(y[0])) - 1
        r0 = self._r[j]
        if not (r0 > 0 and r0 == self._r[j + 1] and float(y[-1]) < self._lam[j + 1]):
            return None
        out: FloatArray = self._t[j] + np.clip((y - self._lam[j]) / r0, 0.0, self._t[j + 1] - self._t[j])
        return out

    def _quadratic_time_of(self, y: FloatArray) -> FloatArray:
        """Λ⁻¹ for an array of values in [0, Λ(end)): solve each value's segment's quadratic."""
        lam = np.asarray(self._lam)
        t = np.asarray(self._t)
        r = np.asarray(self._r)
        j = np.searchsorted(lam, y, side="right") - 1
        # Λ_j <= y < Λ_{j+1}, so segment j has positive length and positive area.
        width = t[j + 1] - t[j]
        slope = (r[j + 1] - r[j]) / width
        d = y - lam[j]
        # 2d / (r0 + sqrt(r0² + 2·slope·d)) is the stable root for either sign
        # of slope; the denominator is 0 only when r0 = 0 and d = 0, i.e. u = 0.
        denom = r[j] + np.sqrt(np.maximum(r[j] * r[j] + 2 * slope * d, 0.0))
        u = np.divide(2 * d, denom, out=np.zeros_like(d), where=denom > 0)
        out: FloatArray = t[j] + np.clip(u, 0.0, width)
        return out

    # -- connections ----------------------------------------------------------------

    def connection_spans(self) -> list[ConnectionSpan]:
        """When each connection runs, sorted by start.

        Connection ``i`` runs while the target is at least ``i + 1``: it starts
        when a rising ramp reaches ``i + 1`` and stops when a falling one drops
        to ``i + 1`` (so at that single instant ``connections_at`` is one less
        than the floor of the target).  Everything stops at the end of the run.
        """
        spans: list[ConnectionSpan] = []
        for i in range(self.max_connections):
            spans.extend(ConnectionSpan(i, a, b) for a, b in self._intervals(i))
        return sorted(spans, key=lambda s: (s.start_s, s.connection))

    def _intervals(self, i: int) -> list[tuple[float, float]]:
        need = i + 1
        out: list[tuple[float, float]] = []
        for j in range(len(self._t) - 1):
            t0, t1, c0, c1 = self._t[j], self._t[j + 1], self._c[j], self._c[j + 1]
            if t1 <= t0:
                continue  # a step: the next segment starts at the new value
            if c0 == c1:
                piece = (t0, t1) if c0 >= need else None
            elif c1 > c0:
                piece = (t0 + max(0, need - c0) * (t1 - t0) / (c1 - c0), t1) if need < c1 else None
            else:
                # Falls to ``need`` inside the segment only if c1 < need.
                end = t0 + (c0 - need) * (t1 - t0) / (c0 - c1) if c1 < need else t1
                piece = (t0, end) if c0 >= need else None
            if piece is None or piece[1] <= piece[0]:
                continue
            if out and out[-1][1] == piece[0]:
                out[-1] = (out[-1][0], piece[1])  # continues across a stage boundary
            else:
                out.append(piece)
        return out

    # -- sends ------------------------------------------------------------------------

    @staticmethod
    def phase(connection: int) -> float:
        """Connection ``i`` sends when Λ(t) - phase(i) is a whole number."""
        return (connection * _GOLDEN) % 1.0

    def _grid(self, connection: int, a: float, b: float) -> list[tuple[int, int, float, float]]:
        phase = self.phase(connection)
        out = []
        for start, stop in self._intervals(connection):
            lo, hi = max(start, a), min(stop, b)
            if hi <= lo:
                continue
            # k + phase in [Λ(lo), Λ(hi)): the same Λ(boundary) is used by the
            # spans on both sides of a boundary, so adjacent counts add up.
            k_lo = math.ceil(self.sends_before(lo) - phase)
            k_hi = math.ceil(self.sends_before(hi) - phase)
            if k_hi > k_lo:
                out.append((k_lo, k_hi, lo, hi))
        return out

    def send_count(self, connection: int, a: float = 0.0, b: float = math.inf) -> int:
        """Exact number of sends connection ``connection`` has scheduled in ``[a, b)``."""
        return sum(k_hi - k_lo for k_lo, k_hi, _, _ in self._grid(connection, a, b))

    def send_times(self, connection: int, a: float = 0.0, b: float = math.inf) -> FloatArray:
        """Intended send times (s since start) of ``connection`` in ``[a, b)``, ascending.

        ``len(send_times(c, a, b)) == send_count(c, a, b)`` always.
        """
        phase = self.phase(connection)
        parts: list[FloatArray] = []
        for k_lo, k_hi, lo, hi in self._grid(connection, a, b):
            times = self._time_of(np.arange(k_lo, k_hi, dtype=np.float64) + phase)
            # Rounding in Λ⁻¹ must not push a time out of its span.
            parts.append(np.clip(times, lo, np.nextafter(hi, -math.inf)))
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)

    def scheduled_count(self, a: float = 0.0, b: float = math.inf) -> int:
        """Exact number of requests all connections have scheduled in ``[a, b)``."""
        return sum(self.send_count(i, a, b) for i in range(self.max_connections))


@dataclass(frozen=True, slots=True)
class ClosedModel:
    """One request in flight per connection; connections follow ``ramp`` (its rates are ignored).

    A connection sends its next request ``think_time_s`` after the previous
    answer, until the end of its span.  The count is not known in advance:
    count a request as scheduled when it is issued.
    """

    ramp: Ramp
    think_time_s: float = 0.0

    def __post_init__(self) -> None:
        _check_number("think time", self.think_time_s)

    @classmethod
    def constant(cls, connections: int, duration_s: float, think_time_s: float = 0.0) -> ClosedModel:
        return cls(Ramp.constant(connections, 0.0, duration_s), think_time_s)

    def next_send(self, answered_at_s: float, stop_s: float) -> float | None:
        """When to send after an answer at ``answered_at_s``; None when the connection's span is over."""
        t = answered_at_s + self.think_time_s
        return t if t < stop_s else None


@dataclass(frozen=True, slots=True)
class Churn:
    """Connect, make ``calls_per_connection`` calls, close, reconnect: a connection's life cycle."""

    calls_per_connection: int

    def __post_init__(self) -> None:
        if isinstance(self.calls_per_connection, bool) or not (
            isinstance(self.calls_per_connection, int) and self.calls_per_connection >= 1
        ):
            raise UsageError(
                f"churn calls per connection must be a whole number >= 1, got {self.calls_per_connection!r}"
            )

    def session_of(self, call: int) -> tuple[int, int]:
        """``(session, call within session)`` of the ``call``-th call (0-based) on a connection slot."""
        if call < 0:
            raise ValueError(f"call index must be >= 0, got {call}")
        return divmod(call, self.calls_per_connection)

    def opens_before(self, call: int) -> bool:
        """Does the connection have to be (re)opened before this call?"""
        return self.session_of(call)[1] == 0

    def closes_after(self, call: int) -> bool:
        """Is the connection closed once this call is answered?"""
        return self.session_of(call)[1] == self.calls_per_connection - 1

    def sessions(self, calls: int) -> int:
        """Connections opened to make ``calls`` calls."""
        return -(-calls // self.calls_per_connection)
