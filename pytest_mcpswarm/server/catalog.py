"""What the reference server offers: its tools, static resources and prompts.

Tool bodies return the ``result`` object already serialized, so the hot path
never builds a dict just to dump it: the constant parts are bytes spliced
around the one ``orjson.dumps`` of the variable part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from pytest_mcpswarm.protocol.versions import INVALID_PARAMS


class RpcError(Exception):
    """A JSON-RPC error reply raised from a handler; the dispatcher serializes it."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


#: A tool: (arguments, result tail) -> (serialized result, seconds of asynchronous service it asks for).
ToolFn = Callable[[dict[str, Any], bytes], tuple[bytes, float]]

#: Upper bound of the ``payload`` tool, so one call cannot make the server allocate without limit.
MAX_PAYLOAD_BYTES: Final = 64 * 1024 * 1024
MAX_SLEEP_MS: Final = 600_000


def _text_result(text: bytes, structured: bytes, tail: bytes) -> bytes:
    return b'{"content":[{"type":"text","text":' + text + b'}],"structuredContent":{' + structured + tail


def _echo(args: dict[str, Any], tail: bytes) -> tuple[bytes, float]:
    text = args.get("text")
    if type(text) is not str:
        # "echo anything": the arguments themselves, as JSON text.
        text = orjson.dumps(args).decode()
    dumped = orjson.dumps(text)
    return _text_result(dumped, b'"text":' + dumped, tail), 0.0


def _number(args: dict[str, Any], key: str) -> int | float:
    value = args.get(key)
    if type(value) not in (int, float):
        raise RpcError(INVALID_PARAMS, f"add: argument {key!r} must be a number")
    return value  # type: ignore[return-value]


def _add(args: dict[str, Any], tail: bytes) -> tuple[bytes, float]:
    total = orjson.dumps(_number(args, "a") + _number(args, "b"))
    return _text_result(b'"' + total + b'"', b'"sum":' + total, tail), 0.0


def _sleep(args: dict[str, Any], tail: bytes) -> tuple[bytes, float]:
    ms = args.get("ms", 0)
    if type(ms) not in (int, float) or not 0 <= ms <= MAX_SLEEP_MS:
        raise RpcError(INVALID_PARAMS, f"sleep: argument 'ms' must be a number in 0..{MAX_SLEEP_MS}")
    slept = orjson.dumps(ms)
    return _text_result(b'"slept ' + slept + b' ms"', b'"slept_ms":' + slept, tail), ms / 1000.0


def _payload(args: dict[str, Any], tail: bytes) -> tuple[bytes, float]:
    n = args.get("bytes", 0)
    if type(n) is not int or not 0 <= n <= MAX_PAYLOAD_BYTES:
        raise RpcError(
            INVALID_PARAMS, f"payload: argument 'bytes' must be an integer in 0..{MAX_PAYLOAD_BYTES}"
        )
    # 'x' needs no JSON escaping, so the text is exactly n bytes on the wire and in UTF-8.
    return _text_result(b'"' + b"x" * n + b'"', b'"bytes":' + str(n).encode(), tail), 0.0


TOOL_FNS: Final[dict[str, ToolFn]] = {"echo": _echo, "add": _add, "sleep": _sleep, "payload": _payload}


def _schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


TOOLS: Final[list[dict[str, Any]]] = [
    {
        "name": "echo",
        "description": "Return `text` unchanged (or, without `text`, the arguments as JSON text).",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
    {
        "name": "add",
        "description": "Add two numbers.",
        "inputSchema": _schema({"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"]),
    },
    {
        "name": "sleep",
        "description": "Wait `ms` milliseconds without blocking the server, then answer.",
        "inputSchema": _schema({"ms": {"type": "number", "minimum": 0}}, ["ms"]),
    },
    {
        "name": "payload",
        "description": "Answer with a text of exactly `bytes` bytes.",
        "inputSchema": _schema({"bytes": {"type": "integer", "minimum": 0}}, ["bytes"]),
    },
]

RESOURCES: Final[dict[str, tuple[str, str, str]]] = {
    # uri: (name, mimeType, text)
    "mcpswarm://static/hello": ("hello", "text/plain", "hello from mcpswarm"),
    "mcpswarm://static/lorem": ("lorem", "text/plain", "lorem ipsum dolor sit amet, " * 40),
    "mcpswarm://static/config.json": ("config", "application/json", '{"server":"mcpswarm","static":true}'),
}

PROMPTS: Final[list[dict[str, Any]]] = [
    {
        "name": "greet",
        "description": "Ask the model to greet someone.",
        "arguments": [{"name": "name", "description": "who to greet", "required": True}],
    },
    {"name": "summarize", "description": "Ask for a summary of the lorem resource.", "arguments": []},
]


def resource_list() -> dict[str, Any]:
    return {
        "resources": [
            {"uri": uri, "name": name, "mimeType": mime, "size": len(text.encode())}
            for uri, (name, mime, text) in RESOURCES.items()
        ]
    }


def read_resource(params: dict[str, Any]) -> dict[str, Any]:
    uri = params.get("uri")
    if type(uri) is not str:
        raise RpcError(INVALID_PARAMS, "resources/read: 'uri' must be a string")
    found = RESOURCES.get(uri)
    if found is None:
        # -32002 is MCP's "resource not found".
        raise RpcError(-32002, "Resource not found", {"uri": uri})
    _, mime, text = found
    return {"contents": [{"uri": uri, "mimeType": mime, "text": text}]}


def get_prompt(params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name")
    args = params.get("arguments") or {}
    if type(args) is not dict:
        raise RpcError(INVALID_PARAMS, "prompts/get: 'arguments' must be an object")
    if name == "greet":
        who = args.get("name")
        if type(who) is not str:
            raise RpcError(INVALID_PARAMS, "prompts/get greet: argument 'name' is required")
        text = f"Please greet {who}."
    elif name == "summarize":
        text = "Please summarize mcpswarm://static/lorem."
    else:
        raise RpcError(INVALID_PARAMS, f"Unknown prompt: {name!r}")
    return {
        "description": f"prompt {name}",
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
    }
