"""Load profiles: who sends what, how fast, to where.  Built-ins plus user files.

A profile file (TOML or YAML) holds ``profiles.NAME`` tables whose keys are
the ``Profile`` field names; ``base = "normal"`` starts from a built-in (or a
profile defined earlier in the same file).  Values may be written the way a
person would: ``payload_bytes = "2KB"`` (K = 1024), ``duration_s = "2m"``,
``methods = {"tools/call" = 3, ping = 1}``::

    [profiles.spiky]
    base = "normal"
    rate = 200
    duration_s = "2m"
    stages = [{duration_s = "30s", clients = 10, rate = 100},
              {duration_s = "1m", clients = 50, rate = 100}]

Every value passes through one validator per field, whether it comes from a
file, from ``override`` (CLI strings) or from Python, and a bad one raises
``UsageError``: ``profile 'x': field 'rate' must be a positive number, got 'fast'``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

import yaml

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.shapes import ClosedModel, Ramp, Stage
from pytest_mcpswarm.protocol.versions import ALL_VERSIONS

#: Requests a profile may mix, and what each needs from the profile.
METHODS: Final = MappingProxyType(
    {
        "tools/call": "tools",
        "tools/list": None,
        "resources/list": None,
        "resources/read": "resources",
        "resources/templates/list": None,
        "prompts/list": None,
        "prompts/get": "prompts",
        "ping": None,
    }
)
EXECUTORS: Final = ("open", "closed")
#: The reference server's echo tool; the engine pads ``text`` to reach payload_bytes.
DEFAULT_TOOLS: Final = MappingProxyType({"echo": MappingProxyType({"text": ""})})
DEFAULT_RESOURCES: Final = ("mcpswarm://static/hello", "mcpswarm://static/lorem")
DEFAULT_PROMPTS: Final[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
    {"summarize": MappingProxyType({})}
)

_SIZE_RE: Final = re.compile(r"\s*([0-9]+)\s*(b|kb|kib|k|mb|mib|m)?\s*", re.IGNORECASE)
_SIZE_UNITS: Final = {
    None: 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1 << 20,
    "mb": 1 << 20,
    "mib": 1 << 20,
}
_DURATION_RE: Final = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h)?\s*", re.IGNORECASE)
_DURATION_UNITS: Final = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class _Bad(Exception):
    """A validator's complaint; the caller adds which profile and field."""


# -- validators: raw value -> normalised value, or _Bad("must be ..., got ...") -----


def _got(value: object) -> str:
    return f"got {value!r}"


def _number(value: object, *, positive: bool) -> float:
    what = "a positive number" if positive else "a number >= 0"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _Bad(f"must be {what}, {_got(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad(f"must be {what}, {_got(value)}")
    if value < 0 or (positive and value == 0):
        raise _Bad(f"must be {what}, {_got(value)}")
    return float(value)


def _count(value: object, *, minimum: int) -> int:
    what = f"a whole number >= {minimum}"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _Bad(f"must be {what}, {_got(value)}")
    return value


def _size(value: object) -> int:
    if isinstance(value, str):
        m = _SIZE_RE.fullmatch(value)
        if not m:
            raise _Bad(f"must be a size in bytes such as 512, '512B', '2KB' or '1MB', {_got(value)}")
        unit = m.group(2).lower() if m.group(2) else None
        return int(m.group(1)) * _SIZE_UNITS[unit]
    try:
        return _count(value, minimum=0)
    except _Bad:
        raise _Bad(f"must be a size in bytes such as 512, '512B', '2KB' or '1MB', {_got(value)}") from None


def _duration(value: object, *, positive: bool = True) -> float:
    if isinstance(value, str):
        m = _DURATION_RE.fullmatch(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            value = float(m.group(1)) * _DURATION_UNITS[unit]
    try:
        return _number(value, positive=positive)
    except _Bad:
        sign = "> 0" if positive else ">= 0"
        raise _Bad(
            f"must be a duration {sign} in seconds or like '500ms', '30s', '2m', '1h', {_got(value)}"
        ) from None


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (
        "true",
        "yes",
        "1",
        "on",
        "false",
        "no",
        "0",
        "off",
    ):
        return value.strip().lower() in ("true", "yes", "1", "on")
    raise _Bad(f"must be true or false, {_got(value)}")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"must be a string, {_got(value)}")
    return value


def _string_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Bad(f"must be a list of strings, {_got(value)}")


def _named_arguments(value: object) -> Mapping[str, Mapping[str, Any]]:
    """``{name: {argument: value}}``; a list or comma string of names means no arguments."""
    if isinstance(value, str | list | tuple):
        return {name: {} for name in _string_list(value)}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        return {str(k): dict(v) for k, v in value.items()}
    raise _Bad(f"must be a table of name = {{arguments}} or a list of names, {_got(value)}")


def _method_mix(value: object) -> Mapping[str, float]:
    """``{method: weight}``; ``"tools/call=3,ping=1"`` or a list of methods (equal weights) too."""
    if isinstance(value, str):
        mix: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            method, _, weight = part.partition("=")
            mix[method.strip()] = weight.strip() or 1
        value = mix
    elif isinstance(value, list | tuple):
        value = dict.fromkeys(value, 1)
    if not isinstance(value, Mapping) or not value:
        raise _Bad(f"must be a non-empty table of method = weight, {_got(value)}")
    out: dict[str, float] = {}
    for method, weight in value.items():
        if method not in METHODS:
            raise _Bad(f"has unknown method {method!r}; accepted: {', '.join(METHODS)}")
        try:
            out[method] = _number(weight, positive=True)
        except _Bad as exc:
            raise _Bad(f"weight of {method!r} {exc}") from None
    return out


def _headers(value: object) -> Mapping[str, str]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) and ":" in v for v in value):
        pairs = (v.split(":", 1) for v in value)
        return {k.strip(): v.strip() for k, v in pairs}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    raise _Bad(f"must be a table of header = value or a list of 'Name: value', {_got(value)}")


def _executor(value: object) -> str:
    if not isinstance(value, str) or value not in EXECUTORS:
        raise _Bad(f"must be one of {', '.join(EXECUTORS)}, {_got(value)}")
    return value


def _protocol_version(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value in ALL_VERSIONS):
        return value
    raise _Bad(f"must be one of {', '.join(ALL_VERSIONS)}, {_got(value)}")


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _stages(value: object) -> tuple[Stage, ...]:
    if not isinstance(value, list | tuple):
        raise _Bad(f"must be a list of {{duration_s, clients, rate}} tables, {_got(value)}")
    stages = []
    for n, raw in enumerate(value):
        if isinstance(raw, Stage):
            stages.append(raw)
            continue
        table = raw
        if isinstance(raw, list | tuple) and len(raw) == 3:
            table = dict(zip(("duration_s", "clients", "rate"), raw, strict=True))
        if not isinstance(table, Mapping) or set(table) != {"duration_s", "clients", "rate"}:
            raise _Bad(f"item {n} must be a table with exactly duration_s, clients, rate, {_got(raw)}")
        try:
            stages.append(
                Stage(
                    _duration(table["duration_s"], positive=False),
                    _count(table["clients"], minimum=0),
                    _number(table["rate"], positive=False),
                )
            )
        except _Bad as exc:
            raise _Bad(f"item {n}: {exc}") from None
    return tuple(stages)


_VALIDATORS: Final[dict[str, Callable[[object], object]]] = {
    "name": _text,
    "description": _text,
    "clients": lambda v: _count(v, minimum=1),
    "rate": lambda v: _number(v, positive=True),
    "payload_bytes": _size,
    "methods": _method_mix,
    "tools": _named_arguments,
    "resources": _string_list,
    "prompts": _named_arguments,
    "target": _optional_text,
    "ws_newline": _boolean,
    "headers": _headers,
    "protocol_version": _protocol_version,
    "executor": _executor,
    "duration_s": _duration,
    "stages": _stages,
    "churn_calls": lambda v: _count(v, minimum=0),
    "think_time_s": lambda v: _duration(v, positive=False),
}


@dataclass(frozen=True)
class Profile:
    """One load profile.  Construct with raw values: every field is validated and normalised.

    ``stages`` (a ramp) replaces the flat ``clients`` x ``rate`` shape; with
    stages, ``duration_s`` is their total and ``clients`` their peak.
    """

    name: str
    clients: int
    rate: float  # messages per second, per client
    payload_bytes: int
    methods: Mapping[str, float]  # method -> relative weight
    tools: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _thaw(DEFAULT_TOOLS))
    resources: tuple[str, ...] = DEFAULT_RESOURCES
    prompts: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _thaw(DEFAULT_PROMPTS))
    target: str | None = None
    ws_newline: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    protocol_version: str | None = None
    executor: Literal["open", "closed"] = "open"
    duration_s: float = 60.0
    stages: tuple[Stage, ...] = ()
    churn_calls: int = 0  # 0: keep connections open; N: reconnect every N calls
    think_time_s: float = 0.0  # closed executor: pause between answer and next request
    description: str = ""

    def __post_init__(self) -> None:
        label = self.name if isinstance(self.name, str) else repr(self.name)
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _validated(label, f.name, getattr(self, f.name)))
        if self.stages:
            try:
                ramp = Ramp(self.stages)
            except UsageError as exc:
                raise UsageError(f"profile {label!r}: field 'stages': {exc.problem}") from None
            object.__setattr__(self, "duration_s", ramp.duration_s)
            object.__setattr__(self, "clients", max(1, ramp.max_connections))
        for method in self.methods:
            needs = METHODS[method]
            if needs and not getattr(self, needs):
                raise UsageError(
                    f"profile {label!r}: field {needs!r} must not be empty when methods has {method!r}"
                )

    def method_mix(self) -> list[tuple[str, float]]:
        """``(method, probability)`` pairs summing to 1, in declaration order."""
        total = sum(self.methods.values())
        return [(m, w / total) for m, w in self.methods.items()]

    def ramp(self) -> Ramp:
        """The open-model schedule of this profile."""
        if self.stages:
            return Ramp(self.stages)
        return Ramp.constant(self.clients, self.rate, self.duration_s)

    def closed_model(self) -> ClosedModel:
        return ClosedModel(
            Ramp(self.stages) if self.stages else Ramp.constant(self.clients, 0.0, self.duration_s),
            self.think_time_s,
        )

    def scheduled_count(self) -> int | None:
        """Requests the open model schedules over the whole run (None for the closed model)."""
        return self.ramp().scheduled_count() if self.executor == "open" else None

    def to_dict(self) -> dict[str, Any]:
        """Plain, orjson-able fields; ``Profile(**d)`` rebuilds it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["stages"] = [
            {"duration_s": s.duration_s, "clients": s.connections, "rate": s.rate} for s in self.stages
        ]
        out["resources"] = list(self.resources)
        out["methods"] = dict(self.methods)
        out["tools"] = {k: dict(v) for k, v in self.tools.items()}
        out["prompts"] = {k: dict(v) for k, v in self.prompts.items()}
        out["headers"] = dict(self.headers)
        return out


def _thaw(value: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in value.items()}


def _validated(label: str, name: str, value: object) -> object:
    try:
        return _VALIDATORS[name](value)
    except _Bad as exc:
        raise UsageError(f"profile {label!r}: field {name!r} {exc}") from None


FIELDS: Final = tuple(f.name for f in dataclasses.fields(Profile))


def _builtin(name: str, clients: int, rate: float, payload: int, *methods: str) -> Profile:
    text = f"{clients} clients x {rate:g} msg/s, {payload} B payloads of {', '.join(methods)}"
    return Profile(name, clients, rate, payload, dict.fromkeys(methods, 1.0), description=text)


#: The five shipped profiles; each method of a mix has the same weight.
BUILTIN_PROFILES: Final[Mapping[str, Profile]] = MappingProxyType(
    {
        p.name: p
        for p in (
            _builtin("high-load", 50, 1000, 2048, "tools/call", "resources/read", "prompts/get"),
            _builtin("normal", 25, 100, 512, "tools/call", "resources/list", "resources/read"),
            _builtin("low-load", 10, 10, 256, "tools/list", "resources/list"),
            _builtin("slow-client", 5, 1, 1024, "resources/read"),
            _builtin("message-bomber", 10, 10_000, 128, "ping"),
        )
    }
)


def override(profile: Profile, **fields: object) -> Profile:
    """``profile`` with some fields replaced (CLI strings welcome); ``None`` values are ignored.

    Setting ``clients``, ``rate`` or ``duration_s`` drops the profile's
    stages: a flat override of a ramp would otherwise be silently ignored.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise UsageError(
            f"profile {profile.name!r}: unknown field {unknown[0]!r}; accepted: {', '.join(FIELDS)}"
        )
    changes = {k: v for k, v in fields.items() if v is not None}
    if profile.stages and "stages" not in changes and changes.keys() & {"clients", "rate", "duration_s"}:
        changes["stages"] = ()
    return dataclasses.replace(profile, **changes)  # type: ignore[arg-type]


def get_profile(name: str, user_profiles: Mapping[str, Profile] | None = None) -> Profile:
    """A user profile of that name, else a built-in one."""
    found = (user_profiles or {}).get(name) or BUILTIN_PROFILES.get(name)
    if found is None:
        known = sorted({*BUILTIN_PROFILES, *(user_profiles or {})})
        raise UsageError(f"unknown profile {name!r}; known profiles: {', '.join(known)}")
    return found


def parse_profiles(data: object, source: str = "<profiles>") -> dict[str, Profile]:
    """Profiles from an already-parsed document ``{"profiles": {NAME: {field: value}}}``."""
    if (
        not isinstance(data, Mapping)
        or set(data) != {"profiles"}
        or not isinstance(data["profiles"], Mapping)
    ):
        raise UsageError(f"{source}: expected only a 'profiles' table of [profiles.NAME] tables")
    out: dict[str, Profile] = {}
    for name, table in data["profiles"].items():
        if not isinstance(table, Mapping):
            raise UsageError(f"{source}: profile {name!r} must be a table of fields, got {table!r}")
        # ``name`` comes from the table's key, so it is not a field here.
        unknown = sorted(set(table) - (set(FIELDS) - {"name"}) - {"base"})
        if unknown:
            raise UsageError(
                f"{source}: profile {name!r}: unknown field {unknown[0]!r}; accepted: base, "
                + ", ".join(f for f in FIELDS if f != "name")
            )
        fields = {k: v for k, v in table.items() if k != "base"}
        if "base" in table:
            base = get_profile(str(table["base"]), out)
            out[name] = override(dataclasses.replace(base, name=str(name)), **fields)
        else:
            missing = [f for f in ("clients", "rate", "payload_bytes", "methods") if f not in fields]
            if missing:
                raise UsageError(
                    f"{source}: profile {name!r}: field {missing[0]!r} is required (or set base)"
                )
            out[name] = Profile(name=str(name), **fields)
    return out


def load_profiles(path: str | Path) -> dict[str, Profile]:
    """Read a ``.toml`` or ``.yaml``/``.yml`` profile file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise UsageError(f"profile file {str(path)!r} must end in .toml, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read profile file {str(path)!r}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"profile file {str(path)!r} is not valid {suffix[1:].upper()}: {exc}") from None
    return parse_profiles(data, str(path))
