"""``McpClient``: an asyncio MCP client over any ClientTransport.

A thin adapter: :class:`~pytest_mcpswarm.protocol.lifecycle.ClientLifecycle`
decides what to send and what replies mean; this class only moves bytes,
keeps one Future per request and applies timeouts.  It is meant for
functional tests, fixtures and conformance checks; the load engine drives
the lifecycle and transports directly to skip the Future per request.

    async with McpClient(open_transport("stdio:python server.py"), version="2025-11-25") as c:
        result = await c.call_tool("echo", {"text": "hi"})
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self

from pytest_mcpswarm.errors import McpCallError, MCPSwarmError, ProtocolError, TransportError
from pytest_mcpswarm.protocol import jsonrpc, messages, versions
from pytest_mcpswarm.protocol.lifecycle import (
    CallFailed,
    ClientLifecycle,
    Event,
    Ready,
    Reply,
    ServerMessage,
    State,
)
from pytest_mcpswarm.protocol.messages import Call, ToolResult
from pytest_mcpswarm.transport.base import ClientTransport, SendMeta

__all__ = ["McpCallError", "McpClient"]

DEFAULT_TIMEOUT: Final = 30.0
#: A server that keeps handing out cursors is broken; stop following them here.
MAX_PAGES: Final = 1000

ServerMessageHandler = Callable[[jsonrpc.Request | jsonrpc.Notification], None]


def _settle(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # nobody may await it (e.g. a re-init nobody waits for); do not log it


def call_error(method: str, error: jsonrpc.ErrorObject) -> MCPSwarmError:
    """The exception a JSON-RPC error reply becomes: version refusals are protocol errors."""
    if error.code == versions.UNSUPPORTED_PROTOCOL_VERSION:
        return ProtocolError(f"{method} refused our protocol version: {error.message}", kind="version")
    return McpCallError(method, error.code, error.message, error.data)


class McpClient:
    """One MCP session.  Implements MessageSink for its transport.

    Every call takes ``timeout=`` (seconds, default the client's): a per-call
    limit is this API's point, hence the ASYNC109 waivers.
    """

    def __init__(
        self,
        transport: ClientTransport,
        *,
        version: str = versions.LATEST_HANDSHAKE,
        timeout: float = DEFAULT_TIMEOUT,
        accept: Sequence[str] | None = None,
        client_info: Mapping[str, Any] | None = None,
        capabilities: Mapping[str, Any] | None = None,
        on_server_message: ServerMessageHandler | None = None,
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self.lifecycle = ClientLifecycle(
            version, accept=accept, client_info=client_info, capabilities=capabilities
        )
        self.on_server_message = on_server_message
        #: Replies that matched no request we sent (a server bug worth reporting, not fatal).
        self.stray_replies: list[ProtocolError] = []
        self._waiters: dict[jsonrpc.RequestId, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[Ready] | None = None
        self._broken: MCPSwarmError | None = None

    # --- session ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> Ready:
        """Connect and negotiate; returns what the server said about itself."""
        await self.transport.connect(self)
        try:
            self._begin_negotiation()
            return await self._wait_ready(self.timeout)
        except BaseException:
            await self.transport.close()
            raise

    async def close(self) -> None:
        await self.transport.close()
        self._fail_all(TransportError("the client was closed", kind="closed"))

    @property
    def stateless(self) -> bool:
        return self.lifecycle.stateless

    @property
    def version(self) -> str | None:
        """The negotiated protocol revision."""
        return self.lifecycle.version

    @property
    def server_info(self) -> dict[str, Any]:
        return self.lifecycle.server_info

    @property
    def server_capabilities(self) -> dict[str, Any]:
        return self.lifecycle.server_capabilities

    # --- MCP methods --------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        """Send one request and return its raw ``result``.

        Raises McpCallError for a JSON-RPC error reply, TransportError(kind="timeout")
        after ``timeout`` seconds (default: the client's), and TransportError or
        ProtocolError when the connection or the server's bytes are broken.
        """
        limit = self.timeout if timeout is None else timeout
        request_id: jsonrpc.RequestId | None = None
        try:
            async with asyncio.timeout(limit):
                if self._ready is None or not self._ready.done():
                    await self._wait_ready(None)
                if self._broken is not None:
                    raise self._broken
                request_id = self.lifecycle.send_request(method, params)
                future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                self._waiters[request_id] = future
                self._flush()
                await self.transport.drain()
                return await future
        except TimeoutError:
            raise TransportError(f"{method} got no reply within {limit:g}s", kind="timeout") from None
        finally:
            if request_id is not None and self._waiters.pop(request_id, None) is not None:
                # Still waiting: we timed out or were cancelled.  Tell the server if the revision can.
                self.lifecycle.cancel(request_id)
                self._flush_quietly()

    async def _call(self, call: Call, timeout: float | None) -> Any:  # noqa: ASYNC109
        return await self.request(call.method, call.params, timeout=timeout)

    async def ping(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Handshake revisions only: 2026-07-28 removed ``ping`` (raises UsageError there)."""
        messages.parse_empty("ping", await self._call(messages.ping(), timeout))

    async def _list(
        self,
        method: str,
        build: Callable[[str | None], Call],
        timeout: float | None,  # noqa: ASYNC109
    ) -> list[Any]:
        items: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = messages.parse_page(method, await self._call(build(cursor), timeout))
            items.extend(page.items)
            if page.next_cursor is None:
                return items
            cursor = page.next_cursor
        raise ProtocolError(f"{method} returned more than {MAX_PAGES} pages", kind="malformed")

    async def list_tools(self, *, timeout: float | None = None) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """Every tool, following pagination."""
        return await self._list("tools/list", messages.list_tools, timeout)

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ToolResult:
        """A tool error (``isError: true``) is a result, not an exception: check ``.is_error``."""
        return messages.parse_call_tool(await self._call(messages.call_tool(name, arguments), timeout))

    async def list_resources(self, *, timeout: float | None = None) -> list[dict[str, Any]]:  # noqa: ASYNC109
        return await self._list("resources/list", messages.list_resources, timeout)

    async def read_resource(self, uri: str, *, timeout: float | None = None) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """The resource's ``contents`` (each with ``uri`` and ``text`` or ``blob``)."""
        return messages.parse_read_resource(await self._call(messages.read_resource(uri), timeout))

    async def list_prompts(self, *, timeout: float | None = None) -> list[dict[str, Any]]:  # noqa: ASYNC109
        return await self._list("prompts/list", messages.list_prompts, timeout)

    async def get_prompt(
        self,
        name: str,
        arguments: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """The prompt's ``messages`` (each with ``role`` and ``content``)."""
        return messages.parse_get_prompt(await self._call(messages.get_prompt(name, arguments), timeout))

    # --- MessageSink --------------------------------------------------------------------------

    def on_message(self, data: bytes) -> None:
        try:
            self.lifecycle.receive_data(data)
        except ProtocolError as exc:
            self._on_protocol_error(exc)
        self._dispatch(self.lifecycle.events_received())
        self._flush_quietly()

    def on_request_failed(self, request_id: jsonrpc.RequestId, error: TransportError) -> None:
        self.lifecycle.cancel(request_id, reason=None)
        future = self._waiters.pop(request_id, None)
        if future is not None:
            _settle(future, error)
        elif self.lifecycle.state is State.NEGOTIATING and self._ready is not None:
            _settle(self._ready, error)

    def on_session_expired(self) -> None:
        # A 404 means the server did not run the request, but replaying a tools/call behind
        # the caller's back would hide the expiry from a benchmark: fail what was in flight.
        error = TransportError(
            "the server forgot the session; in-flight requests were dropped and the client re-initialized",
            kind="http_404",
        )
        for request_id in self.lifecycle.reset():
            future = self._waiters.pop(request_id, None)
            if future is not None:
                _settle(future, error)
        if self._ready is not None:
            _settle(self._ready, error)
        self._begin_negotiation()

    def on_closed(self, error: TransportError | None) -> None:
        self._fail_all(error or TransportError("the connection was closed", kind="closed"))

    # --- internals ----------------------------------------------------------------------------

    def _begin_negotiation(self) -> None:
        # The stateless discover POST already carries MCP-Protocol-Version; the handshake learns it.
        self.transport.protocol_version = self.lifecycle.requested if self.stateless else None
        self._ready = asyncio.get_running_loop().create_future()
        self.lifecycle.start()
        self._flush()

    async def _wait_ready(self, timeout: float | None) -> Ready:  # noqa: ASYNC109
        assert self._ready is not None, "McpClient.open() was not called"
        if timeout is None:
            return await asyncio.shield(self._ready)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._ready)
        except TimeoutError:
            opening = "server/discover" if self.stateless else "initialize"
            raise TransportError(
                f"the server did not answer {opening} within {timeout:g}s", kind="timeout"
            ) from None

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Reply):
                future = self._waiters.pop(event.request_id, None)
                if future is not None and not future.done():
                    future.set_result(event.result)
            elif isinstance(event, CallFailed):
                future = self._waiters.pop(event.request_id, None)
                if future is not None:
                    _settle(future, call_error(event.method, event.error))
            elif isinstance(event, Ready):
                self.transport.protocol_version = event.version
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(event)
            elif isinstance(event, ServerMessage) and self.on_server_message is not None:
                self.on_server_message(event.message)

    def _on_protocol_error(self, exc: ProtocolError) -> None:
        if exc.kind == "unmatched_id":
            self.stray_replies.append(exc)
        elif self.lifecycle.state is State.FAILED and self._ready is not None and not self._ready.done():
            _settle(self._ready, exc)
        else:
            # We cannot tell which request unreadable bytes answered: every waiter is suspect.
            self._broken = exc
            self._fail_all(exc)

    def _fail_all(self, error: MCPSwarmError) -> None:
        waiters, self._waiters = self._waiters, {}
        for future in waiters.values():
            _settle(future, error)
        if self._ready is not None:
            _settle(self._ready, error)
        if self._broken is None:
            self._broken = error

    def _flush(self) -> None:
        for out in self.lifecycle.data_to_send():
            self.transport.send(out.data, SendMeta(out.method, out.request_id, out.name))

    def _flush_quietly(self) -> None:
        # A dead connection is not this caller's error: on_closed tells every waiter.
        with contextlib.suppress(TransportError):
            self._flush()
