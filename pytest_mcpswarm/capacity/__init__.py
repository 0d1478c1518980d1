"""Capacity planning: find the ceiling, say whose limit it is, size the swarm.

- ``search``: the ceiling search as a pure state machine (no I/O);
- ``steady``: one step's steady-state figures from its per-second windows;
- ``ceiling``: the driver that runs the steps (``find_ceiling`` for tests and fixtures);
- ``procfs`` and ``sampler``: CPU, memory and network read over time while a run goes;
- ``docker_stats``: the same samples for containers (swarm replicas), from the Docker stats API;
- ``attribution``: the one-line verdict on what saturated first (pure);
- ``sizing``: per-core calibration and the replica/CPU arithmetic of ``mcpswarm plan``.
"""

from __future__ import annotations

from pytest_mcpswarm.capacity.ceiling import CeilingReport, find_ceiling, search_ceiling
from pytest_mcpswarm.capacity.search import CeilingSearch, GeneratorRule, StepResult

__all__ = [
    "CeilingReport",
    "CeilingSearch",
    "GeneratorRule",
    "StepResult",
    "find_ceiling",
    "search_ceiling",
]
