"""Process hygiene shared by everything selfbench starts: nothing may outlive the harness."""

from __future__ import annotations

import contextlib
import os
import signal

from pytest_mcpswarm import procs


def die_with_parent() -> None:
    """``preexec_fn``: the kernel KILLs the child when the harness dies, even by SIGKILL (Linux only)."""
    procs.die_with_parent(signal.SIGKILL)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
