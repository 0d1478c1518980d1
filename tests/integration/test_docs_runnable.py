"""Every code block marked runnable in README.md and docs/*.md runs, as pasted, and succeeds.

The marker is an HTML comment on the line just before the opening fence (GitHub shows neither):

    <!-- runnable -->                 run the block as it is
    <!-- runnable: port=8080 -->      the block starts its own server on 8080: use a free port instead
    <!-- runnable: server=8080 -->    the block needs a server on 8080, as an earlier block of the
                                      page started: the test starts a reference server on a free
                                      port and puts that port in place of 8080

``bash``/``sh`` blocks run in ``bash`` with ``set -eo pipefail`` (background jobs are killed when
the block ends), ``python`` blocks in this interpreter. Each block runs in a fresh directory laid
out like a checkout: ``.venv`` (a link to this interpreter's environment), copies of ``docs/``,
``benchmarks/``, ``pyproject.toml`` and ``conftest.py``. PATH is left as it is, as for a new user
who has not activated the environment: a block must say ``.venv/bin/mcpswarm``, not ``mcpswarm``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_mcpswarm.server.launch import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*runnable(?::\s*(?P<options>[^>]*?))?\s*-->")
FENCE = re.compile(r"(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
OPTIONS = ("port", "server", "timeout")
LANGUAGES = ("bash", "sh", "python")
COPIED = ("docs", "benchmarks", "pyproject.toml", "conftest.py")
BASH_PRELUDE = "set -eo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse_options(text: str | None) -> dict[str, str]:
    options = {}
    for item in (text or "").replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or key not in OPTIONS:
            accepted = ", ".join(o + "=" for o in OPTIONS)
            raise ValueError(f"runnable option {item!r}: expected one of {accepted}")
        options[key] = value
    return options


def runnable_blocks(page: Path) -> list[Block]:
    """The marked blocks of ``page``; a marker not right before a fence is a ValueError."""
    lines = page.read_text().splitlines()
    blocks = []
    fence: str | None = None
    for i, line in enumerate(lines):
        opening = FENCE.match(line)
        if fence is not None:
            if line.strip() == fence:
                fence = None
            continue
        if opening:
            fence = opening["fence"]
            continue
        marker = MARKER.fullmatch(line.strip())
        if marker is None:
            continue
        where = f"{page.name}:{i + 1}"
        following = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if following is None:
            raise ValueError(f"{where}: a runnable marker must be the line just before a fenced block")
        if following["lang"] not in LANGUAGES:
            raise ValueError(f"{where}: cannot run a {following['lang'] or 'plain'} block ({LANGUAGES})")
        end = next(
            (j for j in range(i + 2, len(lines)) if lines[j].strip() == following["fence"]), len(lines)
        )
        code = "\n".join(lines[i + 2 : end]) + "\n"
        blocks.append(Block(page, i + 2, following["lang"], code, parse_options(marker["options"])))
    return blocks


BLOCKS = [block for page in PAGES for block in runnable_blocks(page)]


def test_the_markers_are_well_formed_and_mark_the_tour() -> None:
    """A marker that is not right before a block fails here; so does a docs set with too few."""
    for page in PAGES:
        runnable_blocks(page)  # raises on a malformed marker
    ids = [b.id for b in BLOCKS]
    assert any(i.startswith("README.md:") for i in ids), ids
    assert any(i.startswith("docs/SETUP_GUIDE.md:") for i in ids), ids
    assert len(BLOCKS) >= 4, ids


def test_a_marker_not_before_a_fence_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "PAGE.md"
    page.write_text("<!-- runnable -->\n\n```bash\ntrue\n```\n")
    with pytest.raises(ValueError, match="just before a fenced block"):
        runnable_blocks(page)
    page.write_text("<!-- runnable: prot=80 -->\n```bash\ntrue\n```\n")
    with pytest.raises(ValueError, match="runnable option 'prot=80'"):
        runnable_blocks(page)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def workspace(where: Path) -> Path:
    """A directory laid out like a checkout, with this interpreter's environment as ``.venv``."""
    (where / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, where / name, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
            )
        elif source.is_file():
            shutil.copy2(source, where / name)
    return where


def run(block: Block, cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    drop = ("MCPSWARM_", "PYTEST_", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    cmd = [sys.executable, "-c", code] if block.lang == "python" else ["bash", "-c", BASH_PRELUDE + code]
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=float(block.options.get("timeout", 120)))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{block.id} did not finish in time:\n{out}")
    finally:
        # Whatever the block left behind in its own process group (a server it started).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_runnable_block(block: Block, tmp_path: Path) -> None:
    code = block.code
    server: ServerProcess | None = None
    try:
        for option in ("port", "server"):
            if option in block.options:
                written = block.options[option]
                assert re.search(rf"\b{written}\b", code), f"{block.id}: port {written} is not in the block"
                port = free_port()
                code = re.sub(rf"\b{written}\b", str(port), code)
                if option == "server":
                    server = ServerProcess(["--port", str(port)]).start()
        done = run(block, workspace(tmp_path), code)
    finally:
        if server is not None:
            server.stop()
    assert done.returncode == 0, f"{block.id} failed with status {done.returncode}:\n{code}\n{done.stdout}"
