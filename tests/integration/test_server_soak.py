"""The reference server's memory under connection churn: on demand only (minutes long).

Run it with ``MCPSWARM_SOAK_MINUTES=10 pytest tests/integration/test_server_soak.py`` (or the
script: ``python -m pytest_mcpswarm.server.soak --minutes 10``); without the variable it skips.
"""

from __future__ import annotations

import os

import pytest

from pytest_mcpswarm.server.soak import soak

MINUTES = float(os.environ.get("MCPSWARM_SOAK_MINUTES", "0") or 0)


@pytest.mark.skipif(not MINUTES, reason="on demand: set MCPSWARM_SOAK_MINUTES (e.g. 10) to run the soak")
async def test_server_rss_grows_less_than_10_percent_under_churn() -> None:
    report = await soak(
        minutes=MINUTES, warmup_s=min(60.0, MINUTES * 10), clients=40, churn_calls=5, think_s=0.0, every_s=5.0
    )
    print(report.line())
    assert report.requests_ok > 0 and report.sessions_opened > 40
    assert report.growth < 0.10, report.line()
