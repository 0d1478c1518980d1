"""Streamable HTTP sessions of the handshake-era revisions: issue, look up, expire, end."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Session:
    version: str
    last_seen: float


class SessionTable:
    """Session id -> Session, with an idle TTL checked lazily on lookup and swept on demand."""

    def __init__(self, max_sessions: int, ttl_s: float) -> None:
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, version: str) -> str | None:
        """A fresh session id, or None when the table is full even after dropping expired sessions."""
        if len(self._sessions) >= self.max_sessions:
            self.sweep()
            if len(self._sessions) >= self.max_sessions:
                return None
        # 128 random bits as hex: visible ASCII, as the spec requires of session ids.
        sid = os.urandom(16).hex()
        self._sessions[sid] = Session(version, time.monotonic())
        return sid

    def touch(self, sid: str) -> Session | None:
        """The live session for ``sid`` (its idle clock restarted), or None if unknown or expired."""
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.ttl_s:
            del self._sessions[sid]
            return None
        session.last_seen = now
        return session

    def end(self, sid: str) -> bool:
        return self._sessions.pop(sid, None) is not None

    def sweep(self) -> int:
        """Drop every expired session; returns how many went."""
        cutoff = time.monotonic() - self.ttl_s
        dead = [sid for sid, s in self._sessions.items() if s.last_seen < cutoff]
        for sid in dead:
            del self._sessions[sid]
        return len(dead)
