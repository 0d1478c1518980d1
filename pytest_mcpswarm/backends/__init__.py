"""Backends by name; each module is imported only when chosen."""

from __future__ import annotations

from pytest_mcpswarm.backends.base import Backend
from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.options import Settings

__all__ = ["Backend", "get_backend"]


def get_backend(settings: Settings) -> Backend:
    """The backend ``settings.backend`` names, configured but not started."""
    if settings.backend == "local":
        from pytest_mcpswarm.backends.local import LocalBackend

        return LocalBackend(settings.server_replicas, settings.transport)
    if settings.backend == "external":
        from pytest_mcpswarm.backends.external import ExternalBackend

        assert settings.target is not None  # options.resolve guarantees it
        return ExternalBackend(settings.target)
    if settings.backend == "swarm":
        from pytest_mcpswarm.backends.swarm import SwarmBackend

        return SwarmBackend(settings)
    raise UsageError(f"unknown backend {settings.backend!r}", fix="use local, swarm or external")
