"""Our fastest pure-Python HTTP/1.1 load client: the fallback when wrk is not installed.

Same model as wrk: N keep-alive connections, one request in flight each,
the next sent the moment a reply completes.  uvloop runs the sockets and
httptools (C) parses replies, so the Python cost per request is a handful
of calls.  Run as ``python -m pytest_mcpswarm.selfbench.httpdriver ...``;
it prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from typing import cast

import httptools
import orjson
import uvloop

from pytest_mcpswarm.selfbench.driver import percentile_ms
from pytest_mcpswarm.selfbench.request import ToolCall


class _Tally:
    def __init__(self) -> None:
        self.measuring = False
        self.ok = 0
        self.errors = 0
        self.latencies: list[int] = []


class _Conn(asyncio.Protocol):
    def __init__(self, request: bytes, tally: _Tally, lost: asyncio.Future[None]) -> None:
        self._request = request
        self._tally = tally
        self._lost = lost
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._sent_at = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, only shaped like one.
        self._transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._sent_at = time.perf_counter_ns()
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_complete(self) -> None:  # httptools callback
        tally = self._tally
        if tally.measuring:
            if self._parser.get_status_code() == 200:
                tally.ok += 1
                tally.latencies.append(time.perf_counter_ns() - self._sent_at)
            else:
                tally.errors += 1
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)


async def _drive(host: str, port: int, connections: int, warmup: float, duration: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    request = ToolCall().http_request(host, port)
    tally = _Tally()
    lost: asyncio.Future[None] = loop.create_future()
    transports = []
    for _ in range(connections):
        transport, _proto = await loop.create_connection(lambda: _Conn(request, tally, lost), host, port)
        transports.append(transport)
    await asyncio.sleep(warmup)
    tally.measuring = True
    started = time.perf_counter()
    # A server that closes a connection mid-run would silently shrink the load: stop and say so.
    await asyncio.wait([lost], timeout=duration)
    seconds = time.perf_counter() - started
    tally.measuring = False
    for transport in transports:
        transport.close()
    if lost.done():
        return {"error": "the server closed a keep-alive connection during the run"}
    if tally.ok == 0:
        return {"error": f"no successful reply from {host}:{port} ({tally.errors} non-200 replies)"}
    samples = sorted(tally.latencies)
    return {
        "requests": tally.ok,
        "errors": tally.errors,
        "seconds": seconds,
        "rps": tally.ok / seconds,
        "p50_ms": percentile_ms(samples, 50),
        "p99_ms": percentile_ms(samples, 99),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="httpdriver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=10.0)
    a = parser.parse_args(argv)
    try:
        result = uvloop.run(_drive(a.host, a.port, a.connections, a.warmup, a.duration))
    except OSError as exc:
        result = {"error": f"cannot connect to {a.host}:{a.port}: {exc.strerror or exc}"}
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
