"""pytest-mcpswarm: benchmark MCP servers from pytest, on loopback or a Docker Swarm."""

from pytest_mcpswarm.errors import MCPSwarmError, ProtocolError, TransportError, UsageError

__all__ = ["MCPSwarmError", "ProtocolError", "TransportError", "UsageError", "__version__"]
__version__ = "0.1.0"
