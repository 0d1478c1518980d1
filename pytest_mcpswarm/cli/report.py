"""``mcpswarm report``: render a saved JSON report (schema ``mcpswarm/1``) as one self-contained HTML file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.report.document import SCHEMA
from pytest_mcpswarm.report.html import document_html


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="render a JSON report as HTML",
        description="Render a JSON report written by `mcpswarm run --json` or `pytest --mcpswarm-json` "
        "as one self-contained HTML file (inline SVG charts, no script, no network): "
        "a summary table at the top, then every scenario's figures, SLA checks and charts.",
    )
    p.add_argument("file", metavar="FILE.json", help="the JSON report")
    p.add_argument("--html", metavar="OUT.html", required=True, help="where to write the HTML report")
    p.add_argument("--title", default=None, help="page title (default: 'mcpswarm report: FILE')")
    p.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="also save a screenshot of the page taken with headless Chromium (for docs)",
    )
    p.add_argument("--width", type=int, default=1280, help="screenshot width in CSS pixels (default: 1280)")
    p.add_argument("--height", type=int, default=2000, help="screenshot height in CSS pixels (default: 2000)")
    p.set_defaults(func=run)


def read_document(path: Path) -> dict[str, Any]:
    """The JSON document at ``path``, checked to be ours; otherwise a ``UsageError`` saying what is wrong."""
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file", fix="pass the file written by --json") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc})", fix="pass the file written by --json") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise UsageError(
            f"{path}: schema is {found!r}, expected {SCHEMA!r}",
            fix="pass a report written by `mcpswarm run --json` or `pytest --mcpswarm-json`",
        )
    if not isinstance(doc.get("scenarios"), list):
        raise UsageError(f"{path}: has no 'scenarios' list")
    return doc


def run(args: argparse.Namespace) -> int:
    source = Path(args.file)
    doc = read_document(source)
    try:
        page = document_html(doc, title=args.title or f"mcpswarm report: {source.name}")
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{source}: a scenario is malformed ({exc})") from None
    out = Path(args.html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"HTML report: {out}")
    if args.screenshot:
        if args.width < 200 or args.height < 200:
            raise UsageError(f"--width and --height must be at least 200, got {args.width}x{args.height}")
        from pytest_mcpswarm.report.browser import screenshot

        print(f"screenshot: {screenshot(out, Path(args.screenshot), width=args.width, height=args.height)}")
    return 0
