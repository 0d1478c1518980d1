"""WebSocket client transport on picows: one TEXT frame per JSON-RPC message.

picows parses frames in C and hands each one to ``on_ws_frame``, which calls
``sink.on_message`` directly: no queue, no Future, no task per message.
``send`` goes straight to ``WSTransport.send``, which masks in C and issues
one ``send(2)``.  A per-tick cork (queue frames, write once per loop
iteration) was measured and was not faster: 212K vs 216K round trips/s at
10 connections x 64 in flight (raw picows, picows echo peer on the other
core), because masking the frames in Python costs what the saved syscalls
gain.  So there is no batching knob.

``send_many`` is the load engine's path: every request one connection owes
in one scheduler tick leaves in ONE write.  Each frame is still masked with
its own fresh key (RFC 6455 §5.3), in C by ``websockets.speedups.apply_mask``;
at 10 frames per write that costs ~0.2 µs a frame against ~2 µs for the
``send(2)`` each frame would otherwise take.

``newline=True`` is erlmcp's framing: each frame we send ends in ``\\n`` and
received text is a stream of ``\\n``-terminated lines, which may be split
across or packed into frames; :class:`LineSplitter` reassembles them.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Final
from urllib.parse import urlsplit

from picows import (
    WSCloseCode,
    WSFrame,
    WSHandshakeError,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from pytest_mcpswarm.errors import TargetError, TransportError
from pytest_mcpswarm.transport.base import MessageSink, SendMeta

try:
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover - websockets ships the C speedup in its wheels

    def _apply_mask(data: bytes | bytearray | memoryview[int], mask: bytes | bytearray) -> bytes:
        n = len(data)
        stream = (mask * (n // 4 + 1))[:n]
        return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


__all__ = ["LineSplitter", "WebSocketTransport", "masked_text_frames"]

#: Mask keys: picows itself uses C ``rand()``; a seeded Mersenne Twister is no weaker.
_rng = random.Random()
_headers: dict[int, bytes] = {}


def _frame_header(n: int) -> bytes:
    """FIN + TEXT opcode, MASK bit and the payload length (RFC 6455 §5.2)."""
    header = _headers.get(n)
    if header is None:
        if n < 126:
            header = bytes((0x81, 0x80 | n))
        elif n < 1 << 16:
            header = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            header = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
        if len(_headers) < 4096:
            _headers[n] = header
    return header


def masked_text_frames(payloads: Sequence[bytes]) -> bytes:
    """Client TEXT frames for ``payloads``, each with its own random mask key, concatenated."""
    keys = _rng.randbytes(4 * len(payloads))
    out: list[bytes] = []
    add = out.append
    at = 0
    for payload in payloads:
        key = keys[at : at + 4]
        at += 4
        add(_frame_header(len(payload)))
        add(key)
        add(_apply_mask(payload, key))
    return b"".join(out)


_TEXT = WSMsgType.TEXT
_CONT = WSMsgType.CONTINUATION
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE


_WRONG_WS_PATH: Final = (
    "the path is probably wrong: erlmcp and `mcpswarm serve` serve WebSocket at ws://HOST:PORT/mcp/ws "
    "(Streamable HTTP is http://HOST:PORT/mcp)"
)


class LineSplitter:
    """Turns a byte stream into ``\\n``-terminated lines, holding a partial line between feeds.

    Empty lines are skipped: erlmcp-style peers may send a bare ``\\n`` as a
    keep-alive, and an empty string is never a JSON-RPC message.
    """

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back."""
        return len(self._partial)

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._partial:
            chunk = self._partial + chunk
        lines = chunk.split(b"\n")
        self._partial = lines.pop()
        return [line for line in lines if line]


class _Listener(WSListener):
    """picows callback object; lives exactly as long as one connection."""

    def __init__(self, owner: WebSocketTransport, sink: MessageSink) -> None:
        super().__init__()
        self._owner = owner
        self._sink = sink
        self._on_message = sink.on_message  # bound once: saves an attribute lookup per frame
        self._fragments: list[bytes] | None = None
        self._fragment_bytes = 0
        self._lines = LineSplitter() if owner.newline else None
        self._max = owner.max_message_bytes
        self.error: TransportError | None = None
        self.paused: asyncio.Future[None] | None = None
        self._plain_text_path()

    def _plain_text_path(self) -> None:
        """Route whole text frames straight to the sink, when no fragmented message is open.

        picows looks ``on_ws_frame`` up on the instance first, so this closure
        shadows the method below for the common frame: it reads no attribute of
        this object (an attribute of a subclass of picows' C type costs 29 ns a
        read here) and decides with two frame fields.  Measured with picows test
        frames and the load engine's sink: 1,365 -> 1,220 ns a reply.  Anything
        else, and every frame while a fragmented message is being reassembled,
        takes the method.
        """
        if self._lines is not None:
            return
        on_message, general = self._on_message, self._on_frame

        def on_ws_frame(transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is _TEXT and frame.fin:
                on_message(frame.get_payload_as_bytes())
            else:
                general(transport, frame)

        vars(self)["on_ws_frame"] = on_ws_frame

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._owner._connected(self, transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self._on_frame(transport, frame)

    def _on_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is _TEXT and frame.fin and self._fragments is None:
            if self._lines is None:
                self._on_message(frame.get_payload_as_bytes())
            else:
                for line in self._lines.feed(frame.get_payload_as_bytes()):
                    self._on_message(line)
                if self._lines.pending > self._max:
                    self._fail(transport, "a newline-framed message grew past max_message_bytes")
            return
        if msg_type is _TEXT or msg_type is _CONT:
            self._fragment(transport, frame)
        elif msg_type is _BINARY:
            # MCP over WebSocket carries JSON text only; binary means the peer is not an MCP server.
            self._fail(
                transport,
                "the server sent a binary WebSocket frame; MCP messages must be text frames",
                WSCloseCode.UNSUPPORTED_DATA,
            )
        elif msg_type is _CLOSE:
            code = frame.get_close_code()
            reason = frame.get_close_reason()
            if not self._owner.closing:
                self.error = TransportError(
                    f"the server closed the WebSocket (code {code.value}"
                    + (f", reason {reason!r})" if reason else ")"),
                    kind="closed",
                )
            transport.send_close(code if code is not WSCloseCode.NO_INFO else WSCloseCode.OK)
            transport.disconnect()
        # PING is answered by picows (enable_auto_pong); PONG needs nothing.

    def _fragment(self, transport: WSTransport, frame: WSFrame) -> None:
        # A message split into several frames: rare for JSON-RPC, but legal.
        if frame.msg_type is _TEXT:
            if self._fragments is not None:
                self._fail(transport, "a new text frame started inside a fragmented message")
                return
            self._fragments = []
            self._fragment_bytes = 0
            vars(self).pop("on_ws_frame", None)  # every frame through the method until it is whole
        elif self._fragments is None:
            self._fail(transport, "a continuation frame arrived with no message to continue")
            return
        payload = frame.get_payload_as_bytes()
        self._fragment_bytes += len(payload)
        if self._fragment_bytes > self._max:
            self._fail(
                transport, "a fragmented message grew past max_message_bytes", WSCloseCode.MESSAGE_TOO_BIG
            )
            return
        self._fragments.append(payload)
        if frame.fin:
            data = b"".join(self._fragments)
            self._fragments = None
            self._plain_text_path()
            if self._lines is None:
                self._on_message(data)
            else:
                for line in self._lines.feed(data):
                    self._on_message(line)

    def _fail(
        self, transport: WSTransport, problem: str, code: WSCloseCode = WSCloseCode.PROTOCOL_ERROR
    ) -> None:
        if self.error is None:
            self.error = TransportError(
                problem, kind="protocol", fix="check that the URL points at an MCP WebSocket endpoint"
            )
        transport.send_close(code)
        transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._owner._disconnected(self)

    def pause_writing(self) -> None:
        if self.paused is None:
            self.paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        fut, self.paused = self.paused, None
        if fut is not None and not fut.done():
            fut.set_result(None)


class WebSocketTransport:
    """MCP over WebSocket (``ws://`` / ``wss://``), one connection per instance."""

    def __init__(
        self,
        url: str,
        *,
        newline: bool = False,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        max_message_bytes: int = 16 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise TargetError(f"{url!r} is not a WebSocket URL")
        self.url = url
        self.newline = newline
        self.headers = dict(headers or {})
        self.connect_timeout = connect_timeout
        self.max_message_bytes = max_message_bytes
        self.ssl_context = ssl_context
        self.closing = False
        self._protocol_version: str | None = None
        self._ws: WSTransport | None = None
        self._listener: _Listener | None = None
        self._sink: MessageSink | None = None
        self._open = False
        self._send = self._send_closed
        self._write: Callable[[bytes], object] | None = None
        self._gone: asyncio.Future[None] | None = None

    # -- ClientTransport ---------------------------------------------------------------

    async def connect(self, sink: MessageSink) -> None:
        if self._ws is not None:
            raise TransportError("connect() called twice on one WebSocketTransport", kind="closed")
        self._sink = sink
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws, listener = await ws_connect(
                    lambda: _Listener(self, sink),
                    self.url,
                    ssl_context=self.ssl_context,
                    websocket_handshake_timeout=self.connect_timeout,
                    max_frame_size=self.max_message_bytes,
                    extra_headers=self.headers or None,
                    enable_auto_pong=True,
                    # uvloop's own transport: aiofastnet (picows' default when installed) gave
                    # 83-114K vs 150-184K round trips/s here, 10 connections x 64 in flight.
                    use_aiofastnet=False,
                )
        except WSHandshakeError as exc:
            raise self._handshake_error(exc) from exc
        except TimeoutError as exc:
            raise TransportError(
                f"no WebSocket handshake from {self.url} within {self.connect_timeout:g}s", kind="timeout"
            ) from exc
        except ssl.SSLError as exc:
            raise TransportError(f"TLS handshake with {self.url} failed: {exc}", kind="tls") from exc
        except ConnectionRefusedError as exc:
            raise TransportError(f"connection to {self.url} refused", kind="refused") from exc
        except ConnectionResetError as exc:
            raise TransportError(
                f"{self.url} reset the connection during the handshake", kind="reset"
            ) from exc
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.url}: {exc}", kind="refused") from exc
        if not (isinstance(listener, _Listener) and listener is self._listener and ws is self._ws):
            # picows can return a transport whose handshake callback never ran when the peer
            # resets right after the upgrade: the connection is gone before it was ours.
            ws.disconnect()
            raise TransportError(f"{self.url} closed the connection during the handshake", kind="reset")
        # The server may already have sent messages, or even closed: the sink has seen that
        # through the listener, exactly as it would have a moment later.

    def _connected(self, listener: _Listener, ws: WSTransport) -> None:
        # Called by picows the moment the handshake completes, before ws_connect() returns,
        # so frames that arrive in the same read are never seen by a half-set-up transport.
        self._ws = ws
        self._listener = listener
        self._open = True
        self._gone = asyncio.get_running_loop().create_future()
        raw_send = ws.send
        self._write = ws.underlying_transport.write
        if self.newline:

            def send_line(data: bytes, meta: SendMeta) -> None:
                raw_send(_TEXT, data if data.endswith(b"\n") else data + b"\n")

            self._send = send_line
        else:

            def send_frame(data: bytes, meta: SendMeta) -> None:
                raw_send(_TEXT, data)

            self._send = send_frame

    def send(self, data: bytes, meta: SendMeta) -> None:
        # Indirection through a closure picked at connect time keeps the hot path branch-free.
        self._send(data, meta)

    def send_many(self, payloads: Sequence[bytes]) -> None:
        """Send several messages as masked frames in one write (the load engine's coalescing)."""
        write, ws = self._write, self._ws
        if write is None or ws is None or self.closing or ws.is_close_frame_sent:
            self._send_closed(b"", SendMeta("send_many"))
            return
        if self.newline:
            payloads = [p if p.endswith(b"\n") else p + b"\n" for p in payloads]
        # Whole frames appended to the byte stream between picows' own (control) frames: safe,
        # because picows writes each of its frames whole, from the same thread.
        write(masked_text_frames(payloads))

    async def drain(self) -> None:
        listener = self._listener
        if listener is not None and listener.paused is not None:
            await listener.paused
        if not self._open:
            self._send_closed(b"", SendMeta("drain"))

    async def close(self) -> None:
        ws = self._ws
        if ws is None or self.closing:
            return
        self.closing = True
        if not ws.is_disconnected:
            ws.send_close(WSCloseCode.OK)
            assert self._gone is not None
            try:
                async with asyncio.timeout(2.0):
                    await asyncio.shield(self._gone)
            except TimeoutError:
                ws.disconnect(graceful=False)
                await ws.wait_disconnected()

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def protocol_version(self) -> str | None:
        return self._protocol_version

    @protocol_version.setter
    def protocol_version(self, value: str | None) -> None:
        self._protocol_version = value

    # -- internals ---------------------------------------------------------------------

    def _send_closed(self, data: bytes, meta: SendMeta) -> None:
        raise TransportError(f"the WebSocket to {self.url} is closed", kind="closed")

    def _disconnected(self, listener: _Listener) -> None:
        if self._listener is not listener:
            return  # handshake never completed here: connect() raises instead
        self._open = False
        self._send = self._send_closed
        self._write = None
        listener.resume_writing()  # wake drain() waiters; they will see the closed state
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        assert self._sink is not None
        error = listener.error
        if error is None and not self.closing:
            error = TransportError(
                f"the connection to {self.url} dropped without a close frame", kind="reset"
            )
        self._sink.on_closed(None if self.closing and listener.error is None else error)

    def _handshake_error(self, exc: WSHandshakeError) -> TransportError:
        status = exc.response.status if exc.response is not None else None
        if status is None:
            return TransportError(f"WebSocket handshake with {self.url} failed: {exc}", kind="closed")
        code = int(status)
        # 404/405: a path that does not exist, or the Streamable HTTP endpoint (POST only).
        fix = _WRONG_WS_PATH if code in (404, 405) else None
        return TransportError(
            f"{self.url} refused the WebSocket upgrade with HTTP {code}", kind=f"http_{code}", fix=fix
        )
