"""`mcpswarm serve` over Streamable HTTP, as a real subprocess, spoken to with http.client and raw sockets."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_mcpswarm.protocol import versions as v
from pytest_mcpswarm.server.launch import ServerProcess

MODERN = v.LATEST_STATELESS


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(
        [
            "--max-sessions",
            "3",
            "--session-ttl",
            "1.5",
            "--max-message-bytes",
            "4096",
            "--allow-origin",
            "https://good.example",
        ]
    ) as srv:
        yield srv


def post(
    srv: ServerProcess, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    hdrs = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        **(headers or {}),
    }
    conn.request("POST", "/mcp", body=raw if raw is not None else json.dumps(body).encode(), headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): val for k, val in resp.getheaders()}, json.loads(data) if data else None


def modern_call(method: str, params: dict[str, Any], version: str = MODERN, rid: int = 1) -> dict[str, Any]:
    meta = {v.META_PROTOCOL_VERSION: version, v.META_CLIENT_CAPABILITIES: {}}
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**params, "_meta": meta}}


def modern_headers(method: str, name: str | None = None, version: str = MODERN) -> dict[str, str]:
    h = {"MCP-Protocol-Version": version, "Mcp-Method": method}
    if name is not None:
        h["Mcp-Name"] = name
    return h


def initialize(srv: ServerProcess, version: str = "2025-06-18") -> str:
    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    status, headers, reply = post(srv, body)
    assert status == 200, reply
    assert reply["result"]["protocolVersion"] == version
    sid = headers["mcp-session-id"]
    status, _, _ = post(
        srv,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"Mcp-Session-Id": sid, "MCP-Protocol-Version": version},
    )
    assert status == 202
    return sid


def end_session(srv: ServerProcess, sid: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("DELETE", "/mcp", headers={"Mcp-Session-Id": sid})
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.parametrize("version", v.HANDSHAKE_VERSIONS)
def test_handshake_revisions_call_tools(server: ServerProcess, version: str) -> None:
    sid = initialize(server, version)
    hdrs = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": version}
    status, _, reply = post(
        server,
        {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 2, "b": 40}},
        },
        hdrs,
    )
    assert status == 200
    assert reply["id"] == 7
    assert reply["result"]["structuredContent"]["sum"] == 42
    assert reply["result"]["content"][0]["text"] == "42"
    assert reply["result"]["structuredContent"]["replica"]
    status, _, reply = post(server, {"jsonrpc": "2.0", "id": "s", "method": "tools/list"}, hdrs)
    assert {t["name"] for t in reply["result"]["tools"]} == {"echo", "add", "sleep", "payload"}
    assert "resultType" not in reply["result"]
    assert end_session(server, sid) == 200
    assert end_session(server, sid) == 404


def test_initialize_counter_offers_latest_for_unknown_version(server: ServerProcess) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "1999-01-01",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    status, headers, reply = post(server, body)
    assert status == 200
    assert reply["result"]["protocolVersion"] == v.LATEST_HANDSHAKE
    assert end_session(server, headers["mcp-session-id"]) == 200


def test_session_required_unknown_and_expired(server: ServerProcess) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert post(server, ping)[0] == 400
    assert post(server, ping, {"Mcp-Session-Id": "nope"})[0] == 404
    sid = initialize(server)
    assert post(server, ping, {"Mcp-Session-Id": sid})[2] == {"jsonrpc": "2.0", "id": 1, "result": {}}
    time.sleep(1.8)  # past --session-ttl 1.5
    assert post(server, ping, {"Mcp-Session-Id": sid})[0] == 404


def test_max_sessions_answers_503(server: ServerProcess) -> None:
    sids = [initialize(server) for _ in range(3)]
    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    assert post(server, body)[0] == 503
    assert end_session(server, sids[0]) == 200
    status, headers, _ = post(server, body)
    assert status == 200
    for sid in [*sids[1:], headers["mcp-session-id"]]:
        assert end_session(server, sid) == 200


def test_modern_revision_stateless_calls(server: ServerProcess) -> None:
    status, headers, reply = post(
        server, modern_call("server/discover", {}), modern_headers("server/discover")
    )
    assert status == 200
    assert "mcp-session-id" not in headers
    assert reply["result"]["supportedVersions"] == list(v.STATELESS_VERSIONS)
    assert "tools" in reply["result"]["capabilities"]
    status, _, reply = post(
        server,
        modern_call("tools/call", {"name": "echo", "arguments": {"text": "hé"}}),
        modern_headers("tools/call", "echo"),
    )
    assert status == 200
    assert reply["result"]["content"] == [{"type": "text", "text": "hé"}]
    assert reply["result"]["resultType"] == "complete"
    uri = "mcpswarm://static/hello"
    status, _, reply = post(
        server, modern_call("resources/read", {"uri": uri}), modern_headers("resources/read", uri)
    )
    assert reply["result"]["contents"][0]["text"] == "hello from mcpswarm"
    assert reply["result"]["ttlMs"] == 0


@pytest.mark.parametrize(
    ("headers", "params", "code", "status"),
    [
        (
            modern_headers("tools/call", "echo", version="2025-06-18"),
            {"name": "echo"},
            v.HEADER_MISMATCH,
            400,
        ),
        (modern_headers("tools/list", "echo"), {"name": "echo"}, v.HEADER_MISMATCH, 400),
        (modern_headers("tools/call", "add"), {"name": "echo"}, v.HEADER_MISMATCH, 400),
        ({}, {"name": "echo"}, v.HEADER_MISMATCH, 400),
    ],
)
def test_modern_header_mismatch(
    server: ServerProcess, headers: dict[str, str], params: dict[str, Any], code: int, status: int
) -> None:
    got_status, _, reply = post(server, modern_call("tools/call", params), headers)
    assert (got_status, reply["error"]["code"]) == (status, code)


def test_modern_unsupported_version_and_missing_envelope(server: ServerProcess) -> None:
    status, _, reply = post(
        server,
        modern_call("tools/list", {}, version="2030-01-01"),
        modern_headers("tools/list", version="2030-01-01"),
    )
    assert status == 400
    assert reply["error"]["code"] == v.UNSUPPORTED_PROTOCOL_VERSION
    assert reply["error"]["data"] == {"supported": list(v.STATELESS_VERSIONS), "requested": "2030-01-01"}
    status, _, reply = post(
        server, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, modern_headers("tools/list")
    )
    assert (status, reply["error"]["code"]) == (400, v.INVALID_PARAMS)
    status, _, reply = post(server, modern_call("nope/nope", {}), modern_headers("nope/nope"))
    assert (status, reply["error"]["code"]) == (404, v.METHOD_NOT_FOUND)


def test_jsonrpc_errors(server: ServerProcess) -> None:
    hdrs = modern_headers("tools/call", "nope")
    status, _, reply = post(server, modern_call("tools/call", {"name": "nope"}), hdrs)
    assert (status, reply["error"]["code"]) == (400, v.INVALID_PARAMS)
    status, _, reply = post(server, None, raw=b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert (status, reply["error"]["code"], reply["id"]) == (400, v.PARSE_ERROR, None)
    status, _, reply = post(server, [1, 2], modern_headers("tools/list"))
    assert (status, reply["error"]["code"]) == (400, v.INVALID_REQUEST)
    hdrs = modern_headers("tools/call", "add")
    status, _, reply = post(server, modern_call("tools/call", {"name": "add", "arguments": {"a": "x"}}), hdrs)
    assert (status, reply["error"]["code"]) == (400, v.INVALID_PARAMS)


def test_origin_checked(server: ServerProcess) -> None:
    hdrs = modern_headers("tools/list")
    body = modern_call("tools/list", {})
    assert post(server, body, {**hdrs, "Origin": "https://evil.example"})[0] == 403
    assert post(server, body, {**hdrs, "Origin": "http://localhost:3000"})[0] == 200
    assert post(server, body, {**hdrs, "Origin": "https://good.example"})[0] == 200


def test_oversized_message_is_413(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413 ")
    hdrs = modern_headers("tools/call", "echo")
    big = modern_call("tools/call", {"name": "echo", "arguments": {"text": "x" * 3000}})
    assert post(server, big, hdrs)[0] == 200


def test_get_and_other_verbs(server: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/mcp")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 405
    assert "POST" in (resp.getheader("allow") or "")
    conn.request("GET", "/nowhere")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 404
    conn.request("GET", "/health")
    resp = conn.getresponse()
    assert resp.status == 200
    assert json.loads(resp.read())["status"] == "ok"
    conn.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"POST /mcp HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"\x00\xff\x16\x03\x01\r\n\r\n",
    ],
)
def test_malformed_http_is_400_and_server_survives(server: ServerProcess, garbage: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(garbage)
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 400 ")
        assert sock.recv(4096) == b""  # and the connection is closed
    assert post(server, modern_call("tools/list", {}), modern_headers("tools/list"))[0] == 200


def test_pipelined_requests_answered_in_order(server: ServerProcess) -> None:
    def req(rid: int) -> bytes:
        body = json.dumps(
            modern_call("tools/call", {"name": "echo", "arguments": {"text": str(rid)}}, rid=rid)
        )
        head = (
            "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"MCP-Protocol-Version: {MODERN}\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return (head + body).encode()

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"".join(req(i) for i in range(20)))
        data = b""
        while data.count(b"HTTP/1.1 200") < 20 or not data.endswith(b"}}"):
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    ids = [json.loads(part.split(b"\r\n\r\n", 1)[1])["id"] for part in data.split(b"HTTP/1.1 ")[1:]]
    assert ids == list(range(20))


def test_metrics_exposes_histogram_and_counters(server: ServerProcess) -> None:
    post(server, modern_call("tools/list", {}), modern_headers("tools/list"))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    assert 'mcpswarm_server_request_duration_seconds_bucket{le="0.0001",method="tools/list"}' in text
    assert 'mcpswarm_server_requests_total{method="tools/list",outcome="ok"}' in text
    assert "mcpswarm_server_active_connections" in text
    assert "mcpswarm_server_active_sessions" in text
    assert 'mcpswarm_server_faults_injected_total{kind="drop"} 0.0' in text
    # Process figures for bottleneck attribution and the CPU/memory alerts.
    rss = next(line for line in text.splitlines() if line.startswith("process_resident_memory_bytes "))
    assert float(rss.split()[1]) > 1_000_000
    assert "process_cpu_seconds_total " in text
