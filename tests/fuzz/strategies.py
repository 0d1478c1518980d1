"""Hypothesis strategies shared by the fuzzers (JSON values, JSON-RPC-shaped messages, frames, HTTP)
and their budget, ``FUZZ``: small and bounded by default, more on demand.

``MCPSWARM_FUZZ_EXAMPLES`` sets ``max_examples`` for every fuzz test (default 40,
about 30 s for the whole directory on a 2-core VM); raise it for a longer hunt,
e.g. ``MCPSWARM_FUZZ_EXAMPLES=5000 pytest tests/fuzz``.  The fuzzers do not use
hypothesis' example database, so a CI run leaves no files behind; inputs are derandomized
(the same every run) unless ``MCPSWARM_FUZZ_RANDOM`` is set.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "mcpswarm-fuzz",
    max_examples=int(os.environ.get("MCPSWARM_FUZZ_EXAMPLES", "40")),
    deadline=None,
    database=None,
    derandomize=os.environ.get("MCPSWARM_FUZZ_RANDOM") is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FUZZ = settings.get_profile("mcpswarm-fuzz")

METHODS = (
    "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/read",
    "resources/templates/list", "prompts/list", "prompts/get", "server/discover",
    "logging/setLevel", "notifications/initialized", "nope/none", "",
)  # fmt: skip
VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28", "1999-01-01")
META_PV = "io.modelcontextprotocol/protocolVersion"
META_CAPS = "io.modelcontextprotocol/clientCapabilities"

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20)
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def rpc_messages(draw: st.DrawFn) -> Any:
    """Mostly JSON-RPC-shaped objects with wrong types sprinkled in, sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    msg: dict[str, Any] = {}
    if draw(st.booleans()):
        msg["jsonrpc"] = draw(st.sampled_from(["2.0", "1.0", 2]))
    if draw(st.integers(0, 3)):
        msg["id"] = draw(st.integers(-(2**63), 2**64) | st.text(max_size=5) | json_values)
    if draw(st.integers(0, 5)):
        msg["method"] = draw(st.sampled_from(METHODS) | json_values)
    if draw(st.booleans()):
        params: Any = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.sampled_from(["echo", "add", "sleep", "payload", "greet", "x"]) | json_values,
                    "arguments": st.dictionaries(
                        st.sampled_from(["text", "a", "b", "ms", "bytes", "seconds", "size"]),
                        json_values,
                        max_size=3,
                    )
                    | json_values,
                    "uri": st.sampled_from(["mcpswarm://static/small", "mcpswarm://static/x", ""])
                    | json_values,
                    "protocolVersion": st.sampled_from(VERSIONS) | json_values,
                    "_meta": st.fixed_dictionaries(
                        {},
                        optional={
                            META_PV: st.sampled_from(VERSIONS) | json_values,
                            META_CAPS: json_values,
                        },
                    )
                    | json_values,
                },
            )
        )
        msg["params"] = params if draw(st.integers(0, 5)) else draw(json_values)
    if draw(st.integers(0, 7)) == 0:
        msg[draw(st.sampled_from(["result", "error"]))] = draw(json_values)
    return msg


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0,
             key: bytes = b"\x01\x02\x03\x04", length: int | None = None) -> bytes:  # fmt: skip
    """One client frame; ``length`` may lie about the payload size."""
    n = len(payload) if length is None else length
    head = bytes(((0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F),))
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes((mask_bit | n,))
    elif n < 65536:
        head += bytes((mask_bit | 126,)) + struct.pack("!H", n)
    else:
        head += bytes((mask_bit | 127,)) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """A sequence of mostly plausible client frames: any opcode, fragments, bad bits, lying lengths."""
    out = b""
    for _ in range(draw(st.integers(1, 5))):
        opcode = draw(st.sampled_from([0x0, 0x1, 0x1, 0x1, 0x2, 0x8, 0x9, 0xA]) | st.integers(0, 15))
        kind = draw(st.integers(0, 2))
        if kind == 0:
            payload = draw(st.binary(max_size=300))
        elif kind == 1:
            payload = draw(rpc_messages().map(_dumps))
        else:
            payload = draw(
                st.sampled_from([b"\n", b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n{"x"\n', b"\xff\xfe"])
            )
        out += ws_frame(
            opcode,
            payload,
            fin=draw(st.integers(0, 4)) > 0,
            masked=draw(st.integers(0, 9)) > 0,
            rsv=draw(st.sampled_from([0, 0, 0, 1, 4])),
            key=draw(st.binary(min_size=4, max_size=4)),
            length=draw(st.none() | st.none() | st.integers(0, 2**64 - 1)),
        )
    return out


def _dumps(value: Any) -> bytes:
    import orjson

    try:
        return orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits
        return repr(value).encode()


HTTP_METHODS = (b"GET", b"POST", b"DELETE", b"PUT", b"OPTIONS", b"HEAD", b"BREW", b"")
PATHS = (b"/mcp", b"/mcp/ws", b"/health", b"/stats", b"/metrics", b"/", b"/mcp?x=1", b"*", b"/%00", b"//mcp")
HEADER_NAMES = (
    b"content-type", b"content-length", b"accept", b"mcp-session-id", b"mcp-protocol-version", b"mcp-method",
    b"mcp-name", b"origin", b"upgrade", b"connection", b"sec-websocket-key", b"sec-websocket-version",
    b"transfer-encoding", b"sec-websocket-protocol", b"x-junk",
)  # fmt: skip

HEADER_VALUES = (
    b"application/json", b"websocket", b"13", b"chunked", b"2026-07-28", b"dGhlIHNhbXBsZSBub25jZQ==",
    b"http://evil.example", b"-1", b"99999999999999999999", b"Upgrade", b"text/event-stream",
)  # fmt: skip

HEADER_VALUES = (
    b"application/json", b"websocket", b"13", b"chunked", b"2026-07-28", b"dGhlIHNhbXBsZSBub25jZQ==",
    b"http://evil.example", b"-1", b"99999999999999999999", b"Upgrade", b"text/event-stream",
)  # fmt: skip


@st.composite
def http_requests(draw: st.DrawFn) -> bytes:
    """Raw HTTP/1.1 requests: plausible ones, broken ones, truncated ones, pipelined ones."""
    out = b""
    for _ in range(draw(st.integers(1, 3))):
        method = draw(st.sampled_from(HTTP_METHODS) | st.binary(max_size=8))
        path = draw(st.sampled_from(PATHS) | st.binary(max_size=20))
        version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"", b"HTTP/1.1 x"]))
        body = draw(st.sampled_from([b""]) | rpc_messages().map(_dumps) | st.binary(max_size=200))
        headers = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(HEADER_NAMES) | st.binary(min_size=1, max_size=10),
                    st.binary(max_size=40) | st.sampled_from(HEADER_VALUES),
                ),
                max_size=8,
            )
        )
        if draw(st.booleans()):
            headers.append((b"content-length", str(len(body)).encode()))
        head = method + b" " + path + b" " + version + b"\r\n"
        head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        request = head + b"\r\n" + body
        if draw(st.integers(0, 5)) == 0:
            request = request[: draw(st.integers(0, len(request)))]  # truncated
        out += request
    return out
