"""What happened to every scheduled request: the counters model.

Every request the load shape schedules ends in exactly one of four outcomes:

- ``ok``: answered with a result;
- ``errors``: answered with a JSON-RPC error, or failed on the transport or
  protocol level; ``errors_by_type`` says which, keyed ``family:detail``
  (``jsonrpc:-32601``, ``transport:closed``, ``protocol:malformed``);
- ``timeouts``: sent, but no answer in time;
- ``not_sent``: never left the client (connection not open, client too slow
  to keep up with the schedule, run stopped); ``not_sent_by_reason`` says why.

So ``scheduled == ok + errors + timeouts + not_sent``; a report whose numbers
do not add up is a bug in the load engine, and ``accounting_problems`` says
which equation broke.  ``sent`` is counted separately (a request can fail on
the transport after it was written), so it is checked only as an upper bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pytest_mcpswarm.stats.histogram import LatencyHistogram

_COUNTERS = ("scheduled", "sent", "ok", "errors", "timeouts", "not_sent")


def error_key(family: str, detail: str | int) -> str:
    """``error_key("jsonrpc", -32601) == "jsonrpc:-32601"``."""
    key = f"{family}:{detail}"
    _check_key(key)
    return key


def _check_key(key: str) -> None:
    family, sep, detail = key.partition(":")
    if not (sep and family and detail):
        raise ValueError(f"error key must look like 'family:detail' (e.g. 'transport:closed'), got {key!r}")


def _add_into(target: dict[str, int], source: dict[str, int]) -> None:
    for key, n in source.items():
        target[key] = target.get(key, 0) + n


@dataclass(slots=True)
class Outcomes:
    """Counters of one method (or of all methods summed)."""

    scheduled: int = 0
    sent: int = 0
    ok: int = 0
    errors: int = 0
    timeouts: int = 0
    not_sent: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    not_sent_by_reason: dict[str, int] = field(default_factory=dict)

    def add_error(self, key: str, n: int = 1) -> None:
        """Count ``n`` errors of type ``key`` (``family:detail``)."""
        _check_key(key)
        self.errors += n
        self.errors_by_type[key] = self.errors_by_type.get(key, 0) + n

    def add_not_sent(self, reason: str, n: int = 1) -> None:
        self.not_sent += n
        self.not_sent_by_reason[reason] = self.not_sent_by_reason.get(reason, 0) + n

    def add(self, other: Outcomes) -> None:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        _add_into(self.errors_by_type, other.errors_by_type)
        _add_into(self.not_sent_by_reason, other.not_sent_by_reason)

    @classmethod
    def total(cls, parts: Iterable[Outcomes]) -> Outcomes:
        out = cls()
        for part in parts:
            out.add(part)
        return out

    @property
    def finished(self) -> int:
        return self.ok + self.errors + self.timeouts + self.not_sent

    def accounting_problems(self) -> list[str]:
        """Every broken accounting equation, as a sentence; empty when all hold."""
        problems: list[str] = []
        if self.scheduled != self.finished:
            problems.append(
                f"scheduled ({self.scheduled}) != ok + errors + timeouts + not_sent "
                f"({self.ok} + {self.errors} + {self.timeouts} + {self.not_sent} = {self.finished})"
            )
        if sum(self.errors_by_type.values()) != self.errors:
            problems.append(
                f"errors_by_type sums to {sum(self.errors_by_type.values())}, errors is {self.errors}"
            )
        if sum(self.not_sent_by_reason.values()) != self.not_sent:
            by_reason = sum(self.not_sent_by_reason.values())
            problems.append(f"not_sent_by_reason sums to {by_reason}, not_sent is {self.not_sent}")
        if self.sent > self.scheduled - self.not_sent:
            problems.append(f"sent ({self.sent}) > scheduled - not_sent ({self.scheduled - self.not_sent})")
        negative = [name for name in _COUNTERS if getattr(self, name) < 0]
        if negative:
            problems.append(f"negative counters: {', '.join(negative)}")
        return problems

    def accounting_ok(self) -> bool:
        """True when ``scheduled == ok + errors + timeouts + not_sent`` and the breakdowns add up."""
        return not self.accounting_problems()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _COUNTERS}
        out["errors_by_type"] = dict(self.errors_by_type)
        out["not_sent_by_reason"] = dict(self.not_sent_by_reason)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcomes:
        counters = {name: int(data[name]) for name in _COUNTERS}
        return cls(
            **counters,
            errors_by_type={str(k): int(v) for k, v in data["errors_by_type"].items()},
            not_sent_by_reason={str(k): int(v) for k, v in data["not_sent_by_reason"].items()},
        )


@dataclass(slots=True, eq=True)
class MethodStats:
    """Outcomes and latency of one MCP method (``tools/call``, ``ping``, ...)."""

    outcomes: Outcomes = field(default_factory=Outcomes)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def add(self, other: MethodStats) -> None:
        self.outcomes.add(other.outcomes)
        self.latency.add(other.latency)

    def to_dict(self) -> dict[str, Any]:
        return {"outcomes": self.outcomes.to_dict(), "latency": self.latency.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MethodStats:
        return cls(Outcomes.from_dict(data["outcomes"]), LatencyHistogram.from_dict(data["latency"]))
