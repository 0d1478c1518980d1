"""The JSON-RPC codec: raw bytes in, typed messages (or ProtocolError) out."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_mcpswarm.errors import ProtocolError
from pytest_mcpswarm.protocol import jsonrpc
from pytest_mcpswarm.protocol.jsonrpc import (
    ErrorObject,
    ErrorResponse,
    Notification,
    PendingRequests,
    Request,
    Response,
    decode,
    peek_reply,
)


def test_encode_request_is_compact_and_decodes_back() -> None:
    data = jsonrpc.encode_request(7, "tools/call", {"name": "echo"})
    assert data == b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}'
    assert decode(data) == [Request(7, "tools/call", {"name": "echo"})]


def test_encode_omits_absent_params() -> None:
    assert b"params" not in jsonrpc.encode_request(1, "ping")
    assert jsonrpc.encode_notification("notifications/initialized") == (
        b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
    )


@pytest.mark.parametrize(
    "message",
    [
        Request("abc", "ping"),
        Notification("notifications/progress", {"progress": 1}),
        Response(3, {"tools": []}),
        Response(4, None),
        ErrorResponse(5, ErrorObject(-32601, "Method not found", "nope")),
        ErrorResponse(None, ErrorObject(-32700, "Parse error")),
    ],
)
def test_every_message_type_round_trips(message: jsonrpc.Message) -> None:
    assert decode(jsonrpc.encode(message)) == [message]


def test_error_object_omits_absent_data() -> None:
    assert jsonrpc.encode_error(1, -32600, "bad") == (
        b'{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"bad"}}'
    )


def test_batch_decodes_in_order() -> None:
    data = b'[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"notifications/x"}]'
    assert decode(data) == [Response(1, {}), Notification("notifications/x")]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 2000 + b"]" * 2000, "not JSON"),  # nesting beyond orjson's limit
        (b"[]", "empty batch"),
        (b"42", "expected an object"),
        (b"[1]", "expected an object"),
        (b"[[]]", "expected an object"),
        (b'{"id":1,"result":{}}', '"jsonrpc"'),
        (b'{"jsonrpc":"1.0","id":1,"result":{}}', '"jsonrpc"'),
        (b'{"jsonrpc":2.0,"id":1,"result":{}}', '"jsonrpc"'),
        (b'{"jsonrpc":"2.0"}', "exactly one"),
        (b'{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"x"}}', "exactly one"),
        (b'{"jsonrpc":"2.0","result":{}}', "response id"),
        (b'{"jsonrpc":"2.0","id":null,"result":{}}', "response id"),
        (b'{"jsonrpc":"2.0","id":1.5,"result":{}}', "response id"),
        (b'{"jsonrpc":"2.0","id":true,"result":{}}', "response id"),
        (b'{"jsonrpc":"2.0","id":[1],"method":"ping"}', "request id"),
        (b'{"jsonrpc":"2.0","id":null,"method":"ping"}', "request id"),
        (b'{"jsonrpc":"2.0","id":1,"method":5}', "method"),
        (b'{"jsonrpc":"2.0","id":1,"method":""}', "method"),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1,2]}', "params must be an object"),
        (b'{"jsonrpc":"2.0","method":"x","params":"s"}', "params must be an object"),
        (b'{"jsonrpc":"2.0","id":1,"error":"boom"}', "error must be an object"),
        (b'{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}', "error.code"),
        (b'{"jsonrpc":"2.0","id":1,"error":{"code":"1","message":"x"}}', "error.code"),
        (b'{"jsonrpc":"2.0","id":1,"error":{"code":false,"message":"x"}}', "error.code"),
        (b'{"jsonrpc":"2.0","id":1,"error":{"code":1}}', "error.message"),
        (b'{"jsonrpc":"2.0","id":{},"error":{"code":1,"message":"x"}}', "error response id"),
    ],
)
def test_garbage_raises_malformed_with_a_reason(data: bytes, needle: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(data)
    assert info.value.kind == "malformed"
    assert needle in str(info.value)


def test_one_bad_member_fails_the_whole_batch() -> None:
    with pytest.raises(ProtocolError, match="expected an object"):
        decode(b'[{"jsonrpc":"2.0","id":1,"result":{}}, 3]')


def test_non_bytes_input_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode(123)  # type: ignore[arg-type]


# What orjson can serialize: 64-bit integers, finite floats, strings without lone surrogates.
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)
_near_messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
        "id": _json,
        "method": _json | st.sampled_from(["ping", "tools/call"]),
        "params": _json,
        "result": _json,
        "error": _json | st.fixed_dictionaries({"code": _json, "message": _json}, optional={"data": _json}),
    },
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200) | _json.map(orjson.dumps) | _near_messages.map(orjson.dumps))
def test_decode_fuzz_raises_nothing_but_protocol_error(data: bytes) -> None:
    try:
        messages = decode(data)
    except ProtocolError as exc:
        assert exc.kind == "malformed"
        return
    assert messages
    assert all(isinstance(m, Request | Notification | Response | ErrorResponse) for m in messages)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120) | _near_messages.map(orjson.dumps))
def test_peek_fuzz_raises_nothing_but_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        peek_reply(data)


# --- PendingRequests ---------------------------------------------------------------------------


def test_pending_allocates_increasing_ids_and_resolves_tokens() -> None:
    pending: PendingRequests[str] = PendingRequests(first_id=10)
    first, second = pending.add("a"), pending.add("b")
    assert (first, second) == (10, 11)
    assert pending.resolve(Response(11, {})) == "b"
    assert pending.resolve(ErrorResponse(10, ErrorObject(-1, "x"))) == "a"
    assert len(pending) == 0


def test_pending_rejects_unknown_duplicate_and_idless_replies() -> None:
    pending: PendingRequests[str] = PendingRequests()
    request_id = pending.add("a")
    with pytest.raises(ValueError, match="already in flight"):
        pending.register(request_id, "again")
    with pytest.raises(ProtocolError) as info:
        pending.resolve(Response(999, {}))
    assert info.value.kind == "unmatched_id"
    with pytest.raises(ProtocolError) as info:
        pending.resolve(ErrorResponse(None, ErrorObject(-32700, "Parse error")))
    assert info.value.kind == "unmatched_id"
    pending.resolve(Response(request_id, {}))
    with pytest.raises(ProtocolError, match="not in flight"):
        pending.resolve(Response(request_id, {}))  # answered twice


def test_pending_discard_and_drain() -> None:
    pending: PendingRequests[str] = PendingRequests()
    a, b = pending.add("a"), pending.add("b")
    assert pending.discard(a) == "a"
    assert pending.discard(a) is None
    assert b in pending
    assert pending.drain() == [(b, "b")]
    assert list(pending) == []


# --- peek_reply (the load engine's fast path) ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"jsonrpc":"2.0","id":42,"result":{"content":[]}}', (42, None)),
        (b'{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"x"}}', (7, -32601)),
        (b'{"jsonrpc":"2.0","id":-3,"result":{}}', (-3, None)),
        # Other layouts take the orjson path and agree.
        (b'{"jsonrpc": "2.0", "id": 42, "result": {}}', (42, None)),
        (b'{"result":{},"id":"s-1","jsonrpc":"2.0"}', ("s-1", None)),
        (b'{"jsonrpc":"2.0","id":"abc","error":{"message":"m","code":-32000}}', ("abc", -32000)),
        (b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}', (None, -32700)),
        # Not replies: a server request and a notification.
        (b'{"jsonrpc":"2.0","id":1,"method":"ping"}', (None, None)),
        (b'{"jsonrpc":"2.0","method":"notifications/message","params":{}}', (None, None)),
    ],
)
def test_peek_reply(data: bytes, expected: tuple[object, object]) -> None:
    assert peek_reply(data) == expected


def test_peek_reply_does_not_confuse_a_nested_id_with_the_reply_id() -> None:
    data = b'{"result":{"id":99,"error":{"code":1}},"jsonrpc":"2.0","id":5}'
    assert peek_reply(data) == (5, None)


def test_peek_reply_rejects_garbage_and_batches() -> None:
    with pytest.raises(ProtocolError):
        peek_reply(b'{"jsonrpc":"2.0","id":1')
    with pytest.raises(ProtocolError, match="batch"):
        peek_reply(b'[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"result":{}}]')
