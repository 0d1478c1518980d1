"""The generated reference pages in docs/ match the code they are generated from."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import pytest_mcpswarm
from pytest_mcpswarm import docsgen
from pytest_mcpswarm.errors import MCPSwarmError

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(("page", "path"), [("troubleshooting", "TROUBLESHOOTING.md"), ("hooks", "HOOKS.md")])
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


def test_every_error_class_is_in_the_one_catalogue() -> None:
    """An error type defined outside errors.py would be missing from TROUBLESHOOTING.md."""
    for module in pkgutil.walk_packages(pytest_mcpswarm.__path__, "pytest_mcpswarm."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    stack: list[type[MCPSwarmError]] = [MCPSwarmError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("pytest_mcpswarm"):
            assert cls.__module__ == "pytest_mcpswarm.errors", f"move {cls.__name__} into errors.py"


def test_every_hook_says_when_it_is_called_and_shows_an_example() -> None:
    hooks = docsgen.hook_specs()
    assert hooks, "no pytest_mcpswarm_* hook found in hookspec.py"
    page = docsgen.hooks()
    for fn in hooks:
        doc = fn.__doc__ or ""
        assert "Called " in doc, f"{fn.__name__}: the docstring does not say when it is called"
        assert f"def {fn.__name__}(" in docsgen.hook_example(fn), f"{fn.__name__}: no example"
        assert f"## {fn.__name__}\n" in page
