"""What every client transport offers, and what it calls back.

Transports move whole JSON-RPC messages as bytes and know nothing of MCP
beyond the HTTP headers the spec puts on the wire.  Delivery is by callback,
not by queue: a load generator cannot afford a queue hop per reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pytest_mcpswarm.errors import TransportError


@dataclass(frozen=True, slots=True)
class SendMeta:
    """What a transport may need to know about an outgoing message besides its bytes.

    ``request_id`` is None for notifications.  ``method`` and ``name`` feed the
    2026-07-28 ``Mcp-Method`` / ``Mcp-Name`` HTTP headers; ``request_id`` lets a
    transport whose failures are per request (HTTP) report which one failed.
    """

    method: str
    request_id: int | str | None = None
    name: str | None = None


class MessageSink(Protocol):
    """The receiving side, implemented by the client session or the load engine."""

    def on_message(self, data: bytes) -> None:
        """One complete JSON-RPC message (or batch) arrived."""

    def on_request_failed(self, request_id: int | str, error: TransportError) -> None:
        """A transport with per-request exchanges (HTTP) failed this request."""

    def on_session_expired(self) -> None:
        """The server forgot our session (HTTP 404 on a session id): re-initialize."""

    def on_closed(self, error: TransportError | None) -> None:
        """The connection is gone; ``error`` is None after a clean local close."""


class ClientTransport(Protocol):
    """One logical connection to an MCP server."""

    async def connect(self, sink: MessageSink) -> None:
        """Open the connection; raises TransportError with a kind on failure."""

    def send(self, data: bytes, meta: SendMeta) -> None:
        """Queue one serialized message; never blocks.  Raises TransportError when closed."""

    async def drain(self) -> None:
        """Wait until queued bytes are below the high-water mark."""

    async def close(self) -> None:
        """Close politely (HTTP: DELETE the session; stdio: close stdin, TERM, KILL)."""

    @property
    def is_open(self) -> bool: ...

    @property
    def protocol_version(self) -> str | None:
        """The negotiated revision, once the session layer set it."""

    @protocol_version.setter
    def protocol_version(self, value: str | None) -> None: ...
