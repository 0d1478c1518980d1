"""Every user-facing error, as a type.

Each class is one entry of the error catalogue: its docstring is the cause a
user sees in docs/TROUBLESHOOTING.md and ``fix`` is the default remedy.  The
message always says what was wrong *and* what to do, so the CLI and the
pytest plugin can print ``str(exc)`` on one line instead of a traceback.
"""

from __future__ import annotations

from typing import ClassVar


class MCPSwarmError(Exception):
    """Base of every error this package raises on purpose."""

    fix: ClassVar[str] = ""

    def __init__(self, problem: str, *, fix: str | None = None) -> None:
        self.problem = problem
        self.fix_text = self.fix if fix is None else fix
        super().__init__(problem)

    def __str__(self) -> str:
        return f"{self.problem} — {self.fix_text}" if self.fix_text else self.problem


class UsageError(MCPSwarmError):
    """An option, profile field or SLA expression has a value that is not accepted."""

    fix = "see `mcpswarm --help` or docs/RUNNING_BENCHMARKS.md for the accepted form"


class ProtocolError(MCPSwarmError):
    """The peer sent bytes that are not valid JSON-RPC 2.0 / MCP.

    ``kind`` is the suffix of the ``protocol:<kind>`` error key in reports:
    ``malformed``, ``unmatched_id`` or ``version``.
    """

    fix = "check that the target is an MCP server and speaks a supported protocol revision"

    def __init__(self, problem: str, *, kind: str = "malformed", fix: str | None = None) -> None:
        self.kind = kind
        super().__init__(problem, fix=fix)


class TransportError(MCPSwarmError):
    """The connection to the MCP server failed or broke.

    ``kind`` is the suffix of the ``transport:<kind>`` error key in reports:
    ``refused``, ``reset``, ``closed``, ``tls``, ``timeout``, ``http_<status>``, or
    ``protocol`` when the bytes break the transport's own rules (a binary WebSocket
    frame, a malformed HTTP reply).
    """

    fix = "check that the server is running and that the URL's scheme, host, port and path are right"

    def __init__(self, problem: str, *, kind: str = "closed", fix: str | None = None) -> None:
        self.kind = kind
        super().__init__(problem, fix=fix)


class McpCallError(MCPSwarmError):
    """The server answered a request with a JSON-RPC error.

    ``code``, ``message`` and ``data`` are the server's error object; ``method``
    is what we asked for.  The report key is ``jsonrpc:<code>``.
    """

    fix = "the server refused the call: check the method name, its arguments and the server's log"

    def __init__(self, method: str, code: int, message: str, data: object = None) -> None:
        self.method = method
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{method} failed with JSON-RPC error {code}: {message}")


class TargetError(UsageError):
    """A target URL is malformed or uses a scheme no transport serves."""

    fix = (
        "use ws://HOST:PORT/PATH, wss://..., http://HOST:PORT/mcp, https://..., "
        "tcp://HOST:PORT or stdio:COMMAND"
    )


class ServerStartError(MCPSwarmError):
    """A server process this tool started did not come up."""

    fix = "read the server output shown above; if the port is in use, pick another with --port"


class PortInUseError(ServerStartError):
    """The TCP port asked for is already bound by another process."""

    fix = "stop the process holding the port (`ss -ltnp`) or choose another port with --port"


class PreflightError(MCPSwarmError):
    """Before a run, the target did not complete an MCP session, or refused a call of the profile.

    Checked once up front so that a wrong URL, a dead server or a tool the
    server does not have is one clear line, not a report in which every
    request failed.
    """

    fix = "check the target URL (scheme, host, port, path) and that the server is running"


# Load generation


class WorkerError(MCPSwarmError):
    """A generator process failed or exited without reporting its measurements."""

    fix = "rerun with MCPSWARM_DEBUG=1 to see the worker's output"


# Docker and the swarm


class EngineUnavailableError(MCPSwarmError):
    """The Docker engine cannot be reached."""

    fix = "start dockerd (apt-get install docker.io; dockerd &) and check `docker info`"


class SwarmInactiveError(MCPSwarmError):
    """The engine is not part of a swarm."""

    fix = "run `mcpswarm swarm init`"


class ImageBuildError(MCPSwarmError):
    """An image of the stack could not be built."""

    fix = "rerun with MCPSWARM_DEBUG=1 and read the build output above"


class DeployError(MCPSwarmError):
    """``docker stack deploy`` failed or the stack did not converge in time."""

    fix = "see `mcpswarm swarm status` and `docker service ps --no-trunc SERVICE`"


class RunControlError(MCPSwarmError):
    """A swarm run could not start or a client replica did not report its measurements."""

    fix = "see `docker service ps --no-trunc SERVICE` and `docker service logs SERVICE`"


# Self-benchmarks and reports


class DriverError(MCPSwarmError):
    """A Python load driver failed."""

    fix = "rerun with MCPSWARM_DEBUG=1, or run the printed driver command by hand"


class WrkError(MCPSwarmError):
    """wrk failed or printed something this parser does not understand."""

    fix = "run the printed wrk command by hand to see what it says"


class BrowserError(MCPSwarmError):
    """Headless Chromium is missing, failed, or produced nothing."""

    fix = "install it (Debian: apt-get install chromium) or leave out --screenshot"


def catalogue() -> list[type[MCPSwarmError]]:
    """The error catalogue: every class above, base first, as docs/TROUBLESHOOTING.md lists them."""
    seen: list[type[MCPSwarmError]] = []
    stack: list[type[MCPSwarmError]] = [MCPSwarmError]
    while stack:
        cls = stack.pop(0)
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return seen
