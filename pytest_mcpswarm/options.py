"""Every option of the plugin, declared once, settled into one frozen ``Settings``.

Each ``Option`` is a command-line flag ``--mcpswarm-NAME``, an ini key
``mcpswarm_NAME`` and an environment variable ``MCPSWARM_NAME``.  Precedence
is **CLI > env > ini > default**, so CI can override a project's ini file.
Repeatable options (``--mcpswarm-set``, ``--mcpswarm-sla``) merge per key
with the same precedence: an ini file can set ``baseline.rate=50`` and the
command line still override only ``baseline.clients``.  In the environment
their items are separated by ``;``; in an ini file they go one per line.

``resolve`` is pure (plain mappings in, ``Settings`` out) and raises
``UsageError`` naming the option, where the value came from and the accepted
form; the plugin turns that into ``pytest.UsageError``.  ``options_markdown``
renders the table in docs/RUNNING_BENCHMARKS.md (``python -m
pytest_mcpswarm.options docs/RUNNING_BENCHMARKS.md`` rewrites it).
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.report.jsonfile import check_writable

BACKENDS: Final = ("local", "swarm", "external")
TRANSPORTS: Final = ("ws", "http")
TARGET_SCHEMES: Final = ("ws://", "wss://", "http://", "https://", "tcp://", "stdio:")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SET_RE: Final = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_.-]*)\s*=(.*)", re.DOTALL)
_SLA_RE: Final = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_-]*)\s*=(.*)", re.DOTALL)

Kind = Literal["value", "flag", "multi"]
Source = Literal["cli", "env", "ini", "default"]


class _Bad(Exception):
    """A parser's complaint: what was expected."""


# -- value parsers: raw string -> value, or _Bad ---------------------------------


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise _Bad(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _positive_int(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise _Bad("must be a whole number >= 1, such as 4") from None
    if value < 1:
        raise _Bad("must be a whole number >= 1, such as 4")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise _Bad("must be a number > 0, such as 0.1 or 2") from None
    if not (math.isfinite(value) and value > 0):
        raise _Bad("must be a number > 0, such as 0.1 or 2")
    return value


def _target(raw: str) -> str:
    value = raw.strip()
    if not value.startswith(TARGET_SCHEMES) or value in TARGET_SCHEMES:
        raise _Bad("must be a URL such as ws://HOST:PORT/mcp/ws, http://HOST:PORT/mcp, tcp://HOST:PORT")
    return value


def _name(raw: str) -> str:
    value = raw.strip()
    if not _NAME_RE.fullmatch(value):
        raise _Bad("must be a name of letters, digits, '.', '_' or '-', such as main or pr-42")
    return value


def _text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise _Bad("must not be empty")
    return value


def _path(raw: str) -> Path:
    return Path(_text(raw))


def _json_path(raw: str) -> Path:
    try:
        return check_writable(_path(raw))
    except UsageError as exc:
        raise _Bad(f"must be a file we can write ({exc.problem})") from None


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise _Bad("must be true or false (1/0, yes/no, on/off)")


def _set_item(raw: str) -> tuple[str, str]:
    m = _SET_RE.fullmatch(raw)
    if not m or not m.group(3).strip():
        raise _Bad(
            "must be SCENARIO.FIELD=VALUE, such as baseline.clients=5 or message-bombing.bombing.rate=500"
        )
    return f"{m.group(1)}.{m.group(2)}", m.group(3).strip()


def _sla_item(raw: str) -> tuple[str, str]:
    m = _SLA_RE.fullmatch(raw)
    if not m or not m.group(2).strip():
        raise _Bad("must be SCENARIO=EXPR, such as 'baseline=p99<50ms, error_rate<0.1%'")
    from pytest_mcpswarm.sla import parse_sla

    try:
        parse_sla(m.group(2))
    except UsageError as exc:
        raise _Bad(f"has a bad SLA: {exc.problem}") from None
    return m.group(1), m.group(2).strip()


def _compare_fail(raw: str) -> str:
    from pytest_mcpswarm.compare import parse_compare_fail

    try:
        parse_compare_fail(raw)
    except UsageError as exc:
        raise _Bad(exc.problem) from None
    return raw.strip()


# -- the table -------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str = ""
    kind: Kind = "value"
    #: How the default reads in --help and the docs (when it is not the plain value).
    default_text: str | None = None

    @property
    def flag(self) -> str:
        return "--mcpswarm-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "mcpswarm_" + self.name

    @property
    def env(self) -> str:
        return "MCPSWARM_" + self.name.upper()

    def shown_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if self.kind == "multi":
            return "none"
        return "none" if self.default is None else str(self.default)


OPTIONS: Final[tuple[Option, ...]] = (
    Option("backend", _choice(*BACKENDS), None,
           "which backend runs the stack: local (reference servers on loopback), swarm (Docker Swarm) "
           "or external (the server at --mcpswarm-target)", "{local,swarm,external}",
           default_text="local; external when a target is given"),
    Option("target", _target, None,
           "the server to test with the external backend: ws://, wss://, http://, https://, tcp:// or "
           "stdio:COMMAND", "URL"),
    Option("transport", _choice(*TRANSPORTS), None,
           "transport to the servers the plugin starts: ws (WebSocket /mcp/ws) or http (Streamable "
           "HTTP /mcp); with an external target the URL decides", "{ws,http}", default_text="ws"),
    Option("server_replicas", _positive_int, 1,
           "how many servers: local processes (clients are spread over them) or swarm replicas", "N"),
    Option("workers", _positive_int, None,
           "how many load generator processes per scenario", "N", default_text="number of CPU cores"),
    Option("time_scale", _positive_float, 1.0,
           "multiplies every phase's duration (warm-up included), e.g. 0.05 for a short run", "F"),
    Option("load_scale", _positive_float, 1.0,
           "multiplies every client count (rounded up, at least 1); the per-client rate is unchanged, "
           "so the total load scales by F", "F"),
    Option("set", _set_item, (),
           "overrides one scenario parameter after scaling, e.g. baseline.clients=5 or "
           "message-bombing.bombing.rate=500; repeatable", "SCENARIO.FIELD=VALUE", kind="multi"),
    Option("sla", _sla_item, (),
           "replaces a scenario's SLA (its default and any mcpswarm_sla marker), e.g. "
           "'baseline=p99<50ms, error_rate<0.1%'; repeatable", "SCENARIO=EXPR", kind="multi"),
    Option("json", _json_path, None, "write the session's JSON report (schema mcpswarm/1) here", "PATH"),
    Option("save", _name, None,
           "save the JSON report as .mcpswarm/<machine-id>/NNNN_<NAME>.json under the rootdir", "NAME"),
    Option("compare", _text, None,
           "compare this run with a saved one: a NAME or NNNN given to --mcpswarm-save (the newest "
           "match), 'last', or the PATH of any mcpswarm/1 JSON report", "NAME|PATH"),
    Option("compare_fail", _compare_fail, None,
           "what counts as a regression against --mcpswarm-compare, per metric in its bad direction, "
           "e.g. 'p99:+10%, p50:+2ms, rps:-5%, error_rate:+0.1pp'; a regression fails the session",
           "EXPR"),
    Option("keep_stack", _flag, False,
           "leave the stack (e.g. the local servers) running after the session; a swarm stack is "
           "labelled mcpswarm.keep=true so no sweep removes it", kind="flag"),
    Option("swarm_init", _flag, False,
           "swarm backend: run `docker swarm init` when the engine is not in a swarm (CI=true does it "
           "too); otherwise an inactive swarm is an error", kind="flag"),
    Option("swarm_ci", _flag, False,
           "swarm backend: deploy with docker/docker-compose.ci.yml (a 2-core single node: 3 servers, "
           "small reservations, no Grafana)", kind="flag"),
)  # fmt: skip
BY_NAME: Final = MappingProxyType({o.name: o for o in OPTIONS})


@dataclass(frozen=True)
class Settings:
    """Every option's final value.  Fixtures and backends get this, never ``pytest.Config``."""

    backend: str = "local"
    target: str | None = None
    transport: str = "ws"
    server_replicas: int = 1
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    time_scale: float = 1.0
    load_scale: float = 1.0
    #: ``"SCENARIO.FIELD" -> raw value``, validated against the scenario when it runs.
    overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: ``scenario name -> SLA expression``.
    slas: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    json: Path | None = None
    save: str | None = None
    compare: str | None = None
    compare_fail: str | None = None
    keep_stack: bool = False
    swarm_init: bool = False
    swarm_ci: bool = False
    #: Where each option's value came from: cli, env, ini or default.
    sources: Mapping[str, Source] = field(default_factory=lambda: MappingProxyType({}))

    def overrides_for(self, scenario: str) -> dict[str, str]:
        """``FIELD -> VALUE`` of the ``--mcpswarm-set`` items naming ``scenario``."""
        prefix = scenario + "."
        return {k.removeprefix(prefix): v for k, v in self.overrides.items() if k.startswith(prefix)}


def _split_env(raw: str) -> list[str]:
    return [part for part in re.split(r"[;\n]", raw) if part.strip()]


def _where(option: Option, source: Source) -> str:
    return {"cli": option.flag, "env": f"{option.flag} (from ${option.env})",
            "ini": f"{option.flag} (from ini key {option.ini})", "default": option.flag}[source]  # fmt: skip


def _parse(option: Option, raw: str, source: Source) -> Any:
    try:
        return option.parse(raw)
    except _Bad as exc:
        shown = f"{option.metavar} " if option.metavar else ""
        raise UsageError(
            f"{_where(option, source)} {exc}, got {raw.strip()!r}",
            fix=f"accepted form: {option.flag} {shown}".rstrip() + f" — {option.help}",
        ) from None


def _items(value: object) -> list[str]:
    """Raw items of a repeatable option as a source holds them (list, or a single string)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v).strip()]
    return [str(value)]


def resolve(
    cli: Mapping[str, object],
    env: Mapping[str, str],
    ini: Mapping[str, object],
    *,
    ini_dir: Path | None = None,
) -> Settings:
    """Settle every option: CLI > env > ini > default.  ``cli``/``ini`` are keyed by option name."""
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for option in OPTIONS:
        layers: list[tuple[Source, list[str]]] = [
            ("ini", _items(ini.get(option.name))),
            ("env", _split_env(env[option.env]) if env.get(option.env, "").strip() else []),
        ]
        cli_value = cli.get(option.name)
        if option.kind == "flag":
            layers.append(("cli", ["true"] if cli_value else []))
        else:
            layers.append(("cli", _items(cli_value)))
        if option.kind == "multi":
            merged: dict[str, str] = {}
            for source, raws in layers:
                for raw in raws:
                    key, value = _parse(option, raw, source)
                    merged[key] = value
                    sources[option.name] = source
            values[option.name] = MappingProxyType(merged)
            sources.setdefault(option.name, "default")
            continue
        chosen: tuple[Source, str] | None = None
        for source, raws in layers:
            if raws:
                chosen = (source, raws[-1])
        if chosen is None:
            values[option.name] = option.default
            sources[option.name] = "default"
        else:
            value = _parse(option, chosen[1], chosen[0])
            if isinstance(value, Path) and chosen[0] == "ini" and ini_dir is not None:
                value = ini_dir / value
            values[option.name] = value
            sources[option.name] = chosen[0]
    return _settle(values, MappingProxyType(sources))


def _settle(values: dict[str, Any], sources: Mapping[str, Source]) -> Settings:
    target: str | None = values["target"]
    backend: str | None = values["backend"]
    if backend is None:
        backend = "external" if target else "local"
    if backend == "external" and not target:
        raise UsageError(
            "--mcpswarm-backend external needs --mcpswarm-target URL",
            fix="give the server to test, e.g. --mcpswarm-target ws://127.0.0.1:8080/mcp/ws",
        )
    if backend != "external" and target:
        raise UsageError(
            f"--mcpswarm-target is only used by the external backend, but the backend is {backend!r}",
            fix="drop --mcpswarm-backend (a target implies external) or pass --mcpswarm-backend external",
        )
    transport: str | None = values["transport"]
    if target and transport is not None:
        implied = {"ws": "ws", "wss": "ws", "http": "http", "https": "http"}.get(target.split(":", 1)[0])
        if implied != transport:
            raise UsageError(
                f"--mcpswarm-transport {transport} contradicts --mcpswarm-target {target}",
                fix="with an external target the URL's scheme decides the transport; "
                "drop --mcpswarm-transport",
            )
    if values["compare_fail"] and not values["compare"]:
        raise UsageError(
            "--mcpswarm-compare-fail needs a baseline to compare with",
            fix="add --mcpswarm-compare NAME|PATH (a run saved with --mcpswarm-save NAME, or a JSON report)",
        )
    return Settings(
        backend=backend,
        target=target,
        transport=transport or "ws",
        server_replicas=values["server_replicas"],
        workers=values["workers"] or os.cpu_count() or 1,
        time_scale=values["time_scale"],
        load_scale=values["load_scale"],
        overrides=values["set"],
        slas=values["sla"],
        json=values["json"],
        save=values["save"],
        compare=values["compare"],
        compare_fail=values["compare_fail"],
        keep_stack=bool(values["keep_stack"]),
        swarm_init=bool(values["swarm_init"]),
        swarm_ci=bool(values["swarm_ci"]),
        sources=sources,
    )


# -- pytest wiring -------------------------------------------------------------------


def add_options(parser: Any) -> None:
    """Register every option on a ``pytest.Parser``: one ``mcpswarm`` group plus ini keys."""
    group = parser.getgroup("mcpswarm", "MCP load testing (pytest-mcpswarm)")
    for option in OPTIONS:
        text = f"{option.help} [ini: {option.ini}; env: {option.env}; default: {option.shown_default()}]"
        text = text.replace("%", "%%")
        if option.kind == "flag":
            group.addoption(option.flag, action="store_true", default=None, dest=f"mcpswarm_{option.name}",
                            help=text)  # fmt: skip
        else:
            group.addoption(
                option.flag,
                action="append" if option.kind == "multi" else "store",
                default=None,
                dest=f"mcpswarm_{option.name}",
                metavar=option.metavar,
                help=text,
            )
        parser.addini(option.ini, option.help, type="linelist" if option.kind == "multi" else "string")


def from_config(config: Any) -> Settings:
    """``resolve`` over a ``pytest.Config``'s command line, ``os.environ`` and ini file."""
    cli = {o.name: config.getoption(f"mcpswarm_{o.name}") for o in OPTIONS}
    ini = {o.name: config.getini(o.ini) for o in OPTIONS}
    ini_dir = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
    return resolve(cli, os.environ, ini, ini_dir=ini_dir)


# -- docs --------------------------------------------------------------------------

DOCS_BEGIN: Final = "<!-- options:begin (generated by `python -m pytest_mcpswarm.options FILE`) -->"
DOCS_END: Final = "<!-- options:end -->"


def options_markdown() -> str:
    """The options table for docs/RUNNING_BENCHMARKS.md."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("<", "&lt;")

    lines = [
        "| option | ini key | environment | default | what it does |",
        "|---|---|---|---|---|",
    ]
    for o in OPTIONS:
        flag = f"`{o.flag} {o.metavar}`" if o.metavar else f"`{o.flag}`"
        lines.append(f"| {cell(flag)} | `{o.ini}` | `{o.env}` | {cell(o.shown_default())} | {cell(o.help)} |")
    return "\n".join(lines) + "\n"


def render_into(text: str) -> str:
    """``text`` with the part between the option markers replaced by ``options_markdown()``."""
    start, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if start < 0 or end < start:
        raise ValueError(f"markers {DOCS_BEGIN!r} ... {DOCS_END!r} not found")
    return text[: start + len(DOCS_BEGIN)] + "\n" + options_markdown() + text[end:]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pytest_mcpswarm.options FILE.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(render_into(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
