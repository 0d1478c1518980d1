"""The new fault modes at the socket level, and their counters in /stats and /metrics."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pytest_mcpswarm.server.launch import ServerProcess

CLIENT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": CLIENT}
DISCOVER = {"jsonrpc": "2.0", "id": 2, "method": "server/discover",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientCapabilities": {}}}}  # fmt: skip
FAULT_SERIES = ("mcpswarm_server_faults_injected_total", "mcpswarm_server_fault_seconds_total")


def get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    return conn.getresponse().read()


def post(srv: ServerProcess, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("POST", "/mcp", json.dumps(body), {"content-type": "application/json", **(headers or {})})
    data: dict[str, Any] = json.loads(conn.getresponse().read())
    conn.close()
    return data


def fault_metrics(text: str) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (
                "mcpswarm_server_faults_injected_total",
                "mcpswarm_server_fault_seconds_total",
            ):
                out[(sample.name, sample.labels["kind"])] = sample.value
    return out


def test_refuse_after_n_resets_later_connections_and_counts_them() -> None:
    with ServerProcess(["--fault", "refuse:after:1"]) as srv:
        keep = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)  # connection 1: served
        assert json.loads(get(keep, "/health"))["status"] == "ok"
        for _ in range(3):
            # The reset may come before our send, during it, or as we read: never an answer.
            with (
                contextlib.suppress(ConnectionResetError, BrokenPipeError),
                socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock,
            ):
                sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                assert sock.recv(100) == b""  # closed without an answer
        stats = json.loads(get(keep, "/stats"))
        assert stats["faults"]["refuse"] == 3
        assert stats["active_connections"] == {"http": 1, "ws": 0}  # refused ones never counted
        assert (
            fault_metrics(get(keep, "/metrics").decode())[("mcpswarm_server_faults_injected_total", "refuse")]
            == 3
        )
        keep.close()


def test_version_fault_answers_both_handshakes_with_the_wrong_revision() -> None:
    with ServerProcess(["--fault", "version:2099-01-01"]) as srv:
        assert post(srv, INIT)["result"]["protocolVersion"] == "2099-01-01"
        headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "server/discover"}
        assert post(srv, DISCOVER, headers)["result"]["supportedVersions"] == ["2099-01-01"]
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        assert json.loads(get(conn, "/stats"))["faults"]["version"] == 2
        conn.close()


def test_version_fault_window_ends() -> None:
    with ServerProcess(["--fault", "version:2099-01-01@-300ms"]) as srv:
        time.sleep(0.4)
        assert post(srv, INIT)["result"]["protocolVersion"] == "2025-11-25"


def test_slowread_paces_a_sender_and_reports_time() -> None:
    with ServerProcess(["--fault", "slowread:20KB/s"]) as srv:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
        request = (
            b"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"mcp-session-id: none\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            t0 = time.monotonic()
            sock.sendall(request * 200)  # about 30 KB pipelined: 1.5 s at 20 KB/s
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            elapsed = time.monotonic() - t0
        assert received.count(b"HTTP/1.1 404 ") == 200  # every request answered (unknown session)
        assert elapsed > 1.0
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        stats = json.loads(get(conn, "/stats"))
        metrics = fault_metrics(get(conn, "/metrics").decode())
        conn.close()
        assert stats["faults"]["slowread"] > 0
        assert stats["fault_seconds"]["slowread"] > 1.0
        assert metrics[("mcpswarm_server_fault_seconds_total", "slowread")] > 1.0
