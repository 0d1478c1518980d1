"""Child processes that cannot outlive us: the one place that knows how.

Linux's ``PR_SET_PDEATHSIG`` makes the kernel signal a child when its parent
dies, even by SIGKILL, so no server, worker or stdio peer we start is ever
orphaned.  Elsewhere these calls do nothing (best effort).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Final

_PR_SET_PDEATHSIG: Final = 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None
    return fn


def die_with_parent(sig: int = signal.SIGTERM, *, parent: int | None = None) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies.

    With ``parent`` (the pid that started us), exit at once if it is already
    gone: it may have died before the request took effect.
    """
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def preexec_die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` doing ``die_with_parent`` in a child about to exec.

    The libc lookup happens here, before fork: a forked child of a threaded
    program must not call into the dynamic loader.  Note that the kernel
    signals the child when the *thread* that forked it exits.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec
