"""How one load connection classifies replies, fast paths (C, msgspec) and general path (orjson) alike.

Each reply is checked against the rule it must follow: an ``ok`` with its
latency, a JSON-RPC error by code, or a ``protocol:*`` event that ends no
request (its request stays in flight until it times out).
"""

from __future__ import annotations

import time

import pytest

from pytest_mcpswarm.load import connection as connection_module
from pytest_mcpswarm.load.connection import LoadConnection
from pytest_mcpswarm.load.engine import Engine
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from tests.conftest import ACCELERATOR_HOW, require_system

_MS = 1_000_000


@pytest.fixture(autouse=True, params=["c", "python"])
def reply_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every rule holds with the C reply path (when built) and with the Python one."""
    if request.param == "python":
        monkeypatch.setattr(connection_module, "SuccessPath", None)
    elif connection_module.SuccessPath is None:
        require_system(False, "the C accelerator (pytest_mcpswarm.load._replies)", ACCELERATOR_HOW)
    return str(request.param)


def _connection(*, timeout_s: float = 5.0) -> tuple[Engine, LoadConnection]:
    plan = RunPlan(
        target="ws://127.0.0.1:1/mcp/ws",
        methods=(MethodSpec("ping", None, 1.0),),
        stages=(Stage(1.0, 1, 1000.0),),
        start_connections=1,
        timeout_s=timeout_s,
    )
    engine = Engine(plan)
    conn = LoadConnection(engine, 0)
    conn.ready = True
    conn.formats = [b'{"jsonrpc":"2.0","method":"ping","id":%d}']
    conn._send_many = lambda payloads: None  # type: ignore[assignment]
    return engine, conn


def _send(conn: LoadConnection, n: int) -> list[int]:
    """Send ``n`` requests that were due 1 ms ago; their ids."""
    now = time.perf_counter_ns()
    first = conn.next_id
    conn.times = [now - _MS] * n
    conn.pos = 0
    conn.fire_due(now)
    return list(range(first, first + n))


def _ok(rid: int, result: str = "{}") -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"result":%s}' % (rid, result.encode())


@pytest.mark.parametrize(
    "reply",
    [
        _ok(0),  # the fast path
        b'{"id":0,"result":{"text":"\xc3\xa9t\xc3\xa9"},"jsonrpc":"2.0"}',  # non-ASCII: orjson's path
        b'{"jsonrpc":"2.0","id":0,"result":{},"extra":true}',  # an unknown top-level key: general path
        b' {"jsonrpc" : "2.0", "result" : [1, 2.5e3, null], "id" : 0}\n',  # whitespace, key order
    ],
)
def test_a_success_reply_ends_its_request_as_ok(reply: bytes) -> None:
    engine, conn = _connection()
    (rid,) = _send(conn, 1)
    conn.on_message(reply.replace(b'"id":0', b'"id":%d' % rid).replace(b'"id" : 0', b'"id" : %d' % rid))
    engine.fold()
    outcomes = engine.snapshot.outcomes
    assert (outcomes.ok, outcomes.errors, engine.protocol_events) == (1, 0, {})
    assert conn.in_flight() == {}
    assert engine.snapshot.latency.min_us >= 1000  # measured from the intended time, 1 ms back


@pytest.mark.parametrize(
    ("reply", "event"),
    [
        (b'{"jsonrpc":"2.0","id":ID,"result":{"a":[1,2,}}', "protocol:malformed"),
        (b'{"jsonrpc":"2.0","id":ID,"result":"\xff"}', "protocol:malformed"),  # invalid UTF-8
        (b'{"jsonrpc":"2.0","id":ID,"result":{},"error":{"code":1}}', "protocol:malformed"),
        (b'{"jsonrpc":"1.0","id":ID,"result":{}}', "protocol:malformed"),
        (b'{"jsonrpc":"2.0","id":"ID","result":{}}', "protocol:unmatched_id"),
        (b'{"jsonrpc":"2.0","id":999999999,"result":{}}', "protocol:unmatched_id"),
        (b"[1, 2", "protocol:malformed"),
    ],
)
def test_a_bad_reply_is_one_protocol_event_and_its_request_stays_in_flight(reply: bytes, event: str) -> None:
    engine, conn = _connection()
    (rid,) = _send(conn, 1)
    conn.on_message(reply.replace(b"ID", str(rid).encode()))
    engine.fold()
    assert engine.protocol_events == {event: 1}
    assert engine.snapshot.outcomes.ok == 0
    assert list(conn.in_flight()) == [rid]


def test_an_error_reply_is_counted_by_code() -> None:
    engine, conn = _connection()
    (rid,) = _send(conn, 1)
    conn.on_message(b'{"jsonrpc":"2.0","id":%d,"error":{"code":-32601,"message":"no"}}' % rid)
    engine.fold()
    assert engine.snapshot.outcomes.errors_by_type == {"jsonrpc:-32601": 1}
    assert conn.in_flight() == {}


def test_replies_in_any_order_each_end_their_own_request_once() -> None:
    engine, conn = _connection()
    ids = _send(conn, 5)
    for rid in (ids[3], ids[0], ids[4], ids[0], ids[1]):  # ids[0] twice: the second is ignored
        conn.on_message(_ok(rid))
    engine.fold()
    assert engine.snapshot.outcomes.ok == 4
    assert sorted(conn.in_flight()) == [ids[2]]
    assert conn.in_flight_count() == 1
    assert engine.protocol_events == {}


def test_expiry_times_out_the_old_requests_and_a_late_reply_counts_nothing() -> None:
    engine, conn = _connection(timeout_s=0.5)
    ids = _send(conn, 3)
    conn.on_message(_ok(ids[1]))
    conn.expire(time.perf_counter_ns() + 10**9)  # a second later: both left are past 0.5 s
    assert conn.in_flight() == {}
    assert conn.sent == []  # the ended slots are dropped
    conn.on_message(_ok(ids[0]))  # late: already a timeout, not unmatched
    engine.fold()
    outcomes = engine.snapshot.outcomes
    assert (outcomes.ok, outcomes.timeouts) == (1, 2)
    assert engine.protocol_events == {}
    assert outcomes.accounting_ok()


def test_a_lost_connection_fails_what_is_in_flight_once() -> None:
    engine, conn = _connection()
    ids = _send(conn, 4)
    conn.on_message(_ok(ids[2]))
    conn.on_closed(None)
    conn.on_message(_ok(ids[0]))  # after the loss: nothing more is counted
    engine.fold()
    outcomes = engine.snapshot.outcomes
    assert (outcomes.ok, outcomes.errors) == (1, 3)
    assert outcomes.errors_by_type == {"transport:closed": 3}
    assert outcomes.accounting_ok()


def test_the_transports_get_the_c_path_when_it_is_built(reply_path: str) -> None:
    _, conn = _connection()
    fast = connection_module.SuccessPath
    assert (fast is not None and isinstance(conn.on_message, fast)) == (reply_path == "c")


def test_a_reply_later_than_the_timeout_is_a_timeout_not_a_latency() -> None:
    engine, conn = _connection(timeout_s=0.5)
    now = time.perf_counter_ns()
    conn.times = [now - 600 * _MS]  # intended 0.6 s ago, in time for the lateness bound (1 s)
    conn.pos = 0
    conn.fire_due(now)
    conn.on_message(_ok(conn.next_id - 1))
    engine.fold()
    outcomes = engine.snapshot.outcomes
    assert (outcomes.ok, outcomes.timeouts, engine.snapshot.latency.total_count) == (0, 1, 0)
    assert conn.in_flight() == {}
