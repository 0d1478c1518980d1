"""Pre-serialized request templates: the bytes a load connection sends.

Serializing a request per send would cost more than the whole rest of the
hot path, so each (method, params) pair is encoded once with the id as the
last member; a send is then one bytes ``%`` format.  Padding brings the
serialized request to the profile's payload size: a tool argument for
``tools/call``, a ``params._meta`` key for methods that take no arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from pytest_mcpswarm.errors import UsageError

#: ``_meta`` key that carries padding; servers ignore unknown ``_meta`` keys.
PAD_META_KEY: Final = "dev.mcpswarm/pad"
#: The id width padding is computed for; a request's real size differs from
#: the target only by how many digits its id has beyond this.
_NOMINAL_ID = 100_000

ParamsHook = Callable[[Mapping[str, Any] | None], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    """One request shape.  ``render(id)`` gives its wire bytes."""

    method: str
    #: ``Mcp-Name`` value for 2026-07-28 HTTP (tool / prompt name or resource uri).
    name: str | None
    prefix: bytes
    size: int

    def render(self, request_id: int) -> bytes:
        return b"%s%d}" % (self.prefix, request_id)


def _prefix(method: str, params: Mapping[str, Any] | None) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        body["params"] = params
    # Drop the closing brace: the id goes last, appended per send.
    return orjson.dumps(body)[:-1] + b',"id":'


def _with_pad(method: str, params: dict[str, Any] | None, pad_arg: str | None, pad: int) -> dict[str, Any]:
    wire = dict(params or {})
    if method == "tools/call" and pad_arg is not None:
        arguments = dict(wire.get("arguments") or {})
        arguments[pad_arg] = str(arguments.get(pad_arg, "")) + "x" * pad
        wire["arguments"] = arguments
    else:
        meta = dict(wire.get("_meta") or {})
        meta[PAD_META_KEY] = "x" * pad
        wire["_meta"] = meta
    return wire


def build_template(
    method: str,
    params: Mapping[str, Any] | None,
    *,
    payload_bytes: int = 0,
    pad_arg: str | None = None,
    envelope: ParamsHook | None = None,
) -> RequestTemplate:
    """Encode one request shape, padded up to ``payload_bytes`` when that is larger than its natural size.

    ``envelope`` adds what the protocol revision needs on every request (the
    2026-07-28 ``_meta`` envelope); it is applied before measuring, so the
    padding accounts for it.  ``pad_arg`` names the ``tools/call`` argument
    that absorbs the padding (the tool must accept and ignore or echo it).
    """
    base = dict(params) if params is not None else None
    wire = envelope(base) if envelope else base
    natural = len(_prefix(method, wire)) + len(str(_NOMINAL_ID)) + 1
    if payload_bytes > natural:
        # The pad member itself costs bytes ("key":"" plus a comma or a new object); measure them.
        probe = _with_pad(method, wire, pad_arg, 0)
        overhead = len(_prefix(method, probe)) + len(str(_NOMINAL_ID)) + 1 - natural
        wire = _with_pad(method, wire, pad_arg, max(0, payload_bytes - natural - overhead))
    prefix = _prefix(method, wire)
    name_key = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}.get(method)
    name = str(wire[name_key]) if wire and name_key and name_key in wire else None
    return RequestTemplate(method, name, prefix, len(prefix) + len(str(_NOMINAL_ID)) + 1)


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One entry of a profile's method mix."""

    method: str
    params: Mapping[str, Any] | None
    weight: float
    pad_arg: str | None = None


def weighted_cycle(weights: list[float], length: int = 1000) -> list[int]:
    """A deterministic sequence of indices whose frequencies follow ``weights``.

    Picking by walking a precomputed cycle costs one index per send instead of
    a random draw, and makes the mix exact over every ``length`` requests
    (smooth weighted round-robin, as nginx balances upstreams).
    """
    if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise UsageError(f"method weights {weights!r} are invalid", fix="give at least one positive weight")
    total = sum(weights)
    current = [0.0] * len(weights)
    order: list[int] = []
    for _ in range(length):
        for i, w in enumerate(weights):
            current[i] += w
        best = max(range(len(weights)), key=current.__getitem__)
        current[best] -= total
        order.append(best)
    return order
