"""Protocol revisions, JSON-RPC error codes and HTTP header names: the constants every layer shares."""

from __future__ import annotations

from typing import Final

#: Revisions reached with the ``initialize`` handshake, oldest first.
HANDSHAKE_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
#: Stateless revisions: ``server/discover`` plus a per-request ``_meta`` envelope.
STATELESS_VERSIONS: Final = ("2026-07-28",)
ALL_VERSIONS: Final = HANDSHAKE_VERSIONS + STATELESS_VERSIONS
LATEST_HANDSHAKE: Final = HANDSHAKE_VERSIONS[-1]
LATEST_STATELESS: Final = STATELESS_VERSIONS[-1]

# _meta envelope keys of the stateless revision.
META_PROTOCOL_VERSION: Final = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES: Final = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO: Final = "io.modelcontextprotocol/clientInfo"

# HTTP headers (lower-case, as HTTP/1.1 parsers hand them out).
H_PROTOCOL_VERSION: Final = "mcp-protocol-version"
H_SESSION_ID: Final = "mcp-session-id"
H_METHOD: Final = "mcp-method"
H_NAME: Final = "mcp-name"

#: Method -> params key mirrored into the ``Mcp-Name`` header (2026-07-28).
NAME_BEARING: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

# JSON-RPC 2.0 and MCP error codes.
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
CONNECTION_CLOSED: Final = -32000
REQUEST_TIMEOUT: Final = -32001
HEADER_MISMATCH: Final = -32020
MISSING_CLIENT_CAPABILITY: Final = -32021
UNSUPPORTED_PROTOCOL_VERSION: Final = -32022


def is_stateless(version: str) -> bool:
    return version in STATELESS_VERSIONS
