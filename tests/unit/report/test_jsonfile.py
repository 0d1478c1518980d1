"""One JSON writer: parents created, numpy values written, unwritable paths refused before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.report.jsonfile import check_writable, write_json


def test_write_json_creates_parents_and_reads_back(tmp_path: Path) -> None:
    out = write_json(tmp_path / "a" / "b" / "r.json", {"n": np.int64(3), "x": [1.5]})
    assert orjson.loads(out.read_bytes()) == {"n": 3, "x": [1.5]}
    assert check_writable(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"


@pytest.mark.parametrize(
    ("where", "problem"),
    [("folder", "it is a folder"), ("file/r.json", "is not a folder"), ("file/x/r.json", "is not a folder")],
)
def test_an_unwritable_path_is_refused_up_front_and_on_write(
    tmp_path: Path, where: str, problem: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match=problem):
        check_writable(tmp_path / where)
    with pytest.raises(UsageError, match=r"cannot write .* choose a writable path"):
        write_json(tmp_path / where, {})
