"""Streamable HTTP client transport, with fallback to the legacy HTTP+SSE transport (2024-11-05).

Every message is one POST.  The reply is a JSON body or an SSE stream whose
``message`` events are JSON-RPC messages; both reach ``sink.on_message`` from
the connection's own callbacks (see transport/pool.py).  Headers are rendered
once into a byte prefix and re-rendered only when the session id, the
protocol revision or the endpoint changes, so building a request is one
``%``-format of four byte strings.

Legacy fallback, as the spec's backwards-compatibility section describes: if
the ``initialize`` POST gets 400, 404 or 405 and no session exists, GET the
URL with ``Accept: text/event-stream``, wait for the ``endpoint`` event, then
POST every message (``initialize`` first) to that endpoint and read replies
from the GET stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from typing import Final
from urllib.parse import urljoin, urlsplit

import orjson

from pytest_mcpswarm.errors import TargetError, TransportError
from pytest_mcpswarm.protocol.versions import STATELESS_VERSIONS
from pytest_mcpswarm.transport.base import MessageSink, SendMeta
from pytest_mcpswarm.transport.pool import DELETE, POST, STREAM, Exchange, HttpConnection, HttpPool, Response
from pytest_mcpswarm.transport.sse import SSEEvent

__all__ = ["HttpTransport"]

_FALLBACK_STATUSES = frozenset((400, 404, 405))


_WEBSOCKET_PATH: Final = "this path speaks WebSocket: use a ws:// URL (erlmcp: ws://HOST:PORT/mcp/ws)"


class HttpTransport:
    """MCP over Streamable HTTP (``http://`` / ``https://``) through a pool of keep-alive connections.

    Counters for the load engine: ``connections_opened``, ``pool_size``,
    ``queued`` (requests waiting for a connection) and ``legacy`` (True once
    the HTTP+SSE fallback is in use).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 64,
        connect_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetError(f"{url!r} is not an HTTP URL")
        if max_connections < 1:
            raise TargetError(f"max_connections must be at least 1, not {max_connections}")
        self.url = url
        self.headers = dict(headers or {})
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self._host = parts.hostname
        secure = parts.scheme == "https"
        self._port = parts.port or (443 if secure else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if secure else None
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._authority = host if parts.port is None else f"{host}:{self._port}"
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._pool: HttpPool | None = None
        self._sink: MessageSink | None = None
        self._open = False
        self._closing = False
        self._protocol_version: str | None = None
        self._stateless = False
        self._session_id: bytes | None = None
        self._post_head = b""
        self._legacy = False
        self._legacy_backlog: list[Exchange] | None = None  # not None while waiting for `endpoint`
        self._stream: HttpConnection | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._delete_done: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self.failed_notifications = 0
        self._render()

    # -- counters ----------------------------------------------------------------------

    @property
    def connections_opened(self) -> int:
        return self._pool.connections_opened if self._pool else 0

    @property
    def pool_size(self) -> int:
        return self._pool.size if self._pool else 0

    @property
    def queued(self) -> int:
        return len(self._pool.pending) if self._pool else 0

    @property
    def legacy(self) -> bool:
        return self._legacy

    @property
    def session_id(self) -> str | None:
        return self._session_id.decode("latin-1") if self._session_id is not None else None

    # -- ClientTransport ---------------------------------------------------------------

    async def connect(self, sink: MessageSink) -> None:
        if self._pool is not None:
            raise TransportError("connect() called twice on one HttpTransport", kind="closed")
        self._sink = sink
        self._pool = HttpPool(
            self,
            self._host,
            self._port,
            ssl_context=self._ssl,
            max_connections=self.max_connections,
            connect_timeout=self.connect_timeout,
        )
        # One connection up front: a wrong port or bad certificate fails here, with its kind.
        conn = await self._pool.open()
        self._pool.add(conn)
        self._open = True

    def send(self, data: bytes, meta: SendMeta) -> None:
        if not self._open:
            raise TransportError(f"the HTTP transport to {self.url} is closed", kind="closed")
        if self._legacy_backlog is not None:
            self._legacy_backlog.append((data, meta, POST, 0))
            return
        assert self._pool is not None
        self._pool.submit((data, meta, POST, 0))

    async def drain(self) -> None:
        # Backpressure is the queue of requests waiting for a connection, not socket buffers:
        # each connection holds one small request at a time.
        pool = self._pool
        while pool is not None and self._open and len(pool.pending) > 4 * self.max_connections:
            if self._drain_waiter is None:
                self._drain_waiter = asyncio.get_running_loop().create_future()
                pool.on_dequeue = self._on_dequeue
            await self._drain_waiter

    async def close(self) -> None:
        if self._pool is None or self._closing:
            return
        self._closing = True
        self._open = False
        pool = self._pool
        try:
            if self._session_id is not None and not self._legacy:
                self._delete_done = asyncio.get_running_loop().create_future()
                pool.submit((b"", SendMeta("DELETE"), DELETE, 1))
                with contextlib.suppress(TimeoutError):  # the server is gone or slow
                    async with asyncio.timeout(2.0):
                        await self._delete_done
        finally:
            # Even when cancelled while waiting for the DELETE: a second close() returns at once,
            # so this is the only chance to close the sockets.
            if self._stream_task is not None:
                self._stream_task.cancel()
            if self._stream is not None and self._stream.transport is not None:
                self._stream.transport.close()
            await asyncio.shield(pool.close())
        self._wake_drain()
        assert self._sink is not None
        self._sink.on_closed(None)

    def cancel(self, request_id: int | str) -> bool | None:
        """Abandon a request the caller timed out; see ``HttpPool.cancel``.

        Without this a request whose reply never comes holds its connection for good, and a
        burst of dropped replies would exhaust the pool.
        """
        return self._pool.cancel(request_id) if self._pool is not None else None

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def protocol_version(self) -> str | None:
        return self._protocol_version

    @protocol_version.setter
    def protocol_version(self, value: str | None) -> None:
        self._protocol_version = value
        self._stateless = value in STATELESS_VERSIONS
        self._render()

    # -- PoolOwner: called from the connections -----------------------------------------

    def build_request(self, exchange: Exchange) -> bytes:
        body, meta, purpose, _ = exchange
        if purpose == POST:
            if self._stateless:
                extra = b"Mcp-Method: " + meta.method.encode() + b"\r\n"
                if meta.name is not None:
                    extra += b"Mcp-Name: " + meta.name.encode() + b"\r\n"
                return b"%b%bContent-Length: %d\r\n\r\n%b" % (self._post_head, extra, len(body), body)
            return b"%bContent-Length: %d\r\n\r\n%b" % (self._post_head, len(body), body)
        method = b"DELETE" if purpose == DELETE else b"GET"
        accept = b"Accept: text/event-stream\r\n" if purpose == STREAM else b""
        return b"%b %b HTTP/1.1\r\nHost: %b\r\n%b%b\r\n" % (
            method,
            self._path.encode(),
            self._authority.encode(),
            accept,
            self._common_headers(),
        )

    def on_message(self, data: bytes) -> None:
        assert self._sink is not None
        self._sink.on_message(data)

    def on_event(self, conn: HttpConnection, event: SSEEvent) -> None:
        if event.event == "endpoint" and conn is self._stream:
            self._on_endpoint(event.data.decode("utf-8", "replace").strip())

    def on_session_id(self, exchange: Exchange, status: int, session_id: bytes) -> None:
        # Only initialize assigns a session; other responses may echo it, which changes nothing.
        if exchange[1].method == "initialize" and status == 200 and session_id != self._session_id:
            self._session_id = session_id
            self._render()

    def on_response(self, response: Response) -> None:
        _, meta, purpose, _ = exchange = response.exchange
        status = response.status
        sink = self._sink
        assert sink is not None
        if purpose == DELETE:
            if self._delete_done is not None and not self._delete_done.done():
                self._delete_done.set_result(None)
            return
        if purpose == STREAM:
            self._on_stream_end(status)
            return
        if 200 <= status < 300:
            return
        if status == 404 and self._session_id is not None and not self._legacy:
            # The server forgot us; anything still keyed to the old id is lost too.
            self._session_id = None
            self._render()
            sink.on_session_expired()
        elif (
            status in _FALLBACK_STATUSES
            and meta.method == "initialize"
            and self._session_id is None
            and not self._legacy
            and self._legacy_backlog is None
        ):
            self._start_legacy(exchange)
            return
        elif _is_jsonrpc_reply(response.body, meta.request_id):
            # Servers may send a JSON-RPC error with a 4xx status (the SDK's 2026-07-28
            # entry answers an unknown method with 404): the error is the answer.
            sink.on_message(response.body)
            return
        # 426 Upgrade Required: the path serves WebSocket, not Streamable HTTP.
        fix = _WEBSOCKET_PATH if status == 426 else None
        problem = f"{self.url} answered {meta.method} with HTTP {status}"
        self.on_exchange_failed(exchange, TransportError(problem, kind=f"http_{status}", fix=fix))

    def on_exchange_failed(self, exchange: Exchange, error: TransportError) -> None:
        _, meta, purpose, _ = exchange
        sink = self._sink
        assert sink is not None
        if purpose == DELETE:
            if self._delete_done is not None and not self._delete_done.done():
                self._delete_done.set_result(None)
        elif purpose == STREAM:
            self._fail_legacy(error)
        elif meta.request_id is not None:
            sink.on_request_failed(meta.request_id, error)
        else:
            self.failed_notifications += 1  # nobody waits for a notification; count it

    # -- legacy HTTP+SSE ------------------------------------------------------------------

    def _start_legacy(self, initialize: Exchange) -> None:
        self._legacy_backlog = [initialize]
        self._stream_task = asyncio.get_running_loop().create_task(self._open_stream())

    async def _open_stream(self) -> None:
        assert self._pool is not None
        try:
            conn = await self._pool.open()
        except TransportError as error:
            self._fail_legacy(error)
            return
        if self._closing:
            assert conn.transport is not None
            conn.transport.close()
            return
        self._stream = conn
        stream: Exchange = (b"", SendMeta("GET"), STREAM, 1)
        conn.start(stream, self.build_request(stream))

    def _on_endpoint(self, endpoint: str) -> None:
        target = urlsplit(urljoin(self.url, endpoint))
        origin = urlsplit(self.url)
        if (target.scheme, target.netloc) != (origin.scheme, origin.netloc):
            # Following it would send our traffic to a host the user did not name.
            self._fail_legacy(
                TransportError(f"the legacy SSE endpoint {endpoint!r} is on another origin", kind="protocol")
            )
            return
        self._path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        self._legacy = True
        self._render()
        backlog, self._legacy_backlog = self._legacy_backlog or [], None
        assert self._pool is not None
        for exchange in backlog:
            self._pool.submit(exchange)

    def _on_stream_end(self, status: int) -> None:
        if status not in (0, 200):
            self._fail_legacy(
                TransportError(
                    f"{self.url} rejected both a Streamable HTTP POST and a legacy SSE GET (HTTP {status})",
                    kind=f"http_{status}",
                    fix="the path is probably wrong: MCP is usually at /mcp (legacy servers: /sse)",
                )
            )
        elif not self._closing:
            self._fail_legacy(TransportError(f"the legacy SSE stream from {self.url} ended", kind="closed"))

    def _fail_legacy(self, error: TransportError) -> None:
        backlog, self._legacy_backlog = self._legacy_backlog, None
        for exchange in backlog or ():
            self.on_exchange_failed(exchange, error)
        if self._legacy and self._open:
            # The GET stream is the only way replies arrive: without it the transport is dead.
            self._open = False
            self._wake_drain()
            assert self._sink is not None
            self._sink.on_closed(error)

    # -- internals -----------------------------------------------------------------------

    def _common_headers(self) -> bytes:
        parts = [f"{name}: {value}\r\n" for name, value in self.headers.items()]
        if self._session_id is not None:
            parts.append(f"Mcp-Session-Id: {self._session_id.decode('latin-1')}\r\n")
        if self._protocol_version is not None:
            parts.append(f"MCP-Protocol-Version: {self._protocol_version}\r\n")
        return "".join(parts).encode("latin-1")

    def _render(self) -> None:
        self._post_head = (
            b"POST %b HTTP/1.1\r\nHost: %b\r\nAccept: application/json, text/event-stream\r\n"
            b"Content-Type: application/json\r\n%b"
        ) % (self._path.encode(), self._authority.encode(), self._common_headers())

    def _on_dequeue(self) -> None:
        assert self._pool is not None
        if len(self._pool.pending) <= 2 * self.max_connections:
            self._wake_drain()

    def _wake_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if self._pool is not None:
            self._pool.on_dequeue = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _is_jsonrpc_reply(body: bytes, request_id: int | str | None) -> bool:
    if not body or request_id is None:
        return False
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(message, dict)
        and message.get("jsonrpc") == "2.0"
        and message.get("id") == request_id
        and ("error" in message or "result" in message)
    )
