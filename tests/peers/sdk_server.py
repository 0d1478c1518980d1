"""The official MCP Python SDK server, as a conformance peer.

Run as ``python sdk_server.py stdio`` or
``python sdk_server.py http PORT [--stateless] [--json]`` (uvicorn on 127.0.0.1).
It exposes exactly what the conformance tests call: tools ``echo`` and ``add``,
the resource ``test://greeting`` and the prompt ``greet``.
"""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer

GREETING = "hello from the sdk peer"

server: MCPServer = MCPServer("sdk-peer")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.resource("test://greeting")
def greeting() -> str:
    """A fixed greeting."""
    return GREETING


@server.prompt()
def greet(name: str) -> str:
    """Ask the model to greet someone."""
    return f"Please greet {name}."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["stdio", "http"])
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--stateless", action="store_true")
    parser.add_argument("--json", action="store_true", help="answer POSTs with JSON instead of SSE")
    args = parser.parse_args()
    if args.mode == "stdio":
        server.run("stdio")
        return
    import uvicorn

    app = server.streamable_http_app(stateless_http=args.stateless, json_response=args.json)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
