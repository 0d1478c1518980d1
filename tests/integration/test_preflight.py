"""A run starts only after one real session proved the target and every call of the mix work."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_mcpswarm.errors import PreflightError
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.load.preflight import preflight
from pytest_mcpswarm.load.requests import MethodSpec
from pytest_mcpswarm.load.shapes import Stage
from pytest_mcpswarm.server.launch import ServerProcess


def _plan(target: str, *methods: MethodSpec, version: str = "2025-11-25") -> RunPlan:
    echo = MethodSpec("tools/call", {"name": "echo", "arguments": {"text": "x"}}, 1.0)
    return RunPlan(
        target=target, methods=methods or (echo,), stages=(Stage(1.0, 1, 1.0),), protocol_version=version
    )


async def test_a_healthy_target_passes_and_names_the_server(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server()
    info = await preflight(_plan(server.ws_url))
    assert info["version"] == "2025-11-25"
    assert info["server_info"]["name"]


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [("/mcp", "handshake"), ("/nowhere", "handshake")],
)
async def test_a_wrong_websocket_path_is_one_clear_error(
    reference_server: Callable[..., ServerProcess], suffix: str, expected: str
) -> None:
    server = reference_server()
    with pytest.raises(PreflightError, match=expected):
        await preflight(_plan(f"ws://127.0.0.1:{server.port}{suffix}"))


async def test_a_dead_target_is_one_clear_error() -> None:
    with pytest.raises(PreflightError, match="refused"):
        await preflight(_plan("ws://127.0.0.1:1/mcp/ws"))


async def test_a_tool_the_server_lacks_is_caught_before_the_run(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server()
    missing = MethodSpec("tools/call", {"name": "no_such_tool", "arguments": {}}, 1.0)
    with pytest.raises(PreflightError, match="no_such_tool"):
        await preflight(_plan(server.url, missing))


async def test_a_method_the_revision_removed_names_the_fix(
    reference_server: Callable[..., ServerProcess],
) -> None:
    server = reference_server()
    with pytest.raises(PreflightError, match="handshake revision"):
        await preflight(_plan(server.url, MethodSpec("ping", None, 1.0), version="2026-07-28"))
