"""Request builders and result parsers."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mcpswarm.errors import ProtocolError
from pytest_mcpswarm.protocol import messages
from pytest_mcpswarm.protocol.messages import Call, Page, ToolResult


def test_builders() -> None:
    assert messages.ping() == Call("ping")
    assert messages.list_tools() == Call("tools/list")
    assert messages.list_prompts("c2") == Call("prompts/list", {"cursor": "c2"})
    assert messages.call_tool("add", {"a": 1}) == Call("tools/call", {"name": "add", "arguments": {"a": 1}})
    assert messages.call_tool("noargs") == Call("tools/call", {"name": "noargs", "arguments": {}})
    assert messages.read_resource("test://x") == Call("resources/read", {"uri": "test://x"})
    assert messages.get_prompt("greet") == Call("prompts/get", {"name": "greet"})
    assert messages.get_prompt("greet", {"name": "Bob"}) == Call(
        "prompts/get", {"name": "greet", "arguments": {"name": "Bob"}}
    )


def test_parse_call_tool() -> None:
    result = {
        "content": [
            {"type": "text", "text": "a"},
            {"type": "image", "data": "", "mimeType": "x"},
            {"type": "text", "text": "b"},
        ],
        "isError": True,
        "structuredContent": {"result": 3},
    }
    parsed = messages.parse_call_tool(result)
    assert parsed.is_error
    assert parsed.text == "a\nb"
    assert parsed.structured == {"result": 3}
    assert messages.parse_call_tool({"content": []}) == ToolResult([], False)


def test_parse_page_follows_next_cursor() -> None:
    page = messages.parse_page("tools/list", {"tools": [{"name": "echo"}], "nextCursor": "n"})
    assert page == Page([{"name": "echo"}], "n")
    assert messages.parse_page("resources/list", {"resources": []}) == Page([], None)


@pytest.mark.parametrize(
    ("parse", "result", "needle"),
    [
        (messages.parse_call_tool, [], "expected an object"),
        (messages.parse_call_tool, {}, "'content' must be a list"),
        (messages.parse_call_tool, {"content": [{"text": "x"}]}, "string 'type'"),
        (messages.parse_call_tool, {"content": [{"type": "text"}]}, "without a string 'text'"),
        (messages.parse_call_tool, {"content": [], "isError": "yes"}, "isError"),
        (messages.parse_call_tool, {"content": [], "resultType": "input_required"}, "input_required"),
        (messages.parse_read_resource, {"contents": [{"uri": "u"}]}, "neither"),
        (messages.parse_read_resource, {"contents": [{"text": "t"}]}, "string 'uri'"),
        (messages.parse_get_prompt, {"messages": [{"role": "user"}]}, "no content"),
        (lambda r: messages.parse_page("prompts/list", r), {"prompts": [{}]}, "string 'name'"),
        (lambda r: messages.parse_page("tools/list", r), {"tools": [], "nextCursor": 5}, "nextCursor"),
        (lambda r: messages.parse_empty("ping", r), None, "expected an object"),
    ],
)
def test_shape_errors_name_the_problem(parse: Any, result: Any, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle) as info:
        parse(result)
    assert info.value.kind == "malformed"


def test_complete_result_type_is_accepted() -> None:
    contents = [{"uri": "u", "blob": "AA=="}]
    assert messages.parse_read_resource({"contents": contents, "resultType": "complete"}) == contents
