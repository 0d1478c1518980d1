"""pytest11 entry point: registers the ``mcpswarm`` option group and markers."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("mcpswarm", "MCP load testing (pytest-mcpswarm)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mcpswarm_sla(expr): SLA the scenario result must meet, e.g. 'p99<50ms, error_rate<0.1%'"
    )
