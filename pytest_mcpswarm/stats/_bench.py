"""Measure the recording cost: ``hdrh.record_value`` vs ``LatencyHistogram.record`` + fold.

Run: ``python -m pytest_mcpswarm.stats._bench [SAMPLES] [BATCH]``.  Not a test:
timings depend on the machine, so nothing here asserts.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

from hdrh.histogram import HdrHistogram

from pytest_mcpswarm.stats.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_FIGURES, LatencyHistogram


def _best_of(runs: int, fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        best = min(best, time.perf_counter_ns() - start)
    return best


def main(argv: list[str]) -> None:
    samples = int(argv[0]) if argv else 1_000_000
    batch = int(argv[1]) if len(argv) > 1 else 50_000
    rng = random.Random(1)
    # Latency-like values: mostly 100 us .. 5 ms, a long tail to 2 s.
    values = [int(rng.lognormvariate(7.0, 1.0)) for _ in range(samples)]

    def plain() -> None:
        hdr = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
        record = hdr.record_value
        for v in values:
            record(v)

    def loop_only() -> None:
        for _ in values:
            pass

    def hot_path() -> None:
        hist = LatencyHistogram()
        for v in values:
            hist.record(v)

    def batched() -> None:
        # What a worker does: record on the hot path, fold every ``batch`` samples.
        hist = LatencyHistogram()
        for start in range(0, samples, batch):
            for v in values[start : start + batch]:
                hist.record(v)
            hist.flush()

    runs = 3
    per = {
        name: _best_of(runs, fn) / samples
        for name, fn in [
            ("empty loop", loop_only),
            ("hdrh record_value", plain),
            ("record() only", hot_path),
            ("record() + fold", batched),
        ]
    }
    print(f"{samples} samples, fold every {batch}, best of {runs} (ns/sample, loop included):")
    for name, ns in per.items():
        print(f"  {name:<20} {ns:8.1f}")
    print(f"  {'fold share':<20} {per['record() + fold'] - per['record() only']:8.1f}")
    print(f"  speed-up vs record_value: {per['hdrh record_value'] / per['record() + fold']:.1f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
