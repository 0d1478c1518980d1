"""Fuzz the engine's C reply fast path (``load/_replies.c``) against orjson, the general path's judge;
and check its clock.

The C path may only take a reply the general path would take the same way: whatever it accepts
as JSON, orjson must accept, and whatever it calls a JSON-RPC success with an id, orjson must
read as exactly ``{"jsonrpc": "2.0", "id": <that int>, "result": ...}``.  It may refuse more
(it then hands the reply to the general path), but not valid JSON that ``orjson.dumps`` writes.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ACCELERATOR_HOW, require_system
from tests.fuzz.strategies import FUZZ, json_values, rpc_messages


@pytest.fixture(scope="module")
def replies() -> ModuleType:
    try:
        from pytest_mcpswarm.load import _replies
    except ImportError:
        require_system(False, "the C accelerator (pytest_mcpswarm.load._replies)", ACCELERATOR_HOW)
        raise
    return _replies


def _orjson(data: bytes) -> tuple[bool, Any]:
    try:
        return True, orjson.loads(data)
    except orjson.JSONDecodeError:
        return False, None


def _agrees(replies: ModuleType, data: bytes) -> None:
    valid, parsed = _orjson(data)
    if replies.is_json(data):
        assert valid, data
    rid = replies.success_id(data)
    if rid is not None:
        assert valid and isinstance(parsed, dict), data
        assert set(parsed) == {"jsonrpc", "id", "result"} and parsed["jsonrpc"] == "2.0", data
        assert type(parsed["id"]) is int and parsed["id"] == rid, data


def _dumps(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # NaN, big ints, surrogates: not JSON at all
        return None


@FUZZ
@given(json_values)
def test_every_json_text_orjson_writes_is_accepted(replies: ModuleType, value: Any) -> None:
    data = _dumps(value)
    if data is not None:
        assert replies.is_json(data), data
        assert replies.is_json(b" \n" + data + b"\t\r"), data


@FUZZ
@given(rpc_messages(), st.sampled_from([b"", b" ", b"\n", b"\t \r\n"]))
def test_a_success_is_recognised_exactly(replies: ModuleType, message: Any, pad: bytes) -> None:
    data = _dumps(message)
    if data is None:
        return
    data = pad + data + pad
    _agrees(replies, data)
    _, parsed = _orjson(data)
    expected = (
        isinstance(parsed, dict)
        and set(parsed) == {"jsonrpc", "id", "result"}
        and parsed["jsonrpc"] == "2.0"
        and type(parsed["id"]) is int
        and -(10**18) < parsed["id"] < 10**18
    )
    assert (replies.success_id(data) is not None) == expected, data


@FUZZ
@given(st.binary(max_size=64))
def test_random_bytes_never_pass_for_json_orjson_refuses(replies: ModuleType, data: bytes) -> None:
    _agrees(replies, data)


@FUZZ
@given(rpc_messages(), st.data())
def test_a_mutated_reply_is_judged_as_orjson_judges_it(
    replies: ModuleType, message: Any, data: st.DataObject
) -> None:
    text = _dumps({"jsonrpc": "2.0", "id": 7, "result": message})
    if text is None:
        return
    raw = bytearray(text)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        byte = data.draw(st.sampled_from(b'"\\{}[],:0-.eE \x00\x1f\x7f\x80\xc3\xa9\xed\xa0\xf4\x90u'))
        if action == "flip":
            raw[at] = byte
        elif action == "drop":
            del raw[at]
        else:
            raw.insert(at, byte)
    _agrees(replies, bytes(raw))


def test_the_c_path_reads_the_engine_clock(replies: ModuleType) -> None:
    """Latency is ``now - intended``: both must come from ``time.perf_counter_ns``'s clock."""
    before = time.perf_counter_ns()
    now = replies.now_ns()
    assert before <= now <= time.perf_counter_ns()
