"""options.resolve: precedence, per-key merging, every bad value named with its source and form."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.options import (
    DOCS_BEGIN,
    DOCS_END,
    OPTIONS,
    Settings,
    options_markdown,
    render_into,
    resolve,
)

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    s = resolve({}, {}, {})
    assert (s.backend, s.target, s.transport, s.server_replicas) == ("local", None, "ws", 1)
    assert (s.time_scale, s.load_scale, s.keep_stack) == (1.0, 1.0, False)
    assert s.workers >= 1
    assert dict(s.overrides) == {} and dict(s.slas) == {}
    assert set(s.sources.values()) == {"default"}


def test_cli_beats_env_beats_ini() -> None:
    ini = {"time_scale": "0.5", "load_scale": "0.25", "workers": "3"}
    env = {"MCPSWARM_TIME_SCALE": "0.2", "MCPSWARM_LOAD_SCALE": "0.3"}
    s = resolve({"time_scale": "0.1"}, env, ini)
    assert (s.time_scale, s.load_scale, s.workers) == (0.1, 0.3, 3)
    assert (s.sources["time_scale"], s.sources["load_scale"], s.sources["workers"]) == ("cli", "env", "ini")


def test_repeatable_options_merge_per_key_with_the_same_precedence() -> None:
    ini = {"set": ["baseline.clients=5", "baseline.rate=50"], "sla": ["baseline=p99<1s"]}
    env = {"MCPSWARM_SET": "baseline.rate=60; low-load.clients=2", "MCPSWARM_SLA": "low-load=p50<5ms, rps>=1"}
    s = resolve({"set": ["baseline.clients=7"]}, env, ini)
    assert dict(s.overrides) == {"baseline.clients": "7", "baseline.rate": "60", "low-load.clients": "2"}
    assert dict(s.slas) == {"baseline": "p99<1s", "low-load": "p50<5ms, rps>=1"}
    assert s.overrides_for("baseline") == {"clients": "7", "rate": "60"}


def test_flag_from_env_and_ini() -> None:
    assert resolve({}, {"MCPSWARM_KEEP_STACK": "yes"}, {}).keep_stack is True
    assert resolve({}, {}, {"keep_stack": "true"}).keep_stack is True
    assert resolve({"keep_stack": True}, {"MCPSWARM_KEEP_STACK": "0"}, {}).keep_stack is True
    assert resolve({}, {"MCPSWARM_KEEP_STACK": "0"}, {"keep_stack": "1"}).keep_stack is False


def test_ini_paths_are_relative_to_the_ini_file(tmp_path: Path) -> None:
    assert resolve({}, {}, {"json": "out/r.json"}, ini_dir=tmp_path).json == tmp_path / "out/r.json"
    assert resolve({"json": "r.json"}, {}, {}, ini_dir=tmp_path).json == Path("r.json")


def test_a_target_implies_the_external_backend() -> None:
    s = resolve({"target": "http://127.0.0.1:9/mcp"}, {}, {})
    assert (s.backend, s.target, s.transport) == ("external", "http://127.0.0.1:9/mcp", "ws")


@pytest.mark.parametrize(
    ("cli", "env", "ini", "words"),
    [
        ({"time_scale": "fast"}, {}, {}, ["--mcpswarm-time-scale", "number > 0", "'fast'"]),
        ({}, {"MCPSWARM_LOAD_SCALE": "0"}, {}, ["--mcpswarm-load-scale", "$MCPSWARM_LOAD_SCALE", "'0'"]),
        ({}, {}, {"workers": "two"}, ["--mcpswarm-workers", "ini key mcpswarm_workers", "whole number"]),
        ({"backend": "k8s"}, {}, {}, ["--mcpswarm-backend", "local, swarm, external"]),
        ({"transport": "smoke"}, {}, {}, ["--mcpswarm-transport", "ws, http"]),
        ({"server_replicas": "0"}, {}, {}, ["--mcpswarm-server-replicas", ">= 1"]),
        ({"target": "localhost:80"}, {}, {}, ["--mcpswarm-target", "ws://HOST:PORT"]),
        ({"set": ["baseline"]}, {}, {}, ["--mcpswarm-set", "SCENARIO.FIELD=VALUE"]),
        ({"sla": ["baseline=p99<fast"]}, {}, {}, ["--mcpswarm-sla", "bad SLA"]),
        ({"sla": ["p99<5ms"]}, {}, {}, ["--mcpswarm-sla", "SCENARIO=EXPR"]),
        ({"save": "a/b"}, {}, {}, ["--mcpswarm-save", "letters, digits"]),
        ({"compare": "x", "compare_fail": "p99:-10%"}, {}, {}, ["--mcpswarm-compare-fail", "p99:+10%"]),
        ({}, {"MCPSWARM_KEEP_STACK": "maybe"}, {}, ["--mcpswarm-keep-stack", "true or false"]),
        ({"backend": "external"}, {}, {}, ["needs --mcpswarm-target"]),
        ({"backend": "local", "target": "ws://127.0.0.1:1/"}, {}, {}, ["only used by the external"]),
        ({"target": "ws://127.0.0.1:1/", "transport": "http"}, {}, {}, ["contradicts"]),
        ({"compare_fail": "p99:+10%"}, {}, {}, ["needs a baseline", "--mcpswarm-compare"]),
    ],
)
def test_bad_values_name_the_option_the_source_and_the_form(
    cli: dict[str, object], env: dict[str, str], ini: dict[str, object], words: list[str]
) -> None:
    with pytest.raises(UsageError) as info:
        resolve(cli, env, ini)
    for word in words:
        assert word in str(info.value)


def test_every_option_has_flag_ini_and_env_named_alike() -> None:
    for option in OPTIONS:
        suffix = option.name.replace("_", "-")
        assert option.flag == f"--mcpswarm-{suffix}"
        assert option.ini == f"mcpswarm_{option.name}"
        assert option.env == f"MCPSWARM_{option.name.upper()}"
        assert option.help
    assert {f.name for f in Settings.__dataclass_fields__.values()} >= {
        o.name for o in OPTIONS if o.name not in ("set", "sla")
    }


def test_markdown_table_lists_every_option() -> None:
    table = options_markdown()
    for option in OPTIONS:
        assert option.flag in table and option.env in table and option.ini in table
    assert render_into(f"a\n{DOCS_BEGIN}\nold\n{DOCS_END}\nb") == f"a\n{DOCS_BEGIN}\n{table}{DOCS_END}\nb"


def test_running_benchmarks_doc_is_current() -> None:
    page = (ROOT / "docs" / "RUNNING_BENCHMARKS.md").read_text(encoding="utf-8")
    assert render_into(page) == page, (
        "docs/RUNNING_BENCHMARKS.md is stale: "
        "run `python -m pytest_mcpswarm.options docs/RUNNING_BENCHMARKS.md`"
    )
