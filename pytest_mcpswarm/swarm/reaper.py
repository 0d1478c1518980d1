"""Removes a stack whose owner died without tearing it down (``kill -9``, a crash).

``python -m pytest_mcpswarm.swarm.reaper STACK PID``, started detached by the swarm
backend after it deployed: it waits for PID to exit, then removes STACK if it is still
labelled with that owner (``host:PID``) and not ``mcpswarm.keep=true``.  An orderly
teardown terminates the reaper first.  The next session's sweep is the second line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence

from pytest_mcpswarm.swarm import labels as L


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m pytest_mcpswarm.swarm.reaper STACK PID", file=sys.stderr)
        return 2
    name, pid = argv[0], int(argv[1])
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    while alive(pid):
        time.sleep(1.0)
    from pytest_mcpswarm.swarm import engine, stack

    with contextlib.suppress(Exception):  # nothing to report to: the owner is gone
        client = engine.connect()
        found = stack.stacks(client).get(name)
        owner = f"{L.this_owner().rpartition(':')[0]}:{pid}"
        if found and found.get(L.OWNER) == owner and found.get(L.KEEP) != "true":
            stack.remove(client, name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
