"""What every backend provides: bring a stack up, say where to send load, take it down.

A backend is chosen by name (``--mcpswarm-backend``) and built from the
frozen ``Settings``; the scenario code only ever sees ``targets`` and
``metrics_endpoints``, never which backend it runs on.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Backend(Protocol):
    """A stack of MCP servers under test."""

    #: ``local``, ``swarm`` or ``external``: what the report's ``backend`` says.
    name: str

    def start(self) -> None:
        """Bring the stack up and wait until it accepts connections; clean up after itself on failure."""

    def stop(self) -> None:
        """Take down whatever ``start`` brought up; safe to call twice, or after a failed start."""

    def detach(self) -> None:
        """Leave the stack running after this process exits (``--mcpswarm-keep-stack``)."""

    @property
    def targets(self) -> tuple[str, ...]:
        """URLs load generators connect to; clients are spread over them round-robin."""

    @property
    def metrics_endpoints(self) -> tuple[str, ...]:
        """Prometheus ``/metrics`` URLs of the servers (empty when unknown)."""

    def describe(self) -> dict[str, Any]:
        """Plain facts for the report's environment: backend, targets, versions."""
