"""HTTP/1.1 keep-alive connections on asyncio.Protocol + httptools, and the pool that grows them.

One connection carries one exchange at a time (no pipelining: servers and
proxies handle it badly), so an open-model load client needs many.  The pool
hands a request to an idle connection, opens another one (up to
``max_connections``) when all are busy, and otherwise queues it.

Hot-path choices, all measured on loopback:
- httptools (llhttp in C) calls back only for what we defined; no header dict is built.
- A finished exchange releases its connection *before* the body is handed on,
  and bodies are delivered after ``feed_data`` returns.  A sink that answers a
  reply with a new request (a closed loop) then reuses the same connection
  instead of growing the pool.
- Each request goes out as one ``write`` of one ``bytes`` object.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from httptools import HttpParserCallbackError, HttpParserError, HttpResponseParser

from pytest_mcpswarm.errors import TransportError
from pytest_mcpswarm.transport.sse import SSEEvent, SSEParser

if TYPE_CHECKING:
    from pytest_mcpswarm.transport.base import SendMeta

__all__ = ["Exchange", "HttpConnection", "HttpPool", "PoolOwner", "Response"]

#: (body, meta, purpose, attempt) — a tuple, not an object: it is made once per request.
Exchange = tuple[bytes, "SendMeta", int, int]

# Exchange purposes.
POST = 0  # a JSON-RPC message to the MCP endpoint
STREAM = 1  # the long-lived GET of the legacy HTTP+SSE transport
DELETE = 2  # session termination

# How a response body is treated, decided at headers-complete.
_BODY_JSON = 0
_BODY_SSE = 1
_BODY_DROP = 2
_BODY_ERROR = 3


#: Largest error body kept for inspection; a JSON-RPC error reply is far smaller.
_ERROR_BODY_MAX = 64 * 1024


#: A keep-alive connection idle this long may have been closed by the server unseen.
_STALE_IDLE_S = 1.0


class Response:
    """A finished (or failed) exchange, handed to the pool owner."""

    __slots__ = ("body", "content_type", "exchange", "status")

    def __init__(self, exchange: Exchange, status: int, content_type: bytes, body: bytes = b"") -> None:
        self.exchange = exchange
        self.status = status
        self.content_type = content_type
        #: A JSON error body (capped at _ERROR_BODY_MAX): it may be a JSON-RPC error reply.
        self.body = body


class PoolOwner(Protocol):
    """What the pool calls back; implemented by HttpTransport."""

    def build_request(self, exchange: Exchange) -> bytes: ...
    def on_message(self, data: bytes) -> None: ...
    def on_event(self, conn: HttpConnection, event: SSEEvent) -> None: ...
    def on_session_id(self, exchange: Exchange, status: int, session_id: bytes) -> None: ...
    def on_response(self, response: Response) -> None: ...
    def on_exchange_failed(self, exchange: Exchange, error: TransportError) -> None: ...


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; also the httptools callback object."""

    def __init__(self, pool: HttpPool) -> None:
        self._pool = pool
        self._parser = HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.served = 0  # exchanges completed: a reused connection may have gone stale
        #: When the connection last went idle, and how long it had been idle when reused.
        self._idle_since = time.monotonic()
        self._idle_for = 0.0
        self._got_bytes = False
        self._body_mode = _BODY_JSON
        self._chunks: list[bytes] = []
        self._ctype = b""
        self._session: bytes | None = None
        self._sse: SSEParser | None = None
        self._out: list[bytes] = []  # messages to hand on once feed_data returns
        self._done: list[Response] = []

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiofastnet's transport quacks like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except HttpParserCallbackError:
            raise  # a bug in our callbacks or the sink's: let asyncio report it loudly
        except HttpParserError as exc:
            self._abort(TransportError(f"malformed HTTP response: {exc}", kind="protocol"))
            return
        finally:
            self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        exchange = self.exchange
        self.exchange = None
        self._pool._lost(self)
        if exchange is None:
            return
        if exchange[2] == STREAM and self._sse is not None:
            self._pool.owner.on_response(Response(exchange, 0, b"text/event-stream"))
            return
        kind = "reset" if exc is not None else "closed"
        # A keep-alive connection the server closed while idle fails the next request with no
        # byte of answer; the server never saw it, so resending is safe.  A connection reused
        # at once is different: the server may have read the request and aborted, and that is
        # an error to count, never to hide.
        stale = self._idle_for >= _STALE_IDLE_S
        if not self._got_bytes and self.served and exchange[3] == 0 and stale:
            self._pool.submit((exchange[0], exchange[1], exchange[2], 1), front=True)
            return
        self._pool.owner.on_exchange_failed(
            exchange, TransportError("the server closed the connection before answering", kind=kind)
        )

    # -- httptools callbacks -------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"content-type":
            self._ctype = value.lower()
        elif lname == b"mcp-session-id":
            self._session = value

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if self._session is not None:
            # Now, not at message end: an SSE reply reaches the sink before its stream ends,
            # and the client's very next request must already carry the session id.
            assert self.exchange is not None
            self._pool.owner.on_session_id(self.exchange, status, self._session)
            self._session = None
        if status in (200, 201):
            if self._ctype.startswith(b"text/event-stream"):
                self._body_mode = _BODY_SSE
                self._sse = SSEParser()
            else:
                self._body_mode = _BODY_JSON
        elif 200 <= status < 300:
            self._body_mode = _BODY_DROP  # 202 Accepted, 204 No Content
        else:
            self._body_mode = _BODY_ERROR

    def on_body(self, body: bytes) -> None:
        mode = self._body_mode
        if mode == _BODY_JSON:
            self._chunks.append(body)
        elif mode == _BODY_ERROR and self._ctype.startswith(b"application/json"):
            if sum(map(len, self._chunks)) + len(body) <= _ERROR_BODY_MAX:
                self._chunks.append(body)
        elif mode == _BODY_SSE:
            assert self._sse is not None
            for event in self._sse.feed(body):
                if event.event == "message":
                    self._out.append(event.data)
                else:
                    self._pool.owner.on_event(self, event)

    def on_message_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        chunks = self._chunks
        if chunks and self._body_mode == _BODY_JSON:
            self._out.append(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            self._chunks = []
        status = self._parser.get_status_code()
        if status != 200 or exchange[2] != POST:
            error_body = b"".join(chunks) if self._body_mode == _BODY_ERROR else b""
            self._done.append(Response(exchange, status, self._ctype, error_body))
        self._ctype = b""
        self._sse = None
        self._chunks = []
        self.exchange = None
        self.served += 1
        if exchange[2] == STREAM:
            if self.transport is not None:  # the legacy stream ended; this connection is done
                self.transport.close()
        elif self._parser.should_keep_alive():
            self._pool._release(self)  # before delivery: see the module docstring
        elif self.transport is not None:
            self.transport.close()

    # -- used by the pool ---------------------------------------------------------------

    def start(self, exchange: Exchange, wire: bytes) -> None:
        assert self.transport is not None
        self.exchange = exchange
        self._got_bytes = False
        self._idle_for = time.monotonic() - self._idle_since
        self.transport.write(wire)

    def _flush(self) -> None:
        owner = self._pool.owner
        if self._done:
            done, self._done = self._done, []
            for response in done:
                owner.on_response(response)
        if self._out:
            out, self._out = self._out, []
            on_message = owner.on_message
            for message in out:
                on_message(message)

    def _abort(self, error: TransportError) -> None:
        exchange, self.exchange = self.exchange, None
        if self.transport is not None:
            self.transport.abort()
        if exchange is not None:
            self._pool.owner.on_exchange_failed(exchange, error)


class HttpPool:
    """Keep-alive connections to one origin, grown on demand up to ``max_connections``."""

    def __init__(
        self,
        owner: PoolOwner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        max_connections: int,
        connect_timeout: float,
    ) -> None:
        self.owner = owner
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.idle: list[HttpConnection] = []
        self.busy: set[HttpConnection] = set()
        self.pending: deque[Exchange] = deque()
        self.connecting = 0
        self.connections_opened = 0
        self.connect_failures = 0
        self.closed = False
        self.on_dequeue: Callable[[], None] | None = None  # set only while someone drains
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()

    @property
    def size(self) -> int:
        """Open connections, idle or busy (not counting ones being opened)."""
        return len(self.idle) + len(self.busy)

    async def open(self) -> HttpConnection:
        """Open one connection; raises TransportError with the kind of failure."""
        factory: Callable[[], HttpConnection] = lambda: HttpConnection(self)  # noqa: E731
        kwargs: dict[str, Any] = {}
        if self.ssl_context is not None:
            kwargs = {"ssl": self.ssl_context, "server_hostname": self.host}
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self.connect_timeout):
                # The loop's own transport, not aiofastnet: under uvloop it measured 92K vs 35K req/s
                # (64 connections, canned-reply peer on the other core).
                _, conn = await self._loop.create_connection(factory, self.host, self.port, **kwargs)
        except TimeoutError as exc:
            raise TransportError(
                f"no TCP/TLS connection to {where} within {self.connect_timeout:g}s", kind="timeout"
            ) from exc
        except ssl.SSLError as exc:
            raise TransportError(f"TLS handshake with {where} failed: {exc}", kind="tls") from exc
        except ConnectionRefusedError as exc:
            raise TransportError(f"connection to {where} refused", kind="refused") from exc
        except OSError as exc:
            raise TransportError(f"cannot connect to {where}: {exc}", kind="refused") from exc
        self.connections_opened += 1
        return conn

    def add(self, conn: HttpConnection) -> None:
        """Put a freshly opened connection to work (or into the idle list).

        A pool closed while the connection was being opened closes it instead:
        nobody would ever close it otherwise.
        """
        if self.closed:
            if conn.transport is not None:
                conn.transport.close()
            raise TransportError("the HTTP transport was closed while connecting", kind="closed")
        self._release(conn)

    def submit(self, exchange: Exchange, *, front: bool = False) -> None:
        if self.idle:
            conn = self.idle.pop()  # LIFO: the warmest connection
            self.busy.add(conn)
            conn.start(exchange, self.owner.build_request(exchange))
            return
        if front:
            self.pending.appendleft(exchange)
        else:
            self.pending.append(exchange)
        if self.connecting < len(self.pending) and self.size + self.connecting < self.max_connections:
            self.connecting += 1
            task = self._loop.create_task(self._grow())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _grow(self) -> None:
        try:
            conn = await self.open()
        except TransportError as error:
            self.connect_failures += 1
            self.connecting -= 1
            if self.size == 0 and self.connecting == 0:
                # Nothing left that could ever serve the queue: fail it rather than hang.
                failed, self.pending = self.pending, deque()
                for exchange in failed:
                    self.owner.on_exchange_failed(exchange, error)
            return
        self.connecting -= 1
        with contextlib.suppress(TransportError):  # closed meanwhile: add() closed it
            self.add(conn)

    def _release(self, conn: HttpConnection) -> None:
        if self.pending and not self.closed:
            exchange = self.pending.popleft()
            self.busy.add(conn)
            conn.start(exchange, self.owner.build_request(exchange))
            if self.on_dequeue is not None:
                self.on_dequeue()
            return
        self.busy.discard(conn)
        conn._idle_since = time.monotonic()
        self.idle.append(conn)

    def _lost(self, conn: HttpConnection) -> None:
        self.busy.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    def cancel(self, request_id: int | str) -> bool | None:
        """Give up on a request: ``True`` if it was still queued (never written), ``False`` if
        it was on a connection, which is closed (HTTP/1.1 cannot skip a reply), ``None`` if
        the pool does not hold it."""
        for exchange in self.pending:
            if exchange[1].request_id == request_id:
                self.pending.remove(exchange)
                return True
        for conn in self.busy:
            carried = conn.exchange
            if carried is not None and carried[1].request_id == request_id:
                conn.exchange = None  # nobody is told: the caller already counted it
                self.busy.discard(conn)
                if conn.transport is not None:
                    conn.transport.abort()
                return False
        return None

    def detach(self, conn: HttpConnection) -> None:
        """Take a busy connection out of the pool for good (the legacy SSE stream)."""
        self.busy.discard(conn)

    async def close(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        for conn in [*self.idle, *self.busy]:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()
        self.busy.clear()
