"""The JSON Schema (draft 2020-12) of the ``mcpswarm/1`` JSON report, shipped with the package.

``report.schema.json`` documents every key ``report/document.py``, the
plugin, the backends and ``mcpswarm ceiling`` write; it allows extra keys.
Validate a report with any draft 2020-12 validator, for example::

    import json

    import jsonschema
    from pytest_mcpswarm.report.schema import load

    jsonschema.validate(json.load(open("run.json")), load())
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The schema file, inside the installed package.
PATH = Path(__file__).with_name("report.schema.json")


def load() -> dict[str, Any]:
    """The schema as a dict."""
    schema: dict[str, Any] = json.loads(PATH.read_text(encoding="utf-8"))
    return schema
