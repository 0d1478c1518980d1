"""The official MCP SDK client (mcp 2.3) talks to `mcpswarm serve` over Streamable HTTP, in both eras."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp.client.client import Client
from mcp_types import TextContent, TextResourceContents

from pytest_mcpswarm.server.launch import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as srv:
        yield srv


@pytest.mark.parametrize("mode", ["auto", "legacy", "2026-07-28"])
async def test_sdk_client_round_trip(server: ServerProcess, mode: str) -> None:
    async with Client(server.url, mode=mode) as client:
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == {"echo", "add", "sleep", "payload"}

        echoed = await client.call_tool("echo", {"text": "hello sdk"})
        assert not echoed.is_error
        assert isinstance(echoed.content[0], TextContent)
        assert echoed.content[0].text == "hello sdk"
        assert echoed.structured_content is not None
        assert echoed.structured_content["replica"]

        added = await client.call_tool("add", {"a": 20, "b": 22})
        assert added.structured_content is not None
        assert added.structured_content["sum"] == 42

        resource = await client.read_resource("mcpswarm://static/hello")
        assert isinstance(resource.contents[0], TextResourceContents)
        assert resource.contents[0].text == "hello from mcpswarm"

        prompt = await client.get_prompt("greet", {"name": "Ada"})
        content = prompt.messages[0].content
        assert isinstance(content, TextContent)
        assert content.text == "Please greet Ada."
