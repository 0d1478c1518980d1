"""Is the load generator itself the bottleneck?  A pure verdict over what each worker measured.

A generator that cannot keep up sends late; with latency measured from the
intended send time, that lateness lands in the server's percentiles.  So
every run checks the generator, and a run it judges *generator-bound* says
so in the terminal, the JSON (``"generator_bound": true`` with the evidence
under ``"generator"``) and the HTML report.

A run is generator-bound when any of these holds:

- schedule lag (how late sends left, compared with their intended time) has
  a p99 above ``lag_bound_ms`` *and* at least ``lag_share`` of the latency
  p99: the tail is the generator's lateness, not the server's queueing;
- event-loop lag p99 is above ``loop_lag_bound_ms``: callbacks waited that
  long for the loop, replies included, so latencies are inflated too;
- requests were dropped as ``not_sent: late``;
- a worker used more than ``cpu_bound`` of a core over the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GeneratorRule:
    lag_bound_ms: float = 5.0
    lag_share: float = 0.5
    loop_lag_bound_ms: float = 20.0
    cpu_bound: float = 0.9

    def reasons(
        self,
        *,
        schedule_lag_p99_ms: float | None,
        latency_p99_ms: float | None,
        loop_lag_p99_ms: float | None = None,
        not_sent_late: int = 0,
        worker_cpu: Sequence[float] = (),
    ) -> list[str]:
        """Why the generator was the bottleneck; empty when it was not."""
        out: list[str] = []
        lag = schedule_lag_p99_ms
        if lag is not None and lag > self.lag_bound_ms:
            p99 = latency_p99_ms
            if p99 is None or lag >= self.lag_share * p99:
                tail = "" if p99 is None else f" (latency p99 {p99:.1f} ms)"
                out.append(f"schedule lag p99 {lag:.1f} ms > {self.lag_bound_ms:g} ms{tail}")
        if loop_lag_p99_ms is not None and loop_lag_p99_ms > self.loop_lag_bound_ms:
            out.append(f"event-loop lag p99 {loop_lag_p99_ms:.1f} ms > {self.loop_lag_bound_ms:g} ms")
        if not_sent_late:
            out.append(f"{not_sent_late} requests not sent because the generator fell behind schedule")
        busy = [(i, c) for i, c in enumerate(worker_cpu) if c > self.cpu_bound]
        if busy:
            shown = ", ".join(f"worker {i} {c:.0%}" for i, c in busy)
            out.append(f"worker CPU above {self.cpu_bound:.0%} of a core: {shown}")
        return out


DEFAULT_RULE = GeneratorRule()
