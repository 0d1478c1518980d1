"""The MCP client lifecycle as a sans-I/O state machine, for every supported revision.

Feed it what the server sent (``receive_data``), read what happened
(``events_received``) and what to write (``data_to_send``).  It never touches a
socket or a clock, so the asyncio client, the load engine and the tests drive
the same code.

Two families:

* handshake revisions (2024-11-05 .. 2025-11-25): ``initialize`` with our
  offer; the server answers the revision it picked, which we accept if we speak
  it; then ``notifications/initialized``.
* stateless revision (2026-07-28): ``server/discover`` (``params`` required on
  the wire, because ``_meta`` is), then every request and notification carries
  the ``params._meta`` envelope.  ``ping`` and the other lifecycle methods are
  gone from this revision, so sending them is refused locally.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pytest_mcpswarm import __version__
from pytest_mcpswarm.errors import ProtocolError, UsageError
from pytest_mcpswarm.protocol import jsonrpc, versions
from pytest_mcpswarm.protocol.headers import http_headers

#: Methods the 2026-07-28 revision removed (mcp_types.methods has no row for them at that revision).
REMOVED_IN_STATELESS: Final = frozenset(
    {
        "initialize",
        "notifications/initialized",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
    }
)
#: Result ``_meta`` key where 2026-07-28 servers put what ``serverInfo`` held before.
META_SERVER_INFO: Final = "io.modelcontextprotocol/serverInfo"
DEFAULT_CLIENT_INFO: Final = {"name": "pytest-mcpswarm", "version": __version__}
# Late replies to requests we gave up on are expected, not protocol errors; remember this many.
_ABANDONED_MEMORY: Final = 4096


class State(enum.Enum):
    IDLE = "idle"
    NEGOTIATING = "negotiating"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One serialized message to write, with what a transport needs to route it."""

    data: bytes
    method: str
    request_id: jsonrpc.RequestId | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Ready:
    """Negotiation finished; requests may flow."""

    version: str
    server_info: dict[str, Any]
    capabilities: dict[str, Any]
    instructions: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    request_id: jsonrpc.RequestId
    method: str
    result: Any


@dataclass(frozen=True, slots=True)
class CallFailed:
    """The server answered one of our requests with a JSON-RPC error."""

    request_id: jsonrpc.RequestId
    method: str
    error: jsonrpc.ErrorObject


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """A server-initiated request or notification; requests we cannot serve are answered for us."""

    message: jsonrpc.Request | jsonrpc.Notification


Event = Ready | Reply | CallFailed | ServerMessage


@dataclass(slots=True)
class _Negotiation:
    request_id: jsonrpc.RequestId
    offered: str
    retried: bool = False


class ClientLifecycle:
    """One client session's protocol state.  Not thread-safe; one per connection."""

    def __init__(
        self,
        version: str = versions.LATEST_HANDSHAKE,
        *,
        accept: Sequence[str] | None = None,
        client_info: Mapping[str, Any] | None = None,
        capabilities: Mapping[str, Any] | None = None,
        first_id: int = 1,
    ) -> None:
        if version not in versions.ALL_VERSIONS:
            raise UsageError(
                f"protocol version {version!r} is not supported",
                fix=f"use one of {', '.join(versions.ALL_VERSIONS)}",
            )
        self.requested = version
        self.stateless = versions.is_stateless(version)
        family = versions.STATELESS_VERSIONS if self.stateless else versions.HANDSHAKE_VERSIONS
        #: Revisions we agree to if the server picks one other than ``requested``.
        self.accept: tuple[str, ...] = tuple(v for v in (accept or family) if v in family)
        self.client_info = dict(client_info or DEFAULT_CLIENT_INFO)
        self.capabilities = dict(capabilities or {})
        self.state = State.IDLE
        self.version: str | None = None
        self.server_info: dict[str, Any] = {}
        self.server_capabilities: dict[str, Any] = {}
        self._pending: jsonrpc.PendingRequests[str] = jsonrpc.PendingRequests(first_id)
        self._abandoned: deque[jsonrpc.RequestId] = deque(maxlen=_ABANDONED_MEMORY)
        self._negotiation: _Negotiation | None = None
        self._events: list[Event] = []
        self._out: list[Outgoing] = []

    # --- driving ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the opening request (``initialize`` or ``server/discover``)."""
        if self.state is State.NEGOTIATING:
            raise RuntimeError("negotiation already started")
        self.state = State.NEGOTIATING
        self.version = None
        self._send_opening(self.requested)

    def reset(self) -> list[jsonrpc.RequestId]:
        """Back to IDLE (the server forgot our session); returns the ids that were in flight."""
        self.state = State.IDLE
        self.version = None
        self._negotiation = None
        self._out.clear()  # unsent bytes belong to the forgotten session
        orphans = [request_id for request_id, _ in self._pending.drain()]
        self._abandoned.extend(orphans)
        return orphans

    def send_request(self, method: str, params: Mapping[str, Any] | None = None) -> jsonrpc.RequestId:
        """Queue a request; returns its id.  Stateless revisions get the ``_meta`` envelope."""
        if self.state is not State.READY:
            raise RuntimeError(f"cannot send {method!r}: session is {self.state.value}, not ready")
        self._check_method(method)
        wire = self._envelope(params)
        request_id = self._pending.add(method)
        self._out.append(
            Outgoing(
                jsonrpc.encode_request(request_id, method, wire), method, request_id, _name_of(method, wire)
            )
        )
        return request_id

    def send_notification(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        self._check_method(method)
        wire = self._envelope(params)
        self._out.append(Outgoing(jsonrpc.encode_notification(method, wire), method))

    def cancel(self, request_id: jsonrpc.RequestId, reason: str | None = "timed out") -> None:
        """Give up on a request; its late reply is dropped.

        With a ``reason``, handshake revisions also send ``notifications/cancelled``
        (2026-07-28 has no client notifications on HTTP; closing the stream is the signal).
        A request the transport already failed needs no ``reason``.
        """
        if self._pending.discard(request_id) is None:
            return
        self._abandoned.append(request_id)
        if reason is not None and not self.stateless and self.state is State.READY:
            params = {"requestId": request_id, "reason": reason}
            method = "notifications/cancelled"
            self._out.append(Outgoing(jsonrpc.encode_notification(method, params), method))

    def receive_data(self, data: bytes) -> None:
        """Process one message or batch from the server.

        Raises ProtocolError for bytes that are not JSON-RPC (``malformed``), a
        reply to nothing we sent (``unmatched_id``) or a failed negotiation
        (``version``); events from earlier messages of a batch stay queued.
        """
        for message in jsonrpc.decode(data):
            if isinstance(message, jsonrpc.Response | jsonrpc.ErrorResponse):
                self._on_reply(message)
            else:
                self._on_server_message(message)

    def events_received(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def headers_for(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The MCP HTTP headers for a request: version once known, method and name when stateless."""
        version = self.version or (self.requested if self.stateless else None)
        if version is None:
            return {}
        return http_headers(version, method, params)

    def envelope(self, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """``params`` as they go on the wire for this session (stateless: with the ``_meta`` envelope).

        For callers that serialize requests themselves, such as the load engine's templates.
        """
        return self._envelope(params)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    # --- internals --------------------------------------------------------------------------------

    def _check_method(self, method: str) -> None:
        if self.stateless and method in REMOVED_IN_STATELESS:
            raise UsageError(
                f"{method!r} does not exist in MCP {self.requested}",
                fix="use a handshake revision such as 2025-11-25 for it, or another method",
            )

    def _envelope(
        self, params: Mapping[str, Any] | None, version: str | None = None
    ) -> dict[str, Any] | None:
        if not self.stateless:
            return None if params is None else dict(params)
        wire = dict(params or {})
        meta = dict(wire.get("_meta") or {})
        meta[versions.META_PROTOCOL_VERSION] = version or self.version or self.requested
        meta[versions.META_CLIENT_CAPABILITIES] = self.capabilities
        meta[versions.META_CLIENT_INFO] = self.client_info
        wire["_meta"] = meta
        return wire

    def _send_opening(self, version: str) -> None:
        if self.stateless:
            method, params = "server/discover", self._envelope(None, version)
        else:
            method = "initialize"
            params = {
                "protocolVersion": version,
                "capabilities": self.capabilities,
                "clientInfo": self.client_info,
            }
        request_id = self._pending.add(method)
        retried = self._negotiation is not None
        self._negotiation = _Negotiation(request_id, version, retried)
        self._out.append(Outgoing(jsonrpc.encode_request(request_id, method, params), method, request_id))

    def _on_reply(self, reply: jsonrpc.Response | jsonrpc.ErrorResponse) -> None:
        if reply.id is not None and reply.id in self._abandoned and reply.id not in self._pending:
            return
        method = self._pending.resolve(reply)
        negotiation = self._negotiation
        if negotiation is not None and reply.id == negotiation.request_id:
            self._on_negotiation_reply(negotiation, reply)
        elif isinstance(reply, jsonrpc.Response):
            self._events.append(Reply(reply.id, method, reply.result))
        else:
            assert reply.id is not None  # resolve() rejects id-less replies
            self._events.append(CallFailed(reply.id, method, reply.error))

    def _fail(self, problem: str, *, kind: str = "version", fix: str | None = None) -> ProtocolError:
        self.state = State.FAILED
        self._negotiation = None
        return ProtocolError(problem, kind=kind, fix=fix)

    def _on_negotiation_reply(
        self, negotiation: _Negotiation, reply: jsonrpc.Response | jsonrpc.ErrorResponse
    ) -> None:
        if isinstance(reply, jsonrpc.ErrorResponse):
            self._on_negotiation_error(negotiation, reply.error)
            return
        result = reply.result
        if not isinstance(result, dict):
            raise self._fail(f"the {_opening(self)} result is not an object", kind="malformed")
        if self.stateless:
            version = self._pick_stateless(result)
        else:
            answered = result.get("protocolVersion")
            if not isinstance(answered, str):
                raise self._fail("the initialize result has no protocolVersion string", kind="malformed")
            version = answered
            if version not in self.accept:
                raise self._fail(
                    f"the server answered protocol version {version!r}; we asked for {negotiation.offered!r} "
                    f"and accept {', '.join(self.accept)}",
                    fix=(
                        "ask for a revision the server speaks (`mcpswarm run --protocol-version REV`), "
                        "or use a server that speaks one of ours"
                    ),
                )
        capabilities = result.get("capabilities")
        if not isinstance(capabilities, dict):
            raise self._fail(f"the {_opening(self)} result has no capabilities object", kind="malformed")
        info = result.get("serverInfo")
        if self.stateless:  # 2026-07-28 moved serverInfo into the result's _meta
            info = (result.get("_meta") or {}).get(META_SERVER_INFO)
        instructions = result.get("instructions")
        self.version = version
        self.server_info = info if isinstance(info, dict) else {}
        self.server_capabilities = capabilities
        self.state = State.READY
        self._negotiation = None
        if not self.stateless:
            method = "notifications/initialized"
            self._out.append(Outgoing(jsonrpc.encode_notification(method), method))
        self._events.append(
            Ready(
                version,
                self.server_info,
                capabilities,
                instructions if isinstance(instructions, str) else None,
            )
        )

    def _pick_stateless(self, result: dict[str, Any]) -> str:
        supported = result.get("supportedVersions")
        if not isinstance(supported, list) or not all(isinstance(v, str) for v in supported):
            raise self._fail("the server/discover result has no supportedVersions list", kind="malformed")
        result_type = result.get("resultType", "complete")
        if result_type != "complete":
            raise self._fail(f"server/discover answered resultType {result_type!r}", kind="malformed")
        if self.requested in supported:
            return self.requested
        mutual = [v for v in self.accept if v in supported]
        if not mutual:
            raise self._fail(
                f"the server supports {', '.join(supported) or 'no versions'}; "
                f"we accept {', '.join(self.accept)}",
                fix="pick one of the server's versions with --protocol",
            )
        return mutual[-1]

    def _on_negotiation_error(self, negotiation: _Negotiation, error: jsonrpc.ErrorObject) -> None:
        if error.code == versions.UNSUPPORTED_PROTOCOL_VERSION:
            data = error.data if isinstance(error.data, dict) else {}
            supported = data.get("supported")
            names = [v for v in supported if isinstance(v, str)] if isinstance(supported, list) else []
            mutual = [v for v in self.accept if v in names and v != negotiation.offered]
            if mutual and not negotiation.retried:  # the SDKs retry once at the newest mutual revision
                self._send_opening(mutual[-1])
                return
            raise self._fail(
                f"the server rejected protocol version {negotiation.offered!r}"
                f" (it supports {', '.join(names) or 'an unknown set'})",
                fix="pick one of the server's versions with --protocol",
            )
        if self.stateless and error.code == versions.METHOD_NOT_FOUND:
            raise self._fail(
                "the server does not implement server/discover, so it does not speak MCP 2026-07-28",
                fix="use a handshake revision such as --protocol 2025-11-25",
            )
        raise self._fail(
            f"the server refused {_opening(self)}: {error.code} {error.message}", kind="malformed"
        )

    def _on_server_message(self, message: jsonrpc.Request | jsonrpc.Notification) -> None:
        self._events.append(ServerMessage(message))
        if isinstance(message, jsonrpc.Request):
            # A client that ignores server requests stalls the server; answer what we can.
            if message.method == "ping":
                self._out.append(Outgoing(jsonrpc.encode_response(message.id, {}), "ping", message.id))
            else:
                data = jsonrpc.encode_error(
                    message.id, versions.METHOD_NOT_FOUND, f"client does not serve {message.method}"
                )
                self._out.append(Outgoing(data, message.method, message.id))


def _opening(lifecycle: ClientLifecycle) -> str:
    return "server/discover" if lifecycle.stateless else "initialize"


def _name_of(method: str, params: Mapping[str, Any] | None) -> str | None:
    key = versions.NAME_BEARING.get(method)
    if key is None or params is None:
        return None
    name = params.get(key)
    return name if isinstance(name, str) else None
