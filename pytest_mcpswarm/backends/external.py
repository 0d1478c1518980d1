"""The external backend: the user's server at ``--mcpswarm-target``, never started or stopped."""

from __future__ import annotations

from typing import Any


class ExternalBackend:
    name = "external"

    def __init__(self, target: str) -> None:
        self._target = target

    def start(self) -> None:
        """Nothing to start: the server is the user's."""

    def stop(self) -> None:
        """Nothing to stop: the server is the user's."""

    def detach(self) -> None:
        """Nothing to leave behind: the server is the user's."""

    @property
    def targets(self) -> tuple[str, ...]:
        return (self._target,)

    @property
    def metrics_endpoints(self) -> tuple[str, ...]:
        return ()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "targets": list(self.targets), "managed": False}
