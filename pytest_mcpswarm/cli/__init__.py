"""The ``mcpswarm`` command: a thin shell over the library.

Each subcommand lives in its own module exposing ``register(subparsers)``;
the module's ``run(args)`` is stored as the parser default ``func``.
Errors we raise on purpose print as one line; nothing else prints a
traceback at the user unless ``MCPSWARM_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from pytest_mcpswarm import __version__
from pytest_mcpswarm.errors import MCPSwarmError

#: Subcommand modules, in --help order.  Imported lazily so `mcpswarm serve`
#: does not pay for docker, numpy or rich.
SUBCOMMANDS = ("serve", "run", "bench", "selfbench", "report", "swarm", "ceiling", "plan")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line that names the fix, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} — see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    # Subparsers inherit the class (add_subparsers defaults parser_class to type(self)).
    parser = _Parser(prog="mcpswarm", description="Benchmark MCP servers.")
    parser.add_argument("--version", action="version", version=f"mcpswarm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"pytest_mcpswarm.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except MCPSwarmError as exc:
        if os.environ.get("MCPSWARM_DEBUG"):
            raise
        print(f"mcpswarm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mcpswarm {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
