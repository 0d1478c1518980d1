"""The generated reference pages in docs/ match the code they are generated from."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mcpswarm import docsgen

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(("page", "path"), [("troubleshooting", "TROUBLESHOOTING.md")])
def test_generated_page_is_current(page: str, path: str) -> None:
    rendered = docsgen.PAGES[page]()
    committed = (DOCS / path).read_text()
    assert committed == rendered, (
        f"docs/{path} is stale: python -m pytest_mcpswarm.docsgen {page} > docs/{path}"
    )


def test_every_error_has_a_cause_and_a_fix() -> None:
    for cls in docsgen.error_classes():
        assert (cls.__doc__ or "").strip(), f"{cls.__name__} has no docstring (its cause in the docs)"
        if cls.__name__ != "MCPSwarmError":
            assert cls.fix, f"{cls.__name__} suggests no fix"
