"""ClientLifecycle: feed server bytes in, assert on events and on the bytes it wants sent."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pytest_mcpswarm.errors import ProtocolError, UsageError
from pytest_mcpswarm.protocol import versions
from pytest_mcpswarm.protocol.lifecycle import (
    CallFailed,
    ClientLifecycle,
    Ready,
    Reply,
    ServerMessage,
    State,
)

SERVER_INFO = {"name": "peer", "version": "1"}
CAPS: dict[str, Any] = {"tools": {}}


def sent(lc: ClientLifecycle) -> list[dict[str, Any]]:
    return [orjson.loads(out.data) for out in lc.data_to_send()]


def reply(request_id: object, result: object) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def error(request_id: object, code: int, message: str = "no", data: object = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": err})


def handshake(version: str, answer: str | None = None) -> ClientLifecycle:
    lc = ClientLifecycle(version)
    lc.start()
    (init,) = sent(lc)
    lc.receive_data(
        reply(
            init["id"],
            {"protocolVersion": answer or version, "capabilities": CAPS, "serverInfo": SERVER_INFO},
        )
    )
    (ready,) = lc.events_received()
    assert isinstance(ready, Ready)
    return lc


def discovered(version: str = versions.LATEST_STATELESS) -> ClientLifecycle:
    lc = ClientLifecycle(version)
    lc.start()
    (discover,) = sent(lc)
    meta = {"io.modelcontextprotocol/serverInfo": SERVER_INFO}
    result = {"supportedVersions": [version], "capabilities": CAPS, "resultType": "complete", "_meta": meta}
    lc.receive_data(reply(discover["id"], result))
    return lc


@pytest.mark.parametrize("version", versions.HANDSHAKE_VERSIONS)
def test_handshake_sends_initialize_then_initialized(version: str) -> None:
    lc = ClientLifecycle(version, client_info={"name": "t", "version": "0"})
    lc.start()
    (init,) = sent(lc)
    assert init["method"] == "initialize"
    assert init["params"] == {
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    }
    assert lc.state is State.NEGOTIATING
    lc.receive_data(
        reply(init["id"], {"protocolVersion": version, "capabilities": CAPS, "serverInfo": SERVER_INFO})
    )
    assert lc.events_received() == [Ready(version, SERVER_INFO, CAPS)]
    assert sent(lc) == [{"jsonrpc": "2.0", "method": "notifications/initialized"}]
    assert (lc.state, lc.version) == (State.READY, version)


def test_handshake_accepts_an_older_revision_the_server_picks() -> None:
    lc = handshake("2025-11-25", answer="2025-03-26")
    assert lc.version == "2025-03-26"
    assert lc.headers_for("tools/list") == {"mcp-protocol-version": "2025-03-26"}


@pytest.mark.parametrize("answer", ["2099-01-01", "2026-07-28"])
def test_handshake_rejects_a_revision_we_do_not_speak(answer: str) -> None:
    with pytest.raises(ProtocolError) as info:
        handshake("2025-11-25", answer=answer)
    assert info.value.kind == "version"
    assert answer in str(info.value)


def test_handshake_honours_a_narrower_accept_list() -> None:
    lc = ClientLifecycle("2025-11-25", accept=["2025-11-25"])
    lc.start()
    (init,) = sent(lc)
    with pytest.raises(ProtocolError, match="2025-06-18") as info:
        lc.receive_data(reply(init["id"], {"protocolVersion": "2025-06-18", "capabilities": {}}))
    assert info.value.kind == "version"
    assert lc.state is State.FAILED


def test_handshake_result_without_version_or_capabilities_is_malformed() -> None:
    results: list[object] = [{"capabilities": {}}, {"protocolVersion": "2025-11-25"}, []]
    for result in results:
        lc = ClientLifecycle("2025-11-25")
        lc.start()
        (init,) = sent(lc)
        with pytest.raises(ProtocolError) as info:
            lc.receive_data(reply(init["id"], result))
        assert info.value.kind == "malformed"


def test_initialize_refused_with_an_error() -> None:
    lc = ClientLifecycle("2025-11-25")
    lc.start()
    (init,) = sent(lc)
    with pytest.raises(ProtocolError, match="-32603 boom"):
        lc.receive_data(error(init["id"], -32603, "boom"))


def test_unknown_version_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="2030-01-01"):
        ClientLifecycle("2030-01-01")


def test_requests_before_ready_are_refused() -> None:
    lc = ClientLifecycle()
    with pytest.raises(RuntimeError, match="idle"):
        lc.send_request("tools/list")


def test_handshake_request_reply_and_error_events() -> None:
    lc = handshake("2025-06-18")
    sent(lc)
    call_id = lc.send_request("tools/call", {"name": "echo", "arguments": {}})
    (out,) = lc.data_to_send()
    assert (out.method, out.request_id, out.name) == ("tools/call", call_id, "echo")
    assert orjson.loads(out.data)["params"] == {"name": "echo", "arguments": {}}  # no envelope
    list_id = lc.send_request("tools/list")
    assert "params" not in orjson.loads(lc.data_to_send()[0].data)
    lc.receive_data(b"[" + reply(list_id, {"tools": []}) + b"," + error(call_id, -32602, "bad args") + b"]")
    events = lc.events_received()
    assert events[0] == Reply(list_id, "tools/list", {"tools": []})
    assert isinstance(events[1], CallFailed)
    assert (events[1].method, events[1].error.code) == ("tools/call", -32602)
    assert lc.in_flight == 0


def test_reply_to_an_unknown_id_is_unmatched() -> None:
    lc = handshake("2025-11-25")
    with pytest.raises(ProtocolError) as info:
        lc.receive_data(reply(12345, {}))
    assert info.value.kind == "unmatched_id"


def test_cancel_drops_the_late_reply_and_tells_the_server() -> None:
    lc = handshake("2025-11-25")
    sent(lc)
    request_id = lc.send_request("tools/call", {"name": "slow"})
    sent(lc)
    lc.cancel(request_id)
    assert sent(lc) == [
        {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": request_id, "reason": "timed out"},
        }
    ]
    lc.receive_data(reply(request_id, {"content": []}))  # late: silently dropped
    assert lc.events_received() == []


def test_server_ping_is_answered_and_other_requests_refused() -> None:
    lc = handshake("2025-11-25")
    sent(lc)
    lc.receive_data(b'{"jsonrpc":"2.0","id":"s1","method":"ping"}')
    lc.receive_data(b'{"jsonrpc":"2.0","id":"s2","method":"sampling/createMessage","params":{}}')
    lc.receive_data(b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info"}}')
    assert [type(e) for e in lc.events_received()] == [ServerMessage] * 3
    pong, refusal = sent(lc)
    assert pong == {"jsonrpc": "2.0", "id": "s1", "result": {}}
    assert refusal["id"] == "s2"
    assert refusal["error"]["code"] == versions.METHOD_NOT_FOUND


def test_reset_forgets_in_flight_requests_and_renegotiates() -> None:
    lc = handshake("2025-11-25")
    sent(lc)
    request_id = lc.send_request("tools/list")
    assert lc.reset() == [request_id]
    assert (lc.state, lc.version) == (State.IDLE, None)
    lc.start()
    (init,) = sent(lc)
    assert init["method"] == "initialize"
    lc.receive_data(reply(request_id, {}))  # the old session's late answer is dropped
    assert lc.events_received() == []


# --- 2026-07-28 (stateless) ---------------------------------------------------------------------


def test_discover_carries_the_envelope_and_required_params() -> None:
    lc = ClientLifecycle("2026-07-28", client_info={"name": "t", "version": "0"}, capabilities={"x": {}})
    lc.start()
    (out,) = lc.data_to_send()
    body = orjson.loads(out.data)
    assert body["method"] == "server/discover"
    assert body["params"] == {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"x": {}},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"},
        }
    }
    # The discover POST already carries the requested version and method headers.
    assert lc.headers_for("server/discover") == {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "server/discover",
    }


def test_discover_ready_reads_server_info_from_result_meta() -> None:
    lc = discovered()
    assert lc.events_received() == [Ready("2026-07-28", SERVER_INFO, CAPS)]
    assert sent(lc) == []  # no notifications/initialized in the stateless revision


def test_every_stateless_request_gets_the_envelope_merged_into_meta() -> None:
    lc = discovered()
    lc.send_request("tools/call", {"name": "add", "arguments": {"a": 1}, "_meta": {"progressToken": 3}})
    lc.send_request("tools/list")
    call, listing = sent(lc)
    assert call["params"]["name"] == "add"
    assert call["params"]["_meta"]["progressToken"] == 3
    assert call["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert set(listing["params"]["_meta"]) == {
        versions.META_PROTOCOL_VERSION,
        versions.META_CLIENT_CAPABILITIES,
        versions.META_CLIENT_INFO,
    }


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("tools/call", {"name": "echo"}, "echo"),
        ("prompts/get", {"name": "gréet"}, "=?base64?Z3LDqWV0?="),
        ("resources/read", {"uri": "file:///a b"}, "file:///a b"),
        ("tools/list", None, None),
    ],
)
def test_stateless_http_headers(method: str, params: dict[str, Any] | None, name: str | None) -> None:
    lc = discovered()
    expected = {"mcp-protocol-version": "2026-07-28", "mcp-method": method}
    if name is not None:
        expected["mcp-name"] = name
    assert lc.headers_for(method, params) == expected


def test_handshake_initialize_has_no_version_header() -> None:
    assert ClientLifecycle("2025-11-25").headers_for("initialize") == {}


@pytest.mark.parametrize("method", ["ping", "initialize", "logging/setLevel", "resources/subscribe"])
def test_methods_removed_in_2026_are_refused_locally(method: str) -> None:
    lc = discovered()
    with pytest.raises(UsageError, match="does not exist in MCP 2026-07-28"):
        lc.send_request(method)


def test_discover_32022_naming_the_offered_version_fails_instead_of_looping() -> None:
    lc = ClientLifecycle("2026-07-28")
    lc.start()
    (first,) = sent(lc)
    with pytest.raises(ProtocolError, match="rejected protocol version") as info:
        lc.receive_data(error(first["id"], -32022, "Unsupported", {"supported": ["2026-07-28"]}))
    assert info.value.kind == "version"
    assert sent(lc) == []


def test_discover_32022_with_disjoint_list_is_a_version_error() -> None:
    lc = ClientLifecycle("2026-07-28")
    lc.start()
    (first,) = sent(lc)
    with pytest.raises(ProtocolError, match="2025-11-25") as info:
        lc.receive_data(error(first["id"], -32022, "Unsupported", {"supported": ["2025-11-25"]}))
    assert info.value.kind == "version"


def test_discover_method_not_found_means_a_handshake_only_server() -> None:
    lc = ClientLifecycle("2026-07-28")
    lc.start()
    (first,) = sent(lc)
    with pytest.raises(ProtocolError, match="does not implement server/discover") as info:
        lc.receive_data(error(first["id"], -32601, "Method not found"))
    assert info.value.kind == "version"


@pytest.mark.parametrize(
    ("result", "kind"),
    [
        ({"supportedVersions": ["2025-11-25"], "capabilities": {}}, "version"),
        ({"supportedVersions": [], "capabilities": {}}, "version"),
        ({"supportedVersions": "2026-07-28", "capabilities": {}}, "malformed"),
        ({"capabilities": {}}, "malformed"),
        ({"supportedVersions": ["2026-07-28"]}, "malformed"),
        (
            {"supportedVersions": ["2026-07-28"], "capabilities": {}, "resultType": "input_required"},
            "malformed",
        ),
    ],
)
def test_bad_discover_results(result: dict[str, Any], kind: str) -> None:
    lc = ClientLifecycle("2026-07-28")
    lc.start()
    (first,) = sent(lc)
    with pytest.raises(ProtocolError) as info:
        lc.receive_data(reply(first["id"], result))
    assert info.value.kind == kind
    assert lc.state is State.FAILED


def test_stateless_cancel_sends_no_notification() -> None:
    lc = discovered()
    request_id = lc.send_request("tools/list")
    sent(lc)
    lc.cancel(request_id)
    assert sent(lc) == []
