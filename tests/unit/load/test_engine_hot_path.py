"""The open model's coalesced hot path, without a network: schedule lag and a failed batch write."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_mcpswarm.errors import TransportError
from pytest_mcpswarm.load.connection import LoadConnection
from pytest_mcpswarm.load.engine import Engine
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage

_MS = 1_000_000


def _engine() -> Engine:
    plan = RunPlan(
        target="ws://127.0.0.1:1/mcp/ws",
        methods=(MethodSpec("ping", None, 1.0),),
        stages=(Stage(1.0, 1, 1000.0),),
        start_connections=1,
    )
    return Engine(plan)


def _ready(engine: Engine, send_many: object) -> LoadConnection:
    conn = LoadConnection(engine, 0)
    conn.ready = True
    conn.formats = [b'{"jsonrpc":"2.0","method":"ping","id":%d}']
    conn._send_many = conn._fast_send = send_many  # type: ignore[assignment]
    return conn


def test_coalesced_sends_record_one_exact_lag_per_request() -> None:
    engine = _engine()
    written: list[Sequence[bytes]] = []
    conn = _ready(engine, written.append)
    conn.times = [10 * _MS, 11 * _MS, 12 * _MS, 20 * _MS, 21 * _MS]
    conn.fire_due(12 * _MS + 500_000)  # three due, sent 2.5, 1.5 and 0.5 ms late
    conn.fire_due(21 * _MS)  # two due, 1 ms and 0 late
    engine.lag_sent(8 * _MS, (1 * _MS,))  # a one-request write (closed loop) folds with them
    engine.fold()
    assert [len(batch) for batch in written] == [3, 2]
    assert engine.messages_sent == 5
    assert engine.bytes_sent == sum(len(p) for batch in written for p in batch)
    assert sorted(conn.in_flight().values()) == conn.times
    lag = engine.schedule_lag
    assert lag.total_count == 6
    assert (lag.min_us, lag.max_us) == (0, 7000)
    assert lag.percentile(50) == 1000
    engine.fold()  # folded once: nothing is recorded twice
    assert lag.total_count == 6


def test_taking_back_lag_samples_trims_the_last_writes_only() -> None:
    engine = _engine()
    engine.lag_sent(10 * _MS, [1 * _MS, 2 * _MS, 3 * _MS])
    engine.lag_sent(20 * _MS, [19 * _MS])
    engine.lag_unrecord(2)  # the whole last write and the newest request of the one before
    engine.fold()
    lag = engine.schedule_lag
    assert lag.total_count == 2
    assert (lag.min_us, lag.max_us) == (8000, 9000)


def test_a_failed_batch_write_is_not_sent_and_leaves_no_lag() -> None:
    engine = _engine()

    def refuse(payloads: Sequence[bytes]) -> None:
        raise TransportError("closed", kind="closed")

    conn = _ready(engine, refuse)
    conn.times = [1 * _MS, 2 * _MS]
    conn.fire_due(2 * _MS)
    engine.fold()
    outcomes = engine.snapshot.outcomes
    assert (outcomes.scheduled, outcomes.sent, outcomes.not_sent) == (2, 0, 2)
    assert outcomes.not_sent_by_reason == {"disconnected": 2}
    assert outcomes.accounting_ok()
    assert conn.in_flight() == {}
    assert engine.schedule_lag.total_count == 0
    assert engine.messages_sent == 0


def test_fire_due_returns_the_next_send_time_or_minus_one_when_the_chunk_is_used_up() -> None:
    engine = _engine()
    conn = _ready(engine, [].append)
    conn.times = [10 * _MS, 11 * _MS, 12 * _MS]
    assert conn.fire_due(9 * _MS) == 10 * _MS  # nothing due yet
    assert conn.fire_due(11 * _MS) == 12 * _MS
    assert conn.fire_due(12 * _MS) == -1
    assert conn.fire_due(13 * _MS) == -1  # still used up: the engine pulls the next chunk
    assert engine.messages_sent == 3


def test_a_backlog_longer_than_the_near_search_leaves_in_one_write() -> None:
    engine = _engine()
    written: list[Sequence[bytes]] = []
    conn = _ready(engine, written.append)
    conn.times = [k * _MS for k in range(1, 101)]
    assert conn.fire_due(70 * _MS) == 71 * _MS  # 70 due: more than the near search covers
    assert conn.fire_due(75 * _MS) == 76 * _MS  # 5 due: inside it
    assert [len(batch) for batch in written] == [70, 5]
    assert sorted(conn.in_flight().values()) == conn.times[:75]


def test_after_the_connection_is_lost_nothing_takes_the_fast_path() -> None:
    engine = _engine()
    written: list[Sequence[bytes]] = []
    conn = _ready(engine, written.append)
    conn.times = [1 * _MS, 2 * _MS, 3 * _MS]
    conn.fire_due(1 * _MS)
    conn.on_closed(None)  # the transport object (and its send_many) is still there
    conn.fire_due(3 * _MS)
    engine.fold()
    outcomes = engine.snapshot.outcomes
    assert [len(batch) for batch in written] == [1]
    assert (outcomes.scheduled, outcomes.errors, outcomes.not_sent) == (3, 1, 2)
    assert outcomes.not_sent_by_reason == {"disconnected": 2}
    assert outcomes.accounting_ok()
