"""One HTTP/1.1 connection: httptools parsing, routing, Streamable HTTP, and the hand-off to WebSocket.

Replies produced while handling one ``data_received`` are joined into a single
``transport.write``.  Pipelined requests are answered in order: a reply that
waits for service time holds back the replies queued after it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Final

import httptools
import orjson

from pytest_mcpswarm.protocol import versions as v
from pytest_mcpswarm.server import wsframes
from pytest_mcpswarm.server.context import ServerContext
from pytest_mcpswarm.server.dispatch import CLOSE, DROP, NO_REPLY, OK, error_body, negotiate
from pytest_mcpswarm.server.throttle import ReadThrottle, reset
from pytest_mcpswarm.server.ws_conn import WsConnection

MAX_HEADER_BYTES: Final = 64 * 1024
_ROUTING: Final = frozenset({v.H_PROTOCOL_VERSION.encode(), v.H_METHOD.encode(), v.H_NAME.encode()})
_PV: Final = v.H_PROTOCOL_VERSION.encode()
_SID: Final = v.H_SESSION_ID.encode()
_OK_JSON_HEAD: Final = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
#: JSON-RPC error code -> HTTP status, as the SDK maps it (mcp/shared/inbound.py); unmapped -> 200.
STATUS_FOR_CODE: Final = {
    v.PARSE_ERROR: 400, v.INVALID_REQUEST: 400, v.INVALID_PARAMS: 400, v.HEADER_MISMATCH: 400,
    v.MISSING_CLIENT_CAPABILITY: 400, v.UNSUPPORTED_PROTOCOL_VERSION: 400, v.METHOD_NOT_FOUND: 404,
}  # fmt: skip
_REASONS: Final = {
    200: b"OK", 202: b"Accepted", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
    405: b"Method Not Allowed", 406: b"Not Acceptable", 413: b"Content Too Large",
    415: b"Unsupported Media Type", 426: b"Upgrade Required", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 503: b"Service Unavailable",
}  # fmt: skip
_STATUS_LINES: Final = {s: b"HTTP/1.1 %d %s\r\n" % (s, r) for s, r in _REASONS.items()}
_JSON: Final = b"application/json"


def response(status: int, body: bytes, keep_alive: bool, extra: bytes = b"", ctype: bytes = _JSON) -> bytes:
    """One complete HTTP/1.1 response; ``extra`` is additional ``name: value\\r\\n`` header lines."""
    head = _STATUS_LINES[status] + extra
    if body or status != 202:
        head += b"content-type: " + ctype + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n"
    else:
        head += b"content-length: 0\r\n"
    if not keep_alive:
        head += b"connection: close\r\n"
    return head + b"\r\n" + body


def _rpc_error(status: int, code: int, message: str, keep_alive: bool, extra: bytes = b"") -> bytes:
    return response(status, error_body(None, code, message), keep_alive, extra)


class HttpConnection(asyncio.Protocol):
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        # Raw bytes, names lower-cased: decoding every header of every request costs more than
        # decoding the few that a given route reads.
        self._headers: dict[bytes, bytes] = {}
        self._accept_ok: dict[bytes, bool] = {}
        self._header_bytes = 0
        self._dup_routing: str | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_big = False
        self._ws_accept: str | None = None
        self._out: list[bytes] | None = None
        self._seq = 0
        # Replies not yet sent, in request order: [seq, bytes or None while in service, keep_alive].
        self._pending: deque[list[Any]] = deque()
        self._closing = False
        self._upgraded = False
        self._refused = False
        self._throttle: ReadThrottle | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        injector = self.ctx.injector
        if injector.plan.refuse is not None and injector.refuse_connection():
            self._refused = self._closing = True
            reset(transport)
            return
        self.ctx.stats.connections["http"] += 1
        if injector.plan.slowread_bps is not None:
            self._throttle = ReadThrottle(self.ctx.loop, transport, injector)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._throttle is not None and not self._upgraded:
            self._throttle.cancel()
        if not (self._upgraded or self._refused):
            self.ctx.stats.connections["http"] -= 1

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._throttle is not None:
            self._throttle.consumed(len(data))
        out: list[bytes] = []
        self._out = out
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            if self._ws_accept is not None:
                self._flush(out)
                self._upgrade(data[exc.args[0] :])
                return
        except httptools.HttpParserCallbackError as exc:
            # Our own handler raised, not the client's bytes: a server bug.  Report it loudly
            # (the loop's handler logs the traceback to stderr) and answer 500, never a 400.
            self.ctx.loop.call_exception_handler(
                {"message": "reference server: request handler failed", "exception": exc.__context__ or exc,
                 "protocol": self}
            )  # fmt: skip
            out.append(response(500, b'{"error":"internal server error"}', False))
            self._closing = True
        except httptools.HttpParserError:
            out.append(response(400, b'{"error":"malformed HTTP request"}', False))
            self._closing = True
        self._flush(out)

    def _flush(self, out: list[bytes]) -> None:
        self._out = None
        transport = self.transport
        assert transport is not None
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            gate = self.ctx.gate
            if gate.stalled:
                gate.write(transport, data)
            else:
                transport.write(data)
        if self._closing and not self._pending:
            transport.close()

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0
        self._dup_routing = None
        self._url = b""
        self._body = []
        self._body_size = 0
        self._too_big = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._header_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(value)
        key = name.lower()
        headers = self._headers
        if key in headers and key in _ROUTING:
            self._dup_routing = key.decode()
        headers[key] = value

    def _header(self, name: bytes, default: str | None = None) -> str | None:
        value = self._headers.get(name)
        return default if value is None else value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self._header_bytes > MAX_HEADER_BYTES:
            self._reject(431, "request headers too large")
            return
        length = self._headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.ctx.config.max_message_bytes:
            self._reject(413, f"message exceeds {self.ctx.config.max_message_bytes} bytes")

    def on_body(self, body: bytes) -> None:
        if self._too_big:
            return
        self._body_size += len(body)
        if self._body_size > self.ctx.config.max_message_bytes:  # chunked bodies announce no length
            self._reject(413, f"message exceeds {self.ctx.config.max_message_bytes} bytes")
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._too_big or self._closing:
            return
        keep_alive = self.parser.should_keep_alive()
        path = self._url.split(b"?", 1)[0]
        method = self.parser.get_method()
        if path in (b"/mcp", b"/mcp/ws"):
            origin = self._header(b"origin")
            if origin is not None and not self.ctx.origin_allowed(origin):
                self._send(
                    _rpc_error(403, v.INVALID_REQUEST, "Forbidden: Origin not allowed", keep_alive),
                    keep_alive,
                )
                return
            if path == b"/mcp/ws":
                self._ws_request(method, keep_alive)
            elif method == b"POST":
                self._post(keep_alive)
            elif method == b"DELETE":
                self._delete(keep_alive)
            else:
                # No server-initiated stream: GET (and anything else) is refused, as the spec permits.
                self._send(response(405, b"", keep_alive, b"allow: POST, DELETE\r\n"), keep_alive)
            return
        if method != b"GET":
            self._send(response(405, b"", keep_alive, b"allow: GET\r\n"), keep_alive)
        elif path == b"/health":
            body = orjson.dumps(
                {"status": "ok", "replica": self.ctx.config.replica, "worker": self.ctx.worker}
            )
            self._send(response(200, body, keep_alive), keep_alive)
        elif path == b"/metrics":
            ctype = self.ctx.exporter.CONTENT_TYPE
            self._send(response(200, self.ctx.exporter.render(), keep_alive, ctype=ctype), keep_alive)
        elif path == b"/stats":
            self._send(response(200, orjson.dumps(self.ctx.stats.snapshot()), keep_alive), keep_alive)
        else:
            self._send(response(404, b'{"error":"not found"}', keep_alive), keep_alive)

    # -- replies in order -------------------------------------------------------------------

    def _reject(self, status: int, message: str) -> None:
        """Refuse the current request and close: its body will not be read."""
        self._too_big = True
        self._body = []
        self._send(_rpc_error(status, v.INVALID_REQUEST, message, False), False)

    def _send(self, data: bytes, keep_alive: bool) -> None:
        if self._pending:
            self._pending.append([-1, data, keep_alive])
        elif self._out is not None:
            self._out.append(data)
        elif self.transport is not None:
            self.ctx.gate.write(self.transport, data)
        if not keep_alive:
            self._closing = True

    def deliver(self, token: int, code: int, body: bytes) -> None:
        """A reply that needed service time is ready; send it and everything queued behind it."""
        for entry in self._pending:
            if entry[0] == token:
                break
        else:
            return
        transport = self.transport
        if code == CLOSE:
            if transport is not None:
                transport.abort()
            return
        if code == DROP:
            # Never answered: the entry stays a hole, so nothing queued behind it goes out either
            # (HTTP/1.1 cannot skip a reply).  The client's timeout is the point of this fault.
            self._closing = True
            return
        entry[1] = self._reply_bytes(code, body, entry[2])
        out = []
        while self._pending and self._pending[0][1] is not None:
            _, data, keep_alive = self._pending.popleft()
            out.append(data)
            if not keep_alive:
                break
        if transport is not None and not transport.is_closing():
            self.ctx.gate.write(transport, b"".join(out))
            if self._closing and not self._pending:
                transport.close()

    def _accepts_json(self, accept: bytes) -> bool:
        ok = self._accept_ok.get(accept)
        if ok is None:
            types = [t.split(b";")[0].strip().lower() for t in accept.split(b",")]
            ok = self._accept_ok[accept] = any(
                t in (b"application/json", b"*/*", b"application/*") for t in types
            )
        return ok

    def _reply_bytes(self, code: int, body: bytes, keep_alive: bool, extra: bytes = b"") -> bytes:
        if code == OK and keep_alive and not extra:
            return _OK_JSON_HEAD + str(len(body)).encode() + b"\r\n\r\n" + body
        if code == OK:
            return response(200, body, keep_alive, extra)
        if code == NO_REPLY:
            return response(202, b"", keep_alive, extra)
        return response(STATUS_FOR_CODE.get(code, 200), body, keep_alive, extra)

    def _answer(
        self, reply: tuple[int, bytes] | None, seq: int, keep_alive: bool, extra: bytes = b""
    ) -> None:
        if reply is None:
            self._pending.append([seq, None, keep_alive])
            if not keep_alive:
                self._closing = True
            return
        code, body = reply
        if code == CLOSE:
            if self._out:
                self._flush(self._out)
            assert self.transport is not None
            self.transport.abort()
            self._closing = True
            return
        if code == DROP:
            self._pending.append([seq, None, keep_alive])  # a hole nothing fills: later replies wait forever
            self._closing = True
            return
        self._send(self._reply_bytes(code, body, keep_alive, extra), keep_alive)

    # -- Streamable HTTP --------------------------------------------------------------------

    def _post(self, keep_alive: bool) -> None:
        headers = self._headers
        accept = headers.get(b"accept")
        if accept is not None and not self._accepts_json(accept):
            self._send(
                _rpc_error(406, v.INVALID_REQUEST, "Not Acceptable: accept application/json", keep_alive),
                keep_alive,
            )
            return
        ctype = headers.get(b"content-type")
        if ctype is not None and not ctype.startswith(b"application/json"):
            self._send(
                _rpc_error(415, v.INVALID_REQUEST, "Content-Type must be application/json", keep_alive),
                keep_alive,
            )
            return
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        try:
            msg = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._answer(self.ctx.dispatcher.parse_error(), -1, keep_alive)
            return
        seq = self._seq = self._seq + 1
        pv_raw = headers.get(_PV)
        pv = None if pv_raw is None else pv_raw.decode("latin-1")
        modern = pv is not None and pv not in v.HANDSHAKE_VERSIONS
        if not modern and type(msg) is dict and _SID not in headers:
            # A session-less body carrying the 2026-07-28 envelope under a missing or handshake-era
            # header: the ladder's header rung then answers "mismatch" rather than "missing session".
            params = msg.get("params")
            meta = params.get("_meta") if type(params) is dict else None
            modern = type(meta) is dict and v.META_PROTOCOL_VERSION in meta
        dispatcher = self.ctx.dispatcher
        if modern:
            if type(msg) is dict and "id" not in msg and "method" in msg:
                if pv not in v.STATELESS_VERSIONS:
                    data = {"supported": list(v.STATELESS_VERSIONS), "requested": pv}
                    err = error_body(
                        None, v.UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version", data
                    )
                    self._send(response(400, err, keep_alive), keep_alive)
                else:
                    self._send(response(202, b"", keep_alive), keep_alive)
                return
            if self._dup_routing is not None and type(msg) is dict:
                err = error_body(
                    msg.get("id"), v.HEADER_MISMATCH, f"{self._dup_routing} header appears more than once"
                )
                self._send(response(400, err, keep_alive), keep_alive)
                return
            routing = {k.decode(): headers[k].decode("latin-1") for k in _ROUTING if k in headers}
            self._answer(dispatcher.handle(msg, self, seq, routing, True), seq, keep_alive)
            return
        if type(msg) is dict and msg.get("method") == "initialize" and "id" in msg:
            self._initialize(msg, seq, keep_alive)
            return
        sid = self._header(_SID)
        if not sid:
            self._send(
                _rpc_error(400, v.INVALID_REQUEST, "Bad Request: Missing session ID", keep_alive), keep_alive
            )
            return
        if self.ctx.sessions.touch(sid) is None:
            self._send(
                _rpc_error(404, v.INVALID_REQUEST, "Not Found: Invalid or expired session ID", keep_alive),
                keep_alive,
            )
            return
        self._answer(dispatcher.handle(msg, self, seq, None, False), seq, keep_alive)

    def _initialize(self, msg: dict[str, Any], seq: int, keep_alive: bool) -> None:
        params = msg.get("params")
        version = negotiate(params.get("protocolVersion") if type(params) is dict else None)
        sid = self.ctx.sessions.create(version)
        if sid is None:
            self._send(
                _rpc_error(503, v.INTERNAL_ERROR, "Service Unavailable: too many sessions", keep_alive),
                keep_alive,
            )
            return
        reply = self.ctx.dispatcher.handle(msg, self, seq, None, False)
        if reply is not None and reply[0] != OK:
            self.ctx.sessions.end(sid)
        self._answer(reply, seq, keep_alive, f"mcp-session-id: {sid}\r\n".encode())

    def _delete(self, keep_alive: bool) -> None:
        sid = self._header(_SID)
        if not sid:
            self._send(
                _rpc_error(400, v.INVALID_REQUEST, "Bad Request: Missing session ID", keep_alive), keep_alive
            )
        elif self.ctx.sessions.end(sid):
            self._send(response(200, b"", keep_alive, ctype=b"text/plain"), keep_alive)
        else:
            self._send(
                _rpc_error(404, v.INVALID_REQUEST, "Not Found: Invalid or expired session ID", keep_alive),
                keep_alive,
            )

    # -- WebSocket --------------------------------------------------------------------------

    def _ws_request(self, method: bytes, keep_alive: bool) -> None:
        headers = self._headers
        if method != b"GET" or headers.get(b"upgrade", b"").lower() != b"websocket":
            self._send(response(426, b'{"error":"use a WebSocket upgrade"}', keep_alive,
                                b"upgrade: websocket\r\n"), keep_alive)  # fmt: skip
            return
        key = self._header(b"sec-websocket-key")
        if key is None or headers.get(b"sec-websocket-version") != b"13":
            self._send(response(400, b'{"error":"bad WebSocket handshake"}', False,
                                b"sec-websocket-version: 13\r\n"), False)  # fmt: skip
            return
        self._ws_accept = wsframes.accept_key(key.strip())

    def _upgrade(self, rest: bytes) -> None:
        transport = self.transport
        assert transport is not None and self._ws_accept is not None
        offered = [p.strip() for p in (self._header(b"sec-websocket-protocol") or "").split(",")]
        proto = b"sec-websocket-protocol: mcp\r\n" if "mcp" in offered else b""
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-accept: " + self._ws_accept.encode() + b"\r\n" + proto + b"\r\n"
        )
        self._upgraded = True
        self.ctx.stats.connections["http"] -= 1
        ws = WsConnection(self.ctx, self._throttle)
        transport.set_protocol(ws)
        ws.connection_made(transport)
        if rest:
            ws.data_received(rest)
