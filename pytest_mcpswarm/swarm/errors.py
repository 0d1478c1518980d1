"""Errors of the swarm lifecycle: each says what is wrong and what to do."""

from __future__ import annotations

from pytest_mcpswarm.errors import MCPSwarmError


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
