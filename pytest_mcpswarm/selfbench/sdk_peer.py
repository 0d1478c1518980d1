"""The official ``mcp`` SDK server that selfbench compares us with.

Its configuration is fixed here, not taken from options, so that nobody can
tune the comparison away: the SDK's own high-level ``MCPServer`` with the
same ``echo`` tool as ours, stateless and answering plain JSON, under
uvicorn with its fastest stack (uvloop + httptools), one worker, quiet logs.

Run as ``python -m pytest_mcpswarm.selfbench.sdk_peer --port N``.  The
harness checks that ``mcp`` and ``uvicorn`` are installed before it starts this.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette

HOST = "127.0.0.1"


def build_app() -> Starlette:
    """The Starlette app of an ``MCPServer`` exposing ``echo``."""
    server: MCPServer[object] = MCPServer("mcp-sdk-peer", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Return ``text`` unchanged."""
        return text

    return server.streamable_http_app(stateless_http=True, json_response=True, host=HOST)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sdk_peer", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = build_app()
    print(f"sdk_peer: listening on http://{HOST}:{args.port}/mcp", flush=True)
    uvicorn.run(
        app, host=HOST, port=args.port, loop="uvloop", http="httptools", workers=1, log_level="warning"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
