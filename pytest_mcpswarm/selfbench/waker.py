"""Driver: a process that does nothing but wake on a 1 ms grid; prints one JSON line.

``python -m pytest_mcpswarm.selfbench.waker SECONDS``

No event loop, no socket, no work: it sleeps to the next millisecond
boundary of ``CLOCK_MONOTONIC``, over and over, and reports the CPU time
(``getrusage``) those wake-ups cost.  That is what the operating system (and
on a VM, the hypervisor) charges any process that keeps a 1 ms tick, so it
is the least a second load-generating process can add.  Run beside one
worker on the same core, it bounds goal (d) from below.
"""

from __future__ import annotations

import resource
import sys
import time

import orjson

TICK_NS = 1_000_000


def process_cpu_seconds() -> float:
    # Not the engine's helper: importing the engine would load numpy into a process meant to be bare.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wake(seconds: float) -> dict[str, float]:
    cpu0 = process_cpu_seconds()
    start = time.monotonic_ns()
    end = start + int(seconds * 1e9)
    due = (start // TICK_NS + 1) * TICK_NS
    wakes = 0
    while (now := time.monotonic_ns()) < end:
        if due > now:
            time.sleep((due - now) / 1e9)
            wakes += 1
        due += TICK_NS
    return {
        "requests": wakes,
        "seconds": (time.monotonic_ns() - start) / 1e9,
        "cpu_s": process_cpu_seconds() - cpu0,
    }


def main() -> int:
    sys.stdout.buffer.write(orjson.dumps(wake(float(sys.argv[1]))) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
