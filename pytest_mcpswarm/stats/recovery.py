"""Recovery time after a fault, from the per-second time series (pure; no I/O, no clock).

The input is what the report's ``timeseries`` holds (``TimeSeries.rows()``):
one row per second ``t`` with ``rps``, ``p99_ms``, ``errors``, ``timeouts`` and
``not_sent``.  Given when the fault window started and ended (seconds since
the run start), the *baseline* is every whole second before the fault, and
the run has *recovered* at the first second, from the one the fault ended in
onwards, in which

- throughput is back: ``rps >= (1 - tolerance) * baseline rps`` (the mean of
  the baseline seconds);
- latency is back: ``p99 <= max((1 + tolerance) * baseline p99, baseline p99 +
  p99_slack_ms)``, where baseline p99 is the highest per-second p99 before
  the fault (the slack keeps sub-millisecond jitter on a fast local server
  from reading as "not recovered");
- failures are back: the second's failure rate, ``(errors + timeouts +
  not_sent) / all outcomes``, is at most ``(1 + tolerance) * baseline rate +
  error_slack``.

``recovery_s`` is the start of that second minus the end of the fault,
clamped at 0, so its resolution is one second.  Per-second p99 values are
read from the rows; the baseline does not re-merge histograms, so this works
on a saved JSON report as well as on a live snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Baseline:
    rps: float
    p99_ms: float
    failure_rate: float
    seconds: int


@dataclass(frozen=True)
class Recovery:
    """Where the run came back; ``recovered_at_s`` and ``recovery_s`` are None if it never did."""

    baseline: Baseline
    fault_end_s: float
    recovered_at_s: int | None
    recovery_s: float | None

    @property
    def recovered(self) -> bool:
        return self.recovered_at_s is not None


def _failed(row: Row) -> int:
    return int(row.get("errors", 0)) + int(row.get("timeouts", 0)) + int(row.get("not_sent", 0))


def _ok_count(row: Row) -> float:
    # ``rps`` is (ok + errors) per covered second, so for a whole second ok = rps - errors.
    return max(0.0, float(row.get("rps", 0.0)) - int(row.get("errors", 0)))


def failure_rate(row: Row) -> float:
    """(errors + timeouts + not_sent) / all outcomes of one second; 0.0 for an empty second."""
    failed = _failed(row)
    total = _ok_count(row) + failed
    return failed / total if total else 0.0


def baseline(rows: Sequence[Row], fault_start_s: float, *, skip_first_s: int = 1) -> Baseline:
    """The pre-fault reference: whole seconds in ``[skip_first_s, fault_start_s)`` that have a p99.

    The first second is skipped by default (connections opening, caches warming).
    Raises ValueError when no such second exists, rather than inventing a baseline.
    """
    before = [
        r
        for r in rows
        if skip_first_s <= int(r["t"]) and int(r["t"]) + 1 <= fault_start_s and r.get("p99_ms") is not None
    ]
    if not before:
        raise ValueError(
            f"no whole second with answers between t={skip_first_s}s and the fault start "
            f"({fault_start_s:g}s): start the fault later or the run earlier"
        )
    failed = sum(_failed(r) for r in before)
    total = sum(_ok_count(r) + _failed(r) for r in before)
    return Baseline(
        rps=sum(float(r["rps"]) for r in before) / len(before),
        p99_ms=max(float(r["p99_ms"]) for r in before),
        failure_rate=failed / total if total else 0.0,
        seconds=len(before),
    )


def healthy(
    row: Row, base: Baseline, *, tolerance: float = 0.1, p99_slack_ms: float = 1.0, error_slack: float = 0.0
) -> bool:
    """Is this second within ``tolerance`` of the baseline on throughput, p99 and failure rate?"""
    p99 = row.get("p99_ms")
    if p99 is None:
        return False
    if float(row.get("rps", 0.0)) < (1.0 - tolerance) * base.rps:
        return False
    if float(p99) > max((1.0 + tolerance) * base.p99_ms, base.p99_ms + p99_slack_ms):
        return False
    return failure_rate(row) <= (1.0 + tolerance) * base.failure_rate + error_slack


def recovery_time(
    rows: Sequence[Row],
    fault_start_s: float,
    fault_end_s: float,
    *,
    tolerance: float = 0.1,
    p99_slack_ms: float = 1.0,
    error_slack: float = 0.0,
    run_end_s: float | None = None,
    skip_first_s: int = 1,
) -> Recovery:
    """How long after ``fault_end_s`` the run was back within ``tolerance`` of its pre-fault self.

    ``run_end_s`` (the run's elapsed time) excludes the drain seconds after the
    last scheduled send, whose throughput is not comparable.
    """
    if not (math.isfinite(fault_start_s) and math.isfinite(fault_end_s)) or fault_end_s < fault_start_s:
        raise ValueError(f"fault window [{fault_start_s}, {fault_end_s}] is not a time span")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    base = baseline(rows, fault_start_s, skip_first_s=skip_first_s)
    first = math.floor(fault_end_s)
    for row in sorted(rows, key=lambda r: int(r["t"])):
        t = int(row["t"])
        if t < first:
            continue
        if run_end_s is not None and t + 1 > run_end_s:
            break
        if healthy(row, base, tolerance=tolerance, p99_slack_ms=p99_slack_ms, error_slack=error_slack):
            return Recovery(base, fault_end_s, t, max(0.0, t - fault_end_s))
    return Recovery(base, fault_end_s, None, None)
