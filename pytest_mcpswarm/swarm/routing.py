"""Wait until the load balancer routes to every server replica.

A service converges before Traefik has picked up all of its tasks: Traefik polls the
swarm (``refreshSeconds``) and adds a backend only once its own health check passed.
Every ``tools/call`` reply names its replica, so asking with the stateless revision
(each request stands alone and is balanced on its own) shows which replicas are routed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

from pytest_mcpswarm.errors import DeployError, MCPSwarmError


async def replica_of(url: str, *, version: str | None = None, ws_newline: bool = False) -> str:
    """The replica that answers one ``tools/call echo`` at ``url`` (one fresh connection)."""
    from pytest_mcpswarm.client import McpClient
    from pytest_mcpswarm.protocol import versions
    from pytest_mcpswarm.transport import open_transport

    transport = open_transport(url, ws_newline=ws_newline)
    async with McpClient(transport, version=version or versions.LATEST_HANDSHAKE) as client:
        result = await client.call_tool("echo", {"text": "which replica?"}, timeout=10)
        if result.is_error or not isinstance(result.structured, dict) or "replica" not in result.structured:
            raise DeployError(f"{url} answered tools/call echo without naming its replica: {result}")
        return str(result.structured["replica"])


async def wait_routed(
    url: str, expected: Collection[str], *, within_s: float = 60.0, version: str | None = None
) -> set[str]:
    """Until calls to ``url`` have reached every replica in ``expected``.

    Each call opens a fresh connection, so WebSocket URLs are balanced per call too; HTTP
    URLs default to the stateless revision (``version`` overrides).
    """
    from pytest_mcpswarm.protocol import versions

    if version is None and url.startswith(("http://", "https://")):
        version = versions.LATEST_STATELESS
    seen: set[str] = set()
    last_error = ""
    deadline = time.monotonic() + within_s
    while not set(expected) <= seen:
        if time.monotonic() > deadline:
            missing = ", ".join(sorted(set(expected) - seen))
            raise DeployError(
                f"{url} did not route to {missing} within {within_s:.0f} s (seen: {', '.join(sorted(seen))})"
                + (f"; last error: {last_error}" if last_error else "")
            )
        try:
            seen.add(await replica_of(url, version=version))
        except (MCPSwarmError, OSError, TimeoutError) as exc:
            last_error = str(exc)
            await asyncio.sleep(1.0)
    return seen
