"""One real MCP session before a run: the target answers, and every call of the mix works.

A load run against a wrong path or a tool the server does not have would
otherwise end as a report of 100% errors (or, worse, of ``ok`` tool results
that say ``isError``); the user should get one line that names the problem.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pytest_mcpswarm.client import McpClient
from pytest_mcpswarm.errors import (
    MCPSwarmError,
    PreflightError,
    ProtocolError,
    TransportError,
    UsageError,
)
from pytest_mcpswarm.load.plan import RunPlan
from pytest_mcpswarm.transport import open_transport


def _label(method: str, params: Any) -> str:
    if isinstance(params, dict):
        name = params.get("name") or params.get("uri")
        if name:
            return f"{method} ({name})"
    return method


async def preflight(plan: RunPlan, *, wait_s: float = 10.0) -> dict[str, Any]:
    """Open one session and make each distinct call of the mix once; returns the server's info.

    Raises PreflightError naming the target, the failing step and the fix.
    """
    target = plan.target
    transport = open_transport(target, ws_newline=plan.ws_newline, headers=plan.headers or None)
    client = McpClient(transport, version=plan.protocol_version, timeout=wait_s)
    try:
        try:
            await client.open()
        except (TransportError, ProtocolError) as exc:
            problem = f"{target} did not complete the MCP {plan.protocol_version} handshake: {exc.problem}"
            raise PreflightError(problem, fix=exc.fix_text) from None
        except TimeoutError:
            problem = f"{target} accepted the connection but did not answer the handshake in {wait_s:g}s"
            fix = "check that this URL serves MCP (for erlmcp's WebSocket, add --ws-newline)"
            raise PreflightError(problem, fix=fix) from None
        seen: set[str] = set()
        for spec in plan.methods:
            label = _label(spec.method, spec.params)
            if label in seen:
                continue
            seen.add(label)
            try:
                result = await client.request(spec.method, spec.params)
            except UsageError as exc:  # a method this revision does not have
                raise PreflightError(f"cannot call {label}: {exc.problem}", fix=exc.fix_text) from None
            except (MCPSwarmError, TimeoutError) as exc:
                problem = exc.problem if isinstance(exc, MCPSwarmError) else "no answer in time"
                fix = "make the profile's methods, tools, resources and prompts match the server's"
                raise PreflightError(f"{target} refused {label}: {problem}", fix=fix) from None
            if spec.method == "tools/call" and isinstance(result, dict) and result.get("isError") is True:
                problem = f"{target} answered {label} with a tool error (isError): {str(result)[:200]}"
                fix = "set the tool name and arguments your server takes in a profile file (--profiles-file)"
                raise PreflightError(problem, fix=fix)
        return {"server_info": client.server_info, "version": client.version}
    finally:
        await asyncio.shield(client.close())
