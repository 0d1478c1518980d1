"""Every relative link in the README and docs/ points at a file that exists, and at a heading that exists.

Anchors follow GitHub's rule: the heading's text, lower-cased, without punctuation other than
``-`` and ``_``, spaces as ``-``, and ``-1``, ``-2``... for repeats. Links inside code blocks
are not links and are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"#{1,6}\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"\s{0,3}(```+|~~~+)")
HTML_ANCHOR = re.compile(r"""<a\s+(?:name|id)=["']([^"']+)["']""")


def prose(text: str) -> Iterator[str]:
    """The lines of a Markdown page outside fenced code blocks."""
    fence: str | None = None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is not None:
            if opening and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        yield line


def slug(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text, not its target
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(page.read_text()):
        found.update(HTML_ANCHOR.findall(line))
        m = HEADING.fullmatch(line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for line in prose(page.read_text()):
        for target in LINK.findall(line):
            if "://" in target or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path) if path else page
            if not linked.exists():
                broken.append(f"{target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{target} (no such heading)")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    assert broken_links(page) == [], f"{page.name} has broken links"


def test_anchors_follow_githubs_rule() -> None:
    assert slug("Benchmarks on the swarm: `--mcpswarm-backend swarm`") == (
        "benchmarks-on-the-swarm---mcpswarm-backend-swarm"
    )
    assert slug("Services (production sizes = the erlmcp rig's table)") == (
        "services-production-sizes--the-erlmcp-rigs-table"
    )
    assert slug("See [SWARM.md](SWARM.md) and pytest_mcpswarm") == "see-swarmmd-and-pytest_mcpswarm"


def test_a_missing_file_or_heading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "OTHER.md").write_text("# Other\n\n## Same\n\n## Same\n")
    page = tmp_path / "PAGE.md"
    page.write_text(
        "# Page\n\n```bash\n# not a heading\n[not](a-link.md)\n```\n\n"
        "[ok](OTHER.md#same-1) [ok](#page) [bad](#not-a-heading) [bad](OTHER.md#same-2) [bad](NONE.md)\n"
    )
    assert broken_links(page) == [
        "#not-a-heading (no such heading)",
        "OTHER.md#same-2 (no such heading)",
        "NONE.md (no such file)",
    ]
