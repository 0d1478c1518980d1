"""open_transport: URL scheme -> transport class, and clear errors for bad targets."""

from __future__ import annotations

import sys

import pytest

from pytest_mcpswarm.errors import TargetError
from pytest_mcpswarm.transport import open_transport
from pytest_mcpswarm.transport.stdio import StdioTransport
from pytest_mcpswarm.transport.tcp import TcpTransport


def test_stdio_splits_like_a_shell() -> None:
    transport = open_transport(f"stdio:{sys.executable} -m 'my server' --flag")
    assert isinstance(transport, StdioTransport)
    assert transport.argv == [sys.executable, "-m", "my server", "--flag"]


def test_tcp_host_and_port() -> None:
    transport = open_transport("tcp://127.0.0.1:7000")
    assert isinstance(transport, TcpTransport)
    assert (transport.host, transport.port) == ("127.0.0.1", 7000)


def test_ws_and_http_are_built_with_their_options() -> None:
    from pytest_mcpswarm.transport.http import HttpTransport
    from pytest_mcpswarm.transport.ws import WebSocketTransport

    ws = open_transport("ws://127.0.0.1:9000/mcp", ws_newline=True, headers={"x-a": "1"})
    assert isinstance(ws, WebSocketTransport)
    assert ws.newline
    assert isinstance(open_transport("https://example.test/mcp", headers={"x-a": "1"}), HttpTransport)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("stdio:", "names no command"),
        ("stdio:   ", "names no command"),
        ("stdio:python 'unterminated", "cannot split"),
        ("ftp://host/x", "scheme 'ftp'"),
        ("localhost:8080", "scheme 'localhost'"),
        ("/just/a/path", "no scheme"),
        ("tcp://127.0.0.1", "needs a port"),
        ("tcp://127.0.0.1:99999", "not a valid URL"),
        ("tcp://127.0.0.1:80/path", "no path"),
        ("http://:8080/mcp", "no host"),
    ],
)
def test_bad_targets_name_the_accepted_forms(url: str, needle: str) -> None:
    with pytest.raises(TargetError, match=needle) as info:
        open_transport(url)
    assert "stdio:COMMAND" in str(info.value)  # the fix lists every accepted form


def test_headers_are_refused_where_they_cannot_go() -> None:
    with pytest.raises(TargetError, match="cannot carry HTTP headers"):
        open_transport("tcp://127.0.0.1:1", headers={"authorization": "x"})
