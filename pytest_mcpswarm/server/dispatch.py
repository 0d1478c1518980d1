"""The MCP method layer: one decoded JSON-RPC message in, one serialized reply out.

It knows nothing about sockets.  Transports call :meth:`Dispatcher.handle`
and get back ``(code, body)`` at once, or ``None`` when the call needs
service time; the reply then arrives later through ``sink.deliver(token, code,
body)``.  ``code`` is 0 for a result, the JSON-RPC error code for an error
(HTTP maps it to a status), or one of the positive markers below.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import orjson

from pytest_mcpswarm.protocol import versions as v
from pytest_mcpswarm.server import catalog
from pytest_mcpswarm.server.catalog import RpcError
from pytest_mcpswarm.server.config import ServerConfig
from pytest_mcpswarm.server.faults import FaultInjector
from pytest_mcpswarm.server.metrics import ServerStats
from pytest_mcpswarm.server.service import ServiceGate

OK: Final = 0
NO_REPLY: Final = 1  # a notification or a client response: nothing to send (HTTP: 202)
DROP: Final = 2  # fault: swallow the reply
CLOSE: Final = 3  # fault: abort the connection

Reply = tuple[int, bytes]

SERVER_INFO: Final = {"name": "mcpswarm-reference", "version": "0.1.0"}
CAPABILITIES: Final = {"tools": {"listChanged": False}, "resources": {}, "prompts": {"listChanged": False}}
#: Methods the 2026-07-28 revision removed: they answer -32601 there, as the SDK does.
_NOT_MODERN: Final = frozenset({"initialize", "ping", "logging/setLevel"})
#: Lifecycle methods never get reply faults, so a faulty server can still be connected to.
_NO_FAULTS: Final = frozenset({"initialize", "server/discover"})

_HEAD: Final = b'{"jsonrpc":"2.0","id":'
#: Integer ids we can echo back (what orjson serializes; a wire decoder never yields more).
_MIN_ID: Final = -(2**63)
_MAX_ID: Final = 2**64 - 1
_MODERN_TAIL: Final = b',"resultType":"complete"}'


class ReplySink(Protocol):
    def deliver(self, token: int, code: int, body: bytes) -> None: ...


def negotiate(requested: object) -> str:
    """The handshake revision to answer ``initialize`` with: the client's if we speak it, else our latest."""
    return (
        requested if isinstance(requested, str) and requested in v.HANDSHAKE_VERSIONS else v.LATEST_HANDSHAKE
    )


def error_body(rid: object, code: int, message: str, data: Any = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": rid, "error": err})


def _dump_result(result: dict[str, Any], modern: bool, cacheable: bool = False) -> bytes:
    if modern:
        result = {**result, "resultType": "complete"}
        if cacheable:
            result.update(ttlMs=0, cacheScope="public")
    return orjson.dumps(result)


class Dispatcher:
    """Per-process MCP brain: static results precomputed, tools run inline or through the service gate."""

    def __init__(
        self,
        config: ServerConfig,
        worker: int,
        loop: asyncio.AbstractEventLoop,
        injector: FaultInjector,
        stats: ServerStats,
    ) -> None:
        self._delay_s = config.delay_ms / 1000.0
        self._injector = injector
        self._has_delay_fault = bool(config.faults.delays)
        self._has_reply_faults = bool(config.faults.reply)
        self._has_version_fault = config.faults.version is not None
        self._has_cpu_fault = config.faults.cpu_s is not None
        self._stats = stats
        self._gate = ServiceGate(loop, config.max_concurrency)
        replica = orjson.dumps(config.replica)
        # Closing bytes of every tools/call result: who answered, in structuredContent and _meta.
        wid = str(worker).encode()
        tail = b',"replica":' + replica + b',"worker":' + wid + b"}"
        tail += (
            b',"_meta":{"io.mcpswarm/replica":'
            + replica
            + b',"io.mcpswarm/worker":'
            + wid
            + b'},"isError":false'
        )
        self._tails = (tail + b"}", tail + _MODERN_TAIL)
        # Static results, serialized once per era (index 0 = handshake era, 1 = 2026-07-28).
        discover = {"supportedVersions": list(v.STATELESS_VERSIONS), "capabilities": CAPABILITIES,
                    "serverInfo": SERVER_INFO}  # fmt: skip
        self._static: dict[str, tuple[bytes, bytes]] = {
            "tools/list": (_dump_result({"tools": catalog.TOOLS}, False),
                           _dump_result({"tools": catalog.TOOLS}, True, True)),
            "resources/list": (_dump_result(catalog.resource_list(), False),
                               _dump_result(catalog.resource_list(), True, True)),
            "resources/templates/list": (_dump_result({"resourceTemplates": []}, False),
                                         _dump_result({"resourceTemplates": []}, True, True)),
            "prompts/list": (_dump_result({"prompts": catalog.PROMPTS}, False),
                             _dump_result({"prompts": catalog.PROMPTS}, True, True)),
            "server/discover": (_dump_result(discover, True, True),) * 2,
            "ping": (b"{}", b'{"resultType":"complete"}'),
            "logging/setLevel": (b"{}", b"{}"),
        }  # fmt: skip
        self._dynamic: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "resources/read": catalog.read_resource,
            "prompts/get": catalog.get_prompt,
        }
        self.known_methods = frozenset({*self._static, *self._dynamic, "tools/call", "initialize"})

    # -- entry point ---------------------------------------------------------------------------

    def handle(
        self, msg: Any, sink: ReplySink, token: int, headers: Mapping[str, str] | None, modern_hint: bool
    ) -> Reply | None:
        """Answer one decoded message.  ``headers`` (HTTP only) feed the 2026-07-28 header rung."""
        t0 = time.perf_counter()
        if type(msg) is not dict:
            return self._invalid(None, "Body must be a single JSON-RPC request or notification object", t0)
        method = msg.get("method")
        if "id" not in msg:
            if method is None and ("result" in msg or "error" in msg):
                return NO_REPLY, b""  # a client's reply to a server request we never send: ignore
            if type(method) is not str or msg.get("jsonrpc") != "2.0":
                return self._invalid(None, "Invalid JSON-RPC notification", t0)
            return NO_REPLY, b""  # notifications/initialized, notifications/cancelled, ...: nothing to do
        rid = msg["id"]
        if type(rid) is not str and not (type(rid) is int and _MIN_ID <= rid <= _MAX_ID):
            return self._invalid(None, "JSON-RPC id must be a string or a 64-bit integer", t0)
        if method is None and ("result" in msg or "error" in msg):
            return NO_REPLY, b""
        if type(method) is not str or msg.get("jsonrpc") != "2.0":
            return self._invalid(rid, "Invalid JSON-RPC request", t0)
        params = msg.get("params")
        if params is None:
            params = {}
        elif type(params) is not dict:
            return self._error(method, rid, v.INVALID_PARAMS, "params must be an object", None, t0=t0)
        modern = modern_hint
        if not modern:
            meta = params.get("_meta")
            modern = type(meta) is dict and v.META_PROTOCOL_VERSION in meta
        if modern:
            rejection = ladder(msg, params, headers)
            if rejection is not None:
                return self._error(method, rid, *rejection, t0=t0)
            if method in _NOT_MODERN:
                return self._error(
                    method, rid, v.METHOD_NOT_FOUND, f"Method not found: {method}", None, t0=t0
                )
        id_bytes = orjson.dumps(rid)
        if self._has_version_fault and method in _NO_FAULTS:
            wrong = self._injector.wrong_version()
            if wrong is not None:
                return self._finish(method, id_bytes, self._wrong_version(method, wrong), t0)
        try:
            if method == "tools/call":
                return self._tools_call(params, id_bytes, modern, sink, token, t0=t0)
            static = self._static.get(method)
            if static is not None:
                return self._finish(method, id_bytes, static[modern], t0)
            if method == "initialize":
                result = {"protocolVersion": negotiate(params.get("protocolVersion")),
                          "capabilities": CAPABILITIES, "serverInfo": SERVER_INFO}  # fmt: skip
                return self._finish(method, id_bytes, orjson.dumps(result), t0)
            fn = self._dynamic.get(method)
            if fn is None:
                return self._error(
                    method, rid, v.METHOD_NOT_FOUND, f"Method not found: {method}", None, t0=t0
                )
            cacheable = method == "resources/read"
            return self._finish(method, id_bytes, _dump_result(fn(params), modern, cacheable), t0)
        except RpcError as exc:
            return self._error(method, rid, exc.code, exc.message, exc.data, t0=t0)

    @staticmethod
    def _wrong_version(method: str, version: str) -> bytes:
        """The version fault's opening result: a server that speaks only ``version``."""
        if method == "initialize":
            return orjson.dumps(
                {"protocolVersion": version, "capabilities": CAPABILITIES, "serverInfo": SERVER_INFO}
            )
        discover = {"supportedVersions": [version], "capabilities": CAPABILITIES, "serverInfo": SERVER_INFO}
        return _dump_result(discover, True, True)

    # -- tools -------------------------------------------------------------------------------

    def _tools_call(
        self, params: dict[str, Any], id_bytes: bytes, modern: bool, sink: ReplySink, token: int, *, t0: float
    ) -> Reply | None:
        name = params.get("name")
        fn = catalog.TOOL_FNS.get(name) if type(name) is str else None
        if fn is None:
            raise RpcError(v.INVALID_PARAMS, f"Unknown tool: {name!r}")
        args = params.get("arguments")
        if args is None:
            args = {}
        elif type(args) is not dict:
            raise RpcError(v.INVALID_PARAMS, "tools/call: 'arguments' must be an object")
        result, service = fn(args, self._tails[modern])
        if self._has_cpu_fault:
            self._injector.burn_cpu()
        service += self._delay_s
        if self._has_delay_fault:
            service += self._injector.extra_delay()
        if service <= 0.0:
            return self._finish("tools/call", id_bytes, result, t0)
        self._gate.submit(service, self._deferred, sink, token, id_bytes, result, t0)
        return None

    def _deferred(self, sink: ReplySink, token: int, id_bytes: bytes, result: bytes, t0: float) -> None:
        code, body = self._finish("tools/call", id_bytes, result, t0)
        sink.deliver(token, code, body)

    # -- replies -----------------------------------------------------------------------------

    def _finish(self, method: str, id_bytes: bytes, result: bytes, t0: float) -> Reply:
        if self._has_reply_faults and method not in _NO_FAULTS:
            fault = self._injector.reply_fault()
            if fault is not None:
                self._stats.observe(method, fault, time.perf_counter() - t0)
                if fault == "drop":
                    return DROP, b""
                if fault == "close":
                    return CLOSE, b""
                if fault == "malformed":
                    # Cut mid-object: parses as nothing, the way a torn write would.
                    return OK, _HEAD + id_bytes + b',"result":{"content":[{"type":"te'
                body = _HEAD + id_bytes + b',"error":{"code":-32603,"message":"mcpswarm injected fault"}}'
                return v.INTERNAL_ERROR, body
        self._stats.observe(method, "ok", time.perf_counter() - t0)
        return OK, _HEAD + id_bytes + b',"result":' + result + b"}"

    def _error(self, method: str, rid: object, code: int, message: str, data: Any, *, t0: float) -> Reply:
        label = method if method in self.known_methods else "unknown"
        self._stats.observe(label, "error", time.perf_counter() - t0)
        return code, error_body(rid, code, message, data)

    def _invalid(self, rid: object, message: str, t0: float) -> Reply:
        return self._error("invalid", rid, v.INVALID_REQUEST, message, None, t0=t0)

    def parse_error(self) -> Reply:
        self._stats.observe("invalid", "error", 0.0)
        return v.PARSE_ERROR, error_body(None, v.PARSE_ERROR, "Parse error")


def _decode_header(value: str | None) -> str | None:
    """Undo the ``=?base64?...?=`` wrapping clients use for header values that are not plain ASCII."""
    if value is None or not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    try:
        return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def ladder(
    msg: dict[str, Any], params: dict[str, Any], headers: Mapping[str, str] | None
) -> tuple[int, str, Any] | None:
    """The 2026-07-28 envelope checks, first failure wins, in the SDK's order (see mcp/shared/inbound.py).

    1. ``params._meta`` carries protocol version and client capabilities (-32602);
    2. on HTTP, MCP-Protocol-Version / Mcp-Method / Mcp-Name equal the body (-32020);
    3. the version is a string (-32602) that we serve (-32022 with ``{supported, requested}``).
    """
    meta = params.get("_meta")
    if type(meta) is not dict:
        return v.INVALID_PARAMS, "params._meta must be an object carrying the envelope keys", None
    missing = [k for k in (v.META_PROTOCOL_VERSION, v.META_CLIENT_CAPABILITIES) if k not in meta]
    if missing:
        return (
            v.INVALID_PARAMS,
            f"params._meta is missing the required envelope key(s): {', '.join(missing)}",
            None,
        )
    version = meta[v.META_PROTOCOL_VERSION]
    if headers is not None:
        if headers.get(v.H_PROTOCOL_VERSION) != version:
            return (
                v.HEADER_MISMATCH,
                "mcp-protocol-version header does not match the envelope's version",
                None,
            )
        method = msg.get("method")
        if headers.get(v.H_METHOD) != method:
            return v.HEADER_MISMATCH, "mcp-method header does not match the request body's method", None
        key = v.NAME_BEARING.get(method) if type(method) is str else None
        if key is not None:
            body_value = params.get(key)
            if body_value is not None and _decode_header(headers.get(v.H_NAME)) != body_value:
                return v.HEADER_MISMATCH, f"mcp-name header does not match the request body's {key!r}", None
    if type(version) is not str:
        return v.INVALID_PARAMS, "the protocol-version envelope value must be a string", None
    if version not in v.STATELESS_VERSIONS:
        data = {"supported": list(v.STATELESS_VERSIONS), "requested": version}
        return v.UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version", data
    return None
