"""Writing a JSON file the user asked for: one writer, one clear error for a path we cannot write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from pytest_mcpswarm.errors import UsageError


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` indented (numpy values allowed), creating missing parent folders."""
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}", fix="choose a writable path") from None
    return out


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail now, not after a long run, when ``write_json(path, ...)`` could not succeed."""
    out = Path(path)
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    problem = None
    if out.is_dir():
        problem = "it is a folder"
    elif not folder.is_dir():
        problem = f"{folder} is not a folder"
    elif not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        problem = "permission denied"
    if problem:
        raise UsageError(f"cannot write {out}: {problem}", fix="choose a writable path")
    return out
