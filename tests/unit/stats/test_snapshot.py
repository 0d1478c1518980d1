"""StatsSnapshot: N workers' snapshots, through JSON, merge to exactly one recording."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from pytest_mcpswarm.stats.snapshot import FORMAT, StatsSnapshot

Event = tuple[str, tuple[Any, ...]]
METHODS = ("tools/call", "resources/read", "ping")


def random_events(seed: int, n: int = 3000) -> list[Event]:
    """A plausible run: every scheduled request ends in exactly one outcome."""
    rng = random.Random(seed)
    events: list[Event] = [("record_connect", (0.0,)) for _ in range(4)]
    for i in range(n):
        t = i * 12.0 / n
        method = rng.choice(METHODS)
        events.append(("record_scheduled", (method,)))
        roll = rng.random()
        if roll < 0.05:
            events.append(("record_not_sent", (method, t, rng.choice(["not_connected", "behind_schedule"]))))
            continue
        events.append(("record_sent", (method,)))
        done = t + rng.random() * 0.01
        if roll < 0.85:
            events.append(("record_ok", (method, done, int(rng.lognormvariate(7, 1)))))
        elif roll < 0.95:
            events.append(
                ("record_error", (method, done, rng.choice(["jsonrpc:-32601", "transport:closed"])))
            )
        else:
            events.append(("record_timeout", (method, done)))
        if rng.random() < 0.002:
            events.append(("record_disconnect", (t,)))
    events.append(("mark_elapsed", (12.0,)))
    return events


def play(snap: StatsSnapshot, events: list[Event]) -> None:
    for name, args in events:
        method: Callable[..., None] = getattr(snap, name)
        method(*args)


def wire(snap: StatsSnapshot) -> StatsSnapshot:
    return StatsSnapshot.from_dict(orjson.loads(orjson.dumps(snap.to_dict())))


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_merging_worker_snapshots_equals_one_recording(workers: int) -> None:
    events = random_events(seed=workers)
    whole = StatsSnapshot()
    play(whole, events)
    parts = [StatsSnapshot() for _ in range(workers)]
    for i, event in enumerate(events):
        play(parts[i % workers], [event])
    merged = StatsSnapshot.merged(wire(p) for p in reversed(parts))
    assert merged == whole
    assert merged.accounting_ok() and whole.accounting_ok()
    assert merged.series.rows() == whole.series.rows()
    for metric in ("p50", "p99", "max", "mean", "error_rate", "rps", "not_sent"):
        assert merged.overall(metric) == whole.overall(metric), metric
    assert merged.windows("p99", 5) == whole.windows("p99", 5)


def test_deltas_taken_over_time_merge_to_the_whole() -> None:
    events = random_events(seed=9)
    whole = StatsSnapshot()
    play(whole, events)
    worker = StatsSnapshot()
    controller = StatsSnapshot()
    for chunk in range(0, len(events), 700):
        play(worker, events[chunk : chunk + 700])
        controller.merge(wire(worker.take()))  # a window may straddle two deltas
    controller.merge(wire(worker.take()))
    assert controller == whole
    assert worker.methods == {} and worker.series.windows == {}
    assert worker.series.elapsed_s == 12.0  # elapsed time carries over


def test_totals_and_overall_metrics() -> None:
    snap = StatsSnapshot()
    for _ in range(4):
        snap.record_scheduled("ping")
        snap.record_sent("ping")
    snap.record_ok("ping", 0.1, 1000)
    snap.record_ok("ping", 1.2, 3000)
    snap.record_error("ping", 1.5, "jsonrpc:-32603")
    snap.record_timeout("ping", 1.9)
    snap.record_scheduled("tools/call", 2)
    snap.record_not_sent("tools/call", 0.5, "not_connected", 2)
    snap.mark_elapsed(2.0)
    assert snap.accounting_ok()
    total = snap.outcomes
    assert (total.scheduled, total.ok, total.errors, total.timeouts, total.not_sent) == (6, 2, 1, 1, 2)
    assert snap.latency.total_count == 2
    assert snap.overall("rps") == 1.5  # (2 ok + 1 error) / 2 s
    assert snap.overall("error_rate") == 0.25
    assert snap.overall("timeout_rate") == 0.25
    assert snap.overall("not_sent") == 2.0
    assert snap.overall("max") == 3000.0
    assert snap.windows("rps", 1) == [(0, 1.0), (1, 2.0)]
    assert snap.windows("not_sent", 2) == [(0, 2.0)]


def test_accounting_catches_a_lost_request() -> None:
    snap = StatsSnapshot()
    snap.record_scheduled("ping", 2)
    snap.record_sent("ping")
    snap.record_ok("ping", 0.0, 10)
    assert not snap.accounting_ok()


def test_method_is_created_once() -> None:
    snap = StatsSnapshot()
    assert snap.method("ping") is snap.method("ping")
    assert snap != StatsSnapshot()
    assert snap.__eq__(None) is NotImplemented


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"format": 99, "methods": {}, "series": {}}, "format 1"),
        ([1, 2], "format 1"),
        ({"format": FORMAT}, "malformed"),
        ({"format": FORMAT, "methods": {"ping": {}}, "series": {"elapsed_s": 0, "windows": []}}, "malformed"),
    ],
)
def test_from_dict_refuses_anything_else(data: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StatsSnapshot.from_dict(data)
