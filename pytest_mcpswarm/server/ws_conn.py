"""One WebSocket connection after the upgrade: frames in, one TEXT frame per JSON-RPC reply out.

Two framings share the wire.  Standard MCP-over-WebSocket puts one message in
one text frame.  erlmcp puts newline-terminated lines in a frame; a payload
that is not one JSON document but holds newlines is read line by line, and a
request that ended with ``\\n`` is answered with frames that end with ``\\n``.
"""

from __future__ import annotations

import asyncio

import orjson

from pytest_mcpswarm.server import wsframes as wf
from pytest_mcpswarm.server.context import ServerContext
from pytest_mcpswarm.server.dispatch import CLOSE, DROP, NO_REPLY
from pytest_mcpswarm.server.throttle import ReadThrottle


class WsConnection(asyncio.Protocol):
    def __init__(self, ctx: ServerContext, throttle: ReadThrottle | None = None) -> None:
        self.ctx = ctx
        #: The upgraded HTTP connection's slow-read pacing, carried over to the same socket.
        self._throttle = throttle
        self.parser = wf.FrameParser(ctx.config.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self._out: list[bytes] | None = None
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ctx.stats.connections["ws"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.ctx.stats.connections["ws"] -= 1
        if self._throttle is not None:
            self._throttle.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._throttle is not None:
            self._throttle.consumed(len(data))
        error: wf.FrameError | None = None
        try:
            messages = self.parser.feed(data)
        except wf.FrameError as exc:
            messages, error = exc.messages, exc
        self._out = out = []
        for opcode, payload in messages:
            if opcode == wf.TEXT:
                self._on_text(payload)
            elif opcode == wf.PING:
                out.append(wf.control_frame(wf.PONG, payload))
            elif opcode == wf.CLOSE:
                self._on_close(payload)
            elif opcode == wf.BINARY:
                self._close(wf.CLOSE_UNSUPPORTED_DATA, "binary frames are not accepted; send JSON text")
            if self._closed:
                return
        if error is not None:
            self._close(error.code, error.reason)  # sends the replies gathered in self._out first
            return
        self._out = None
        if out:
            assert self.transport is not None
            self.ctx.gate.write(self.transport, out[0] if len(out) == 1 else b"".join(out))

    def _on_text(self, payload: bytes) -> None:
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            if b"\n" in payload:
                nl = int(payload.endswith(b"\n"))
                for line in payload.split(b"\n"):
                    if line.strip() and not self._closed:
                        self._one_line(line, nl)
                return
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                self._close(wf.CLOSE_INVALID_PAYLOAD, "text frame is not valid UTF-8")
                return
            self._emit(*self.ctx.dispatcher.parse_error(), 0)
            return
        nl = int(payload[-1:] == b"\n")
        reply = self.ctx.dispatcher.handle(msg, self, nl, None, False)
        if reply is not None:
            self._emit(reply[0], reply[1], nl)

    def _one_line(self, line: bytes, nl: int) -> None:
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError:
            self._emit(*self.ctx.dispatcher.parse_error(), nl)
            return
        reply = self.ctx.dispatcher.handle(msg, self, nl, None, False)
        if reply is not None:
            self._emit(reply[0], reply[1], nl)

    def deliver(self, token: int, code: int, body: bytes) -> None:
        if not self._closed:
            self._emit(code, body, token)

    def _emit(self, code: int, body: bytes, nl: int) -> None:
        if code in (NO_REPLY, DROP):
            return
        transport = self.transport
        assert transport is not None
        if code == CLOSE:
            if self._out:
                self.ctx.gate.write(transport, b"".join(self._out))
            self._out = None
            self._closed = True
            transport.abort()
            return
        frame = wf.text_frame(body + b"\n" if nl else body)
        if self._out is not None:
            self._out.append(frame)
        else:
            self.ctx.gate.write(transport, frame)

    def _on_close(self, payload: bytes) -> None:
        """Answer the peer's close with the same code (§5.5.1), then end the TCP connection."""
        if len(payload) == 1:
            self._close(wf.CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload")
            return
        code = int.from_bytes(payload[:2], "big") if payload else wf.CLOSE_NORMAL
        self._close(code, "")

    def _close(self, code: int, reason: str) -> None:
        """Send a close frame after any pending replies and end the connection."""
        transport = self.transport
        assert transport is not None
        out = self._out or []
        out.append(wf.close_frame(code, reason))
        self._out = None
        self._closed = True
        # Bypass the stall gate: a close must not be held behind a pause it has nothing to do with.
        transport.write(b"".join(out))
        transport.close()
