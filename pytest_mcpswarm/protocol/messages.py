"""Builders for the MCP requests we send, and light checks of the results we get back.

Builders return a :class:`Call` (method + params) without the 2026-07-28
``_meta`` envelope: :class:`~pytest_mcpswarm.protocol.lifecycle.ClientLifecycle`
adds it when the session is stateless.  Parsers check only the shape a client
relies on and raise ``ProtocolError(kind="malformed")`` naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_mcpswarm.errors import ProtocolError


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    params: dict[str, Any] | None = None


def ping() -> Call:
    return Call("ping")


def _paged(method: str, cursor: str | None) -> Call:
    return Call(method, {"cursor": cursor} if cursor is not None else None)


def list_tools(cursor: str | None = None) -> Call:
    return _paged("tools/list", cursor)


def call_tool(name: str, arguments: Mapping[str, Any] | None = None) -> Call:
    return Call("tools/call", {"name": name, "arguments": dict(arguments or {})})


def list_resources(cursor: str | None = None) -> Call:
    return _paged("resources/list", cursor)


def read_resource(uri: str) -> Call:
    return Call("resources/read", {"uri": uri})


def list_prompts(cursor: str | None = None) -> Call:
    return _paged("prompts/list", cursor)


def get_prompt(name: str, arguments: Mapping[str, str] | None = None) -> Call:
    params: dict[str, Any] = {"name": name}
    if arguments:
        params["arguments"] = dict(arguments)
    return Call("prompts/get", params)


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a ``*/list`` result."""

    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ToolResult:
    content: list[dict[str, Any]]
    is_error: bool
    structured: Any = None

    @property
    def text(self) -> str:
        """The text blocks of ``content``, joined by newlines."""
        return "\n".join(block["text"] for block in self.content if block.get("type") == "text")


def _bad(method: str, problem: str) -> ProtocolError:
    return ProtocolError(f"malformed {method} result: {problem}", kind="malformed")


def _object(method: str, result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise _bad(method, f"expected an object, got {type(result).__name__}")
    # 2026-07-28 tags results; an absent tag means "complete".  We cannot answer input requests.
    result_type = result.get("resultType", "complete")
    if result_type != "complete":
        raise _bad(method, f"resultType {result_type!r} is not supported by this client (only 'complete')")
    return result


def _objects(method: str, result: dict[str, Any], key: str, required: str) -> list[dict[str, Any]]:
    items = result.get(key)
    if not isinstance(items, list):
        raise _bad(method, f"{key!r} must be a list")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(required), str):
            raise _bad(method, f"{key}[{index}] must be an object with a string {required!r}")
    return items


def parse_page(method: str, result: Any) -> Page:
    """A ``tools/list``, ``resources/list`` or ``prompts/list`` result."""
    key, required = _LISTS[method]
    obj = _object(method, result)
    cursor = obj.get("nextCursor")
    if cursor is not None and not isinstance(cursor, str):
        raise _bad(method, "nextCursor must be a string")
    return Page(_objects(method, obj, key, required), cursor)


_LISTS = {
    "tools/list": ("tools", "name"),
    "resources/list": ("resources", "uri"),
    "prompts/list": ("prompts", "name"),
}


def parse_call_tool(result: Any) -> ToolResult:
    obj = _object("tools/call", result)
    content = _objects("tools/call", obj, "content", "type")
    for index, block in enumerate(content):
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise _bad("tools/call", f"content[{index}] is a text block without a string 'text'")
    is_error = obj.get("isError", False)
    if not isinstance(is_error, bool):
        raise _bad("tools/call", "isError must be a boolean")
    return ToolResult(content, is_error, obj.get("structuredContent"))


def parse_read_resource(result: Any) -> list[dict[str, Any]]:
    """The ``contents`` of a ``resources/read`` result; each has a ``uri`` and ``text`` or ``blob``."""
    contents = _objects("resources/read", _object("resources/read", result), "contents", "uri")
    for index, item in enumerate(contents):
        if not isinstance(item.get("text"), str) and not isinstance(item.get("blob"), str):
            raise _bad("resources/read", f"contents[{index}] has neither a string 'text' nor 'blob'")
    return contents


def parse_get_prompt(result: Any) -> list[dict[str, Any]]:
    """The ``messages`` of a ``prompts/get`` result; each has a ``role`` and a ``content`` object."""
    messages = _objects("prompts/get", _object("prompts/get", result), "messages", "role")
    for index, message in enumerate(messages):
        if not isinstance(message.get("content"), dict):
            raise _bad("prompts/get", f"messages[{index}] has no content object")
    return messages


def parse_empty(method: str, result: Any) -> None:
    """``ping`` and friends answer an object with nothing we need."""
    _object(method, result)
