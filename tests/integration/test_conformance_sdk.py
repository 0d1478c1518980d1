"""Our McpClient against the official MCP Python SDK server: nothing mocked.

The peer is tests/peers/sdk_server.py, over stdio and over Streamable HTTP
(uvicorn on 127.0.0.1, stateful and stateless), at a handshake revision and
at the stateless 2026-07-28 revision.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_mcpswarm.client import McpClient
from pytest_mcpswarm.errors import McpCallError, UsageError
from pytest_mcpswarm.transport import open_transport

PEER = Path(__file__).parent.parent / "peers" / "sdk_server.py"
VERSIONS = ["2025-11-25", "2026-07-28"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=["stateful", "stateless"])
def http_url(request: pytest.FixtureRequest) -> Iterator[str]:
    port = _free_port()
    argv = [sys.executable, str(PEER), "http", str(port)]
    if request.param == "stateless":
        argv.append("--stateless")
    proc = subprocess.Popen(argv)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the SDK peer did not start listening") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


async def _converse(client: McpClient, version: str) -> None:
    assert client.version == version
    assert client.server_info.get("name") == "sdk-peer"
    assert "tools" in client.server_capabilities

    tools = {tool["name"]: tool for tool in await client.list_tools()}
    assert set(tools) == {"echo", "add"}
    assert tools["add"]["inputSchema"]["required"] == ["a", "b"]

    echoed = await client.call_tool("echo", {"text": "héllo"})
    assert (echoed.text, echoed.is_error) == ("héllo", False)
    added = await client.call_tool("add", {"a": 2, "b": 40})
    assert added.text == "42"
    assert added.structured == {"result": 42}
    unknown = await client.call_tool("nope", {})
    assert unknown.is_error  # a tool failure is a result, not a JSON-RPC error

    (content,) = await client.read_resource("test://greeting")
    assert (content["uri"], content["text"]) == ("test://greeting", "hello from the sdk peer")
    assert [r["uri"] for r in await client.list_resources()] == ["test://greeting"]

    (message,) = await client.get_prompt("greet", {"name": "Ada"})
    assert message["role"] == "user"
    assert message["content"]["text"] == "Please greet Ada."
    assert [p["name"] for p in await client.list_prompts()] == ["greet"]

    if version == "2026-07-28":
        with pytest.raises(UsageError, match="ping"):
            await client.ping()
    else:
        await client.ping()


@pytest.mark.parametrize("version", VERSIONS)
async def test_conformance_stdio(version: str) -> None:
    transport = open_transport(f"stdio:{sys.executable} {PEER} stdio", stdio_stderr="capture")
    async with McpClient(transport, version=version, timeout=20) as client:
        await _converse(client, version)
    assert not transport.is_open


@pytest.mark.parametrize("version", VERSIONS)
async def test_conformance_streamable_http(http_url: str, version: str) -> None:
    transport = open_transport(http_url)
    async with McpClient(transport, version=version, timeout=20) as client:
        await _converse(client, version)
    assert not transport.is_open


@pytest.mark.parametrize("version", VERSIONS)
async def test_unknown_method_is_a_call_error_over_http(http_url: str, version: str) -> None:
    # At 2026-07-28 the SDK answers -32601 with HTTP 404 *and* a JSON-RPC error body
    # (mcp/shared/inbound.py ERROR_CODE_HTTP_STATUS): the body is the answer.
    async with McpClient(open_transport(http_url), version=version, timeout=20) as client:
        with pytest.raises(McpCallError) as info:
            await client.request("no/such/method")
        assert info.value.code == -32601


@pytest.mark.parametrize("version", VERSIONS)
async def test_unknown_method_is_a_call_error_over_stdio(version: str) -> None:
    transport = open_transport(f"stdio:{sys.executable} {PEER} stdio", stdio_stderr="capture")
    async with McpClient(transport, version=version, timeout=20) as client:
        with pytest.raises(McpCallError) as info:
            await client.request("no/such/method")
        assert (info.value.code, info.value.method) == (-32601, "no/such/method")
