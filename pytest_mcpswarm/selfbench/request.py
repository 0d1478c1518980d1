"""The single request both servers are measured with, and the check of its reply.

Pure: no sockets.  The harness, the wrk Lua script and the Python drivers all
take their bytes from here, so every client sends exactly the same request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from pytest_mcpswarm.errors import ProtocolError
from pytest_mcpswarm.protocol.versions import (
    LATEST_STATELESS,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
)

#: The text the echo tool is asked to return; the reply check compares against it.
ECHO_TEXT = "hello from mcpswarm selfbench"
HTTP_PATH = "/mcp"
WS_PATH = "/mcp/ws"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A stateless (2026-07-28) ``tools/call``: every request carries its own ``_meta`` envelope."""

    tool: str = "echo"
    text: str = ECHO_TEXT
    request_id: int = 1
    version: str = LATEST_STATELESS

    def message(self) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": self.request_id,
            "method": "tools/call",
            "params": {
                "name": self.tool,
                "arguments": {"text": self.text},
                "_meta": {
                    META_PROTOCOL_VERSION: self.version,
                    META_CLIENT_CAPABILITIES: {},
                    META_CLIENT_INFO: {"name": "mcpswarm-selfbench", "version": "1"},
                },
            },
        }

    def body(self) -> bytes:
        return orjson.dumps(self.message())

    def http_headers(self) -> dict[str, str]:
        """Headers the stateless revision requires; the SDK rejects a mismatch with the body."""
        return {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": self.version,
            "Mcp-Method": "tools/call",
            "Mcp-Name": self.tool,
        }

    def http_request(self, host: str, port: int) -> bytes:
        """The whole HTTP/1.1 request, for drivers that write raw bytes."""
        body = self.body()
        lines = [f"POST {HTTP_PATH} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in self.http_headers().items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body

    def ws_template(self) -> tuple[bytes, bytes]:
        """The message split around its id, so a WS driver can number requests without re-encoding."""
        marker = 987654321987
        raw = orjson.dumps({**self.message(), "id": marker})
        head, _, tail = raw.partition(str(marker).encode())
        return head, tail


def json_payload(body: bytes, content_type: str, *, who: str) -> bytes:
    """The JSON-RPC message of an HTTP reply, whether sent as JSON or as one SSE event."""
    if "text/event-stream" not in content_type:
        return body
    data = [line[5:].strip() for line in body.splitlines() if line.startswith(b"data:")]
    if not data:
        raise ProtocolError(f"{who} replied with an event stream that carries no data: line")
    return data[-1]


def check_reply(call: ToolCall, status: int, payload: bytes, *, who: str) -> None:
    """Raise ``ProtocolError`` unless ``payload`` is a successful result echoing ``call.text``.

    A server can answer 200 and still have failed: an unknown tool comes back
    as a *result* with ``isError: true``, so the echoed content is compared too.
    """
    snippet = payload[:200].decode("utf-8", "replace")
    try:
        msg = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ProtocolError(
            f"{who} replied HTTP {status} with a body that is not JSON: {snippet!r}"
        ) from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"{who} replied with a JSON value that is not a JSON-RPC object: {snippet!r}")
    if "error" in msg:
        err = msg["error"]
        detail = f"{err.get('code')} {err.get('message')}" if isinstance(err, dict) else repr(err)
        raise ProtocolError(
            f"{who} answered the echo tools/call with a JSON-RPC error (HTTP {status}): {detail}"
        )
    if status != 200:
        raise ProtocolError(f"{who} replied HTTP {status} to the echo tools/call: {snippet!r}")
    if msg.get("id") != call.request_id:
        raise ProtocolError(
            f"{who} replied with id {msg.get('id')!r}, expected {call.request_id}", kind="unmatched_id"
        )
    result = msg.get("result")
    if not isinstance(result, dict):
        raise ProtocolError(f"{who} replied without a result object: {snippet!r}")
    content = result.get("content")
    texts = [c.get("text") for c in content if isinstance(c, dict)] if isinstance(content, list) else []
    if result.get("isError"):
        raise ProtocolError(
            f"{who} reported a tool error for {call.tool!r}: {' '.join(map(str, texts))[:160]}"
        )
    if call.text not in texts:
        raise ProtocolError(
            f"{who} replied to tools/call {call.tool!r} without echoing the text: {snippet!r}"
        )
