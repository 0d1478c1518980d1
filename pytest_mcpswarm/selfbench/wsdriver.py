"""The fastest client we have for MCP over WebSocket: picows, many calls in flight, one write per tick.

picows (C) does the handshake and parses the server's frames.  Sending is
ours: each reply owes the server one new request, and all requests owed
when a read buffer is exhausted (``frame.last_in_buffer``) are built as
masked frames and handed to the socket in a single write.  Under load that
turns dozens of syscalls into one, which is what lets a single client core
outrun the server core.  Run as ``python -m pytest_mcpswarm.selfbench.wsdriver``;
it prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

import orjson
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from pytest_mcpswarm.selfbench.request import ECHO_TEXT, ToolCall
from pytest_mcpswarm.selfbench.wsframe import text_frame

#: Every this-many-th reply is parsed in full; the byte checks alone could be fooled.
_SAMPLE_MASK = 1023


class _Tally:
    def __init__(self) -> None:
        self.replies = 0
        self.errors = 0
        self.closed = 0
        self.sampled = 0
        self.bad_sample: str | None = None


def _sample_ok(payload: bytes, lowest_id: int, next_id: int) -> bool:
    """A real echo result, answering an id this connection has sent."""
    try:
        msg = orjson.loads(payload)
        rid, result = msg["id"], msg["result"]
        texts = [c.get("text") for c in result["content"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return False
    return (
        isinstance(rid, int)
        and lowest_id <= rid < next_id
        and ECHO_TEXT in texts
        and not result.get("isError")
    )


class _Client(WSListener):
    def __init__(self, tally: _Tally, template: tuple[bytes, bytes], inflight: int) -> None:
        self._tally = tally
        self._head, self._tail = template
        self._inflight = inflight
        self._owed = 0
        self._next_id = 1
        self._write: object = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        # Bypass picows' per-frame write: our frames are complete and masked, so
        # appending them to the stream between picows' own control frames is safe.
        self._write = transport.underlying_transport.write
        self._owed = self._inflight
        self._flush()

    def _flush(self) -> None:
        head, tail, n = self._head, self._tail, self._next_id
        frames = [text_frame(head + str(i).encode() + tail) for i in range(n, n + self._owed)]
        self._next_id = n + self._owed
        self._owed = 0
        self._write(b"".join(frames))  # type: ignore[operator]

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.disconnect()
            return
        payload = frame.get_payload_as_bytes()
        # Cheap byte checks instead of a parse: the full reply was validated before the run.
        tally = self._tally
        if b'"result"' in payload and b'"isError":true' not in payload:
            tally.replies += 1
            if not tally.replies & _SAMPLE_MASK:
                tally.sampled += 1
                if not _sample_ok(payload, 1, self._next_id):
                    tally.errors += 1
                    tally.bad_sample = payload[:200].decode("utf-8", "replace")
        else:
            tally.errors += 1
        self._owed += 1
        if frame.last_in_buffer:
            self._flush()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._tally.closed += 1


async def _drive(
    url: str, connections: int, inflight: int, warmup: float, duration: float
) -> dict[str, object]:
    tally = _Tally()
    template = ToolCall().ws_template()
    transports: list[WSTransport] = []
    for _ in range(connections):
        transport, _client = await ws_connect(lambda: _Client(tally, template, inflight), url)
        transports.append(transport)
    await asyncio.sleep(warmup)
    start_n, start_e, started = tally.replies, tally.errors, time.perf_counter()
    await asyncio.sleep(duration)
    n, e, seconds = tally.replies - start_n, tally.errors - start_e, time.perf_counter() - started
    closed = tally.closed
    for transport in transports:
        transport.disconnect(graceful=False)
    if closed:
        return {"error": f"the server closed {closed} of {connections} WebSocket connections during the run"}
    if tally.bad_sample is not None:
        return {"error": f"a sampled WebSocket reply is not a valid echo result: {tally.bad_sample!r}"}
    if n == 0:
        return {"error": f"no successful tools/call reply over WebSocket ({e} error replies)"}
    return {"requests": n, "errors": e, "seconds": seconds, "rate": n / seconds, "sampled": tally.sampled}


def validate_one(url: str, timeout: float = 10.0) -> bytes:
    """Send one tools/call over WebSocket and return the raw reply, for the harness' check."""

    async def once() -> bytes:
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        class One(WSListener):
            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type is WSMsgType.TEXT and not got.done():
                    got.set_result(frame.get_payload_as_bytes())

            def on_ws_disconnected(self, transport: WSTransport) -> None:
                if not got.done():
                    got.set_exception(ConnectionError("the server closed the WebSocket before replying"))

        transport, _ = await ws_connect(One, url)
        try:
            transport.send(WSMsgType.TEXT, ToolCall().body())
            return await asyncio.wait_for(got, timeout)
        finally:
            transport.disconnect(graceful=False)

    return uvloop.run(once())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wsdriver")
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=10.0)
    a = parser.parse_args(argv)
    try:
        result = uvloop.run(_drive(a.url, a.connections, a.inflight, a.warmup, a.duration))
    except (TimeoutError, OSError) as exc:
        result = {"error": f"cannot open a WebSocket to {a.url}: {exc}"}
    except Exception as exc:  # picows raises its own handshake errors; report them as one line
        result = {"error": f"WebSocket to {a.url} failed: {type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
