"""The MCP headers a Streamable HTTP request carries, derived from the JSON-RPC body (pure)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, Final

from pytest_mcpswarm.protocol import versions

# Printable ASCII survives any HTTP/1.1 stack; edge whitespace would be trimmed by parsers.
_SAFE: Final = re.compile(r"[\x20-\x7e]*")
_SENTINEL: Final = re.compile(r"=\?base64\?.*\?=")


def encode_header_value(value: str) -> str:
    """``value`` as is when it survives a header round-trip, else wrapped as ``=?base64?...?=``."""
    if _SAFE.fullmatch(value) and value == value.strip() and not _SENTINEL.fullmatch(value):
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode("ascii") + "?="


def http_headers(version: str, method: str, params: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Headers for one request at ``version``: ``MCP-Protocol-Version`` always; stateless adds
    ``Mcp-Method`` and, for the methods in NAME_BEARING, ``Mcp-Name``."""
    headers = {versions.H_PROTOCOL_VERSION: version}
    if not versions.is_stateless(version):
        return headers
    headers[versions.H_METHOD] = method
    key = versions.NAME_BEARING.get(method)
    if key is not None and params is not None and isinstance(name := params.get(key), str):
        headers[versions.H_NAME] = encode_header_value(name)
    return headers
