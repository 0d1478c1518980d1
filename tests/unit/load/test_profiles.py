"""Profiles: built-ins, overrides, TOML/YAML files and every validation message."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.profiles import (
    BUILTIN_PROFILES,
    FIELDS,
    Profile,
    get_profile,
    load_profiles,
    override,
    parse_profiles,
)
from pytest_mcpswarm.load.shapes import Stage


@pytest.mark.parametrize(
    ("name", "clients", "rate", "payload", "methods"),
    [
        ("high-load", 50, 1000.0, 2048, ["tools/call", "resources/read", "prompts/get"]),
        ("normal", 25, 100.0, 512, ["tools/call", "resources/list", "resources/read"]),
        ("low-load", 10, 10.0, 256, ["tools/list", "resources/list"]),
        ("slow-client", 5, 1.0, 1024, ["resources/read"]),
        ("message-bomber", 10, 10_000.0, 128, ["ping"]),
    ],
)
def test_builtins(name: str, clients: int, rate: float, payload: int, methods: list[str]) -> None:
    p = BUILTIN_PROFILES[name]
    assert (p.name, p.clients, p.rate, p.payload_bytes, list(p.methods)) == (
        name,
        clients,
        rate,
        payload,
        methods,
    )
    assert set(p.methods.values()) == {1.0}
    assert p.executor == "open" and p.duration_s == 60.0
    assert p.tools == {"echo": {"text": ""}}
    assert p.scheduled_count() == clients * int(rate) * 60
    assert get_profile(name) is p


def test_profile_to_dict_is_json_and_rebuilds() -> None:
    p = override(
        BUILTIN_PROFILES["normal"], stages=[("10s", 5, 20), {"duration_s": 5, "clients": 0, "rate": 1}]
    )
    data = orjson.loads(orjson.dumps(p.to_dict()))
    assert Profile(**data) == p
    assert set(data) == set(FIELDS)


def test_method_mix_is_normalised() -> None:
    p = override(BUILTIN_PROFILES["normal"], methods="tools/call=3, ping")
    assert p.methods == {"tools/call": 3.0, "ping": 1.0}
    assert p.method_mix() == [("tools/call", 0.75), ("ping", 0.25)]


def test_override_coerces_cli_strings_and_ignores_none() -> None:
    base = BUILTIN_PROFILES["normal"]
    p = override(
        base, clients="7", rate="2.5", payload_bytes="2KB", duration_s="2m", ws_newline="yes",
        headers=["Authorization: Bearer x"], resources="mcpswarm://a, mcpswarm://b", target=None,
        protocol_version="2025-06-18", executor="closed", think_time_s="250ms", churn_calls="10",
    )  # fmt: skip
    assert (p.clients, p.rate, p.payload_bytes, p.duration_s) == (7, 2.5, 2048, 120.0)
    assert p.ws_newline is True and p.headers == {"Authorization": "Bearer x"}
    assert p.resources == ("mcpswarm://a", "mcpswarm://b")
    assert p.target is None and p.protocol_version == "2025-06-18"
    assert (p.executor, p.think_time_s, p.churn_calls) == ("closed", 0.25, 10)
    assert p.scheduled_count() is None
    assert p.closed_model().think_time_s == 0.25
    assert base.clients == 25  # frozen original untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.rate = 3  # type: ignore[misc]


def test_stages_define_duration_and_peak_clients_and_flat_override_drops_them() -> None:
    p = override(
        BUILTIN_PROFILES["normal"], stages=[{"duration_s": "30s", "clients": 10, "rate": 5}, ("1m", 40, 5)]
    )
    assert p.stages == (Stage(30.0, 10, 5.0), Stage(60.0, 40, 5.0))
    assert (p.duration_s, p.clients) == (90.0, 40)  # the peak target
    assert p.ramp().scheduled_count() == p.scheduled_count()
    assert p.closed_model().ramp.max_connections == 40
    flat = override(p, rate=7)
    assert flat.stages == () and flat.ramp().scheduled_count() == 40 * 7 * 90
    kept = override(p, payload_bytes=10)
    assert kept.stages == p.stages


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate": "fast"}, "profile 'normal': field 'rate' must be a positive number, got 'fast'"),
        ({"rate": 0}, "field 'rate' must be a positive number, got 0"),
        ({"rate": True}, "field 'rate' must be a positive number, got True"),
        ({"clients": 0}, "field 'clients' must be a whole number >= 1, got 0"),
        ({"clients": 2.5}, "field 'clients' must be a whole number >= 1, got 2.5"),
        ({"payload_bytes": "2 parsecs"}, "field 'payload_bytes' must be a size in bytes such as 512"),
        ({"payload_bytes": -1}, "field 'payload_bytes' must be a size in bytes"),
        ({"duration_s": "soon"}, "field 'duration_s' must be a duration > 0 in seconds or like '500ms'"),
        ({"duration_s": 0}, "field 'duration_s' must be a duration > 0"),
        (
            {"methods": {"tools/delete": 1}},
            "field 'methods' has unknown method 'tools/delete'; accepted: tools/call",
        ),
        ({"methods": {"ping": "x"}}, "field 'methods' weight of 'ping' must be a positive number, got 'x'"),
        ({"methods": {}}, "field 'methods' must be a non-empty table of method = weight"),
        ({"tools": 5}, "field 'tools' must be a table of name = {arguments} or a list of names"),
        ({"resources": [1]}, "field 'resources' must be a list of strings, got [1]"),
        ({"headers": {"X": 1}}, "field 'headers' must be a table of header = value"),
        ({"ws_newline": "maybe"}, "field 'ws_newline' must be true or false, got 'maybe'"),
        ({"executor": "ramp"}, "field 'executor' must be one of open, closed, got 'ramp'"),
        ({"protocol_version": "1999-01-01"}, "field 'protocol_version' must be one of 2024-11-05"),
        ({"target": 8080}, "field 'target' must be a string, got 8080"),
        ({"churn_calls": -1}, "field 'churn_calls' must be a whole number >= 0"),
        ({"think_time_s": "-1s"}, "field 'think_time_s' must be a duration >= 0"),
        ({"stages": "up"}, "field 'stages' must be a list of {duration_s, clients, rate} tables"),
        ({"stages": [{"duration_s": 1}]}, "field 'stages' item 0 must be a table with exactly duration_s"),
        ({"stages": [(1, -2, 1)]}, "field 'stages' item 0: must be a whole number >= 0, got -2"),
        ({"stages": [(0, 2, 1)]}, "field 'stages': a load shape must last longer than 0 s"),
        (
            {"resources": [], "methods": ["resources/read"]},
            "field 'resources' must not be empty when methods",
        ),
        ({"tools": {}}, "field 'tools' must not be empty when methods has 'tools/call'"),
        ({"colour": "red"}, "unknown field 'colour'; accepted: name, clients, rate"),
    ],
)
def test_bad_values_name_profile_field_and_accepted_form(fields: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as info:
        override(BUILTIN_PROFILES["normal"], **fields)
    assert message in str(info.value)


def test_get_profile_prefers_user_profiles_and_lists_known_names() -> None:
    mine = dataclasses.replace(BUILTIN_PROFILES["normal"], rate=1)
    assert get_profile("normal", {"normal": mine}) is mine
    with pytest.raises(UsageError, match="unknown profile 'nope'; known profiles: high-load, low-load"):
        get_profile("nope")


TOML = """
[profiles.spiky]
base = "normal"
rate = 200
duration_s = "2m"
methods = { "tools/call" = 3, ping = 1 }
tools = { echo = { text = "hi" } }
headers = { Authorization = "Bearer x" }

[profiles.spikier]
base = "spiky"
clients = 3

[profiles.fresh]
clients = 2
rate = 5
payload_bytes = "1KiB"
methods = ["ping"]
target = "ws://127.0.0.1:8765/mcp"
stages = [{duration_s = "10s", clients = 2, rate = 5}]
"""

YAML = """
profiles:
  spiky:
    base: normal
    rate: 200
    duration_s: 2m
    methods: {tools/call: 3, ping: 1}
    tools: {echo: {text: hi}}
    headers: {Authorization: Bearer x}
  spikier:
    base: spiky
    clients: 3
  fresh:
    clients: 2
    rate: 5
    payload_bytes: 1KiB
    methods: [ping]
    target: ws://127.0.0.1:8765/mcp
    stages: [{duration_s: 10s, clients: 2, rate: 5}]
"""


@pytest.mark.parametrize(("suffix", "text"), [(".toml", TOML), (".yaml", YAML), (".yml", YAML)])
def test_load_profiles_from_files(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"profiles{suffix}"
    path.write_text(text, encoding="utf-8")
    profiles = load_profiles(path)
    assert list(profiles) == ["spiky", "spikier", "fresh"]
    spiky = profiles["spiky"]
    assert (spiky.name, spiky.clients, spiky.rate, spiky.duration_s) == ("spiky", 25, 200.0, 120.0)
    assert spiky.methods == {"tools/call": 3.0, "ping": 1.0}
    assert spiky.tools == {"echo": {"text": "hi"}} and spiky.headers == {"Authorization": "Bearer x"}
    assert spiky.payload_bytes == 512  # inherited from the built-in
    assert profiles["spikier"].clients == 3 and profiles["spikier"].rate == 200.0
    fresh = profiles["fresh"]
    assert (fresh.payload_bytes, fresh.duration_s, fresh.target) == (1024, 10.0, "ws://127.0.0.1:8765/mcp")
    assert get_profile("spikier", profiles) is profiles["spikier"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"profile": {}}, "x.toml: expected only a 'profiles' table"),
        ({"profiles": {"a": 3}}, "x.toml: profile 'a' must be a table of fields, got 3"),
        ({"profiles": {"a": {"name": "b", "base": "normal"}}}, "profile 'a': unknown field 'name'"),
        (
            {"profiles": {"a": {"rat": 5, "base": "normal"}}},
            "unknown field 'rat'; accepted: base, clients, rate",
        ),
        (
            {"profiles": {"a": {"clients": 1, "rate": 1, "methods": ["ping"]}}},
            "field 'payload_bytes' is required",
        ),
        ({"profiles": {"a": {"base": "nope"}}}, "unknown profile 'nope'"),
        (
            {"profiles": {"a": {"base": "normal", "rate": "fast"}}},
            "profile 'a': field 'rate' must be a positive",
        ),
    ],
)
def test_parse_profiles_errors(data: object, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_profiles(data, "x.toml")
    assert message in str(info.value)


def test_load_profiles_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"must end in \.toml, \.yaml or \.yml"):
        load_profiles(tmp_path / "p.json")
    with pytest.raises(UsageError, match="cannot read profile file"):
        load_profiles(tmp_path / "missing.toml")
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[profiles.a\n", encoding="utf-8")
    with pytest.raises(UsageError, match="is not valid TOML"):
        load_profiles(bad_toml)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("profiles: [a, {\n", encoding="utf-8")
    with pytest.raises(UsageError, match="is not valid YAML"):
        load_profiles(bad_yaml)
