"""The labels every resource of a stack carries, and how to tell whose a stack is.

``mcpswarm.stack`` names the stack, ``mcpswarm.owner`` is ``host:pid`` of the process that
deployed it (a dead pid on this host means the stack was orphaned), ``mcpswarm.keep``
marks a stack that sweeps must leave alone.  The compose file reads them from the
environment variables below, so ``docker stack deploy`` applies them to services,
containers, networks, volumes and configs alike.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Final

STACK: Final = "mcpswarm.stack"
OWNER: Final = "mcpswarm.owner"
KEEP: Final = "mcpswarm.keep"

DEFAULT_STACK: Final = "mcpswarm"


def this_owner() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class StackLabels:
    stack: str = DEFAULT_STACK
    owner: str = ""
    keep: bool = False

    def env(self) -> dict[str, str]:
        """The variables docker-compose.swarm.yml interpolates into its labels."""
        return {
            "MCPSWARM_STACK": self.stack,
            "MCPSWARM_OWNER": self.owner or this_owner(),
            "MCPSWARM_KEEP": "true" if self.keep else "false",
        }

    def filters(self) -> dict[str, list[str]]:
        """A docker API ``filters`` that selects this stack's resources."""
        return {"label": [f"{STACK}={self.stack}"]}


def owner_alive(owner: str) -> bool | None:
    """Whether the owning process lives: ``None`` when it runs on another host or is unparseable."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
