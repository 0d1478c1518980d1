"""Fault modes and service-time knobs of `mcpswarm serve`: what the client sees matches what /stats counts."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from pytest_mcpswarm.server.launch import ServerProcess


def stats(srv: ServerProcess) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("GET", "/stats")
    data: dict[str, Any] = json.loads(conn.getresponse().read())
    conn.close()
    return data


def call(rid: int, text: str = "x") -> str:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}},
        }
    )


async def blast(ws: ClientConnection, n: int) -> None:
    for rid in range(n):
        await ws.send(call(rid))


async def collect(ws: ClientConnection, expected: int) -> list[str]:
    replies: list[str] = []
    async with asyncio.timeout(10.0):
        while len(replies) < expected:
            msg = await ws.recv()
            assert isinstance(msg, str)
            replies.append(msg)
    return replies


N = 2000


async def test_drop_counts_and_seed_is_deterministic() -> None:
    dropped_runs = []
    for _ in range(2):
        with ServerProcess(["--fault", "drop:5%", "--seed", "7"]) as srv:
            async with connect(srv.ws_url) as ws:
                await blast(ws, N)
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": "end", "method": "tools/list"}))
                await asyncio.sleep(0.3)
                dropped = stats(srv)["faults"]["drop"]
                replies = await collect(ws, N - dropped + (0 if dropped else 1))
            ids = {json.loads(r)["id"] for r in replies} - {"end"}
            assert 0 < dropped < N * 0.1
            assert len(ids) == N - dropped
            dropped_runs.append(set(range(N)) - ids)
    assert dropped_runs[0] == dropped_runs[1]


async def test_malformed_and_error_counts() -> None:
    with ServerProcess(["--fault", "malformed:5%", "--fault", "error:5%", "--seed", "1"]) as srv:
        async with connect(srv.ws_url) as ws:
            await blast(ws, N)
            replies = await collect(ws, N)
        malformed = errors = 0
        for r in replies:
            try:
                msg = json.loads(r)
            except json.JSONDecodeError:
                malformed += 1
                continue
            errors += "error" in msg
        faults = stats(srv)["faults"]
    assert faults["malformed"] == malformed > 0
    assert faults["error"] == errors > 0


def test_close_counts_over_http() -> None:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": "echo",
                "arguments": {"text": "x"},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        }
    )
    headers = {
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "echo",
    }
    with ServerProcess(["--fault", "close:10%", "--seed", "3"]) as srv:
        aborted = 0
        for _ in range(200):
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
            try:
                conn.request("POST", "/mcp", body=body, headers=headers)
                assert conn.getresponse().status == 200
            except (http.client.RemoteDisconnected, ConnectionResetError):
                aborted += 1
            finally:
                conn.close()
        assert stats(srv)["faults"]["close"] == aborted > 0


async def test_delay_fault_and_stall() -> None:
    with ServerProcess(["--fault", "delay:uniform:20ms-30ms", "--fault", "stall:400ms/1s"]) as srv:
        async with connect(srv.ws_url) as ws:
            latencies = []
            deadline = time.monotonic() + 1.6
            rid = 0
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                await ws.send(call(rid))
                await collect(ws, 1)
                latencies.append(time.monotonic() - t0)
                rid += 1
        faults = stats(srv)["faults"]
    assert min(latencies) >= 0.019
    assert max(latencies) >= 0.2  # at least one reply was held by the stall
    assert faults["delay"] == rid
    assert faults["stall"] >= 1


@pytest.mark.parametrize(("limit", "low", "high"), [("2", 0.38, 1.5), ("0", 0.0, 0.3)])
async def test_delay_and_max_concurrency_bound_capacity(limit: str, low: float, high: float) -> None:
    # 20 ms per call, 2 in service: capacity 100 calls/s, so 40 calls need ~0.4 s; unlimited: ~20 ms.
    with ServerProcess(["--delay-ms", "20", "--max-concurrency", limit]) as srv:
        async with connect(srv.ws_url) as ws:
            t0 = time.monotonic()
            await blast(ws, 40)
            replies = await collect(ws, 40)
            elapsed = time.monotonic() - t0
    assert sorted(json.loads(r)["id"] for r in replies) == list(range(40))
    assert low <= elapsed <= high
