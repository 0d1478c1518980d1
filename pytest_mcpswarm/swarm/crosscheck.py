"""Cross-check a swarm run's merged HDR percentiles against Prometheus (prometheus-api-client).

Two independent paths to the same percentiles:

- the controller decodes every replica's HdrHistogram and merges them (``merge_done``);
- Prometheus scraped every replica's ``mcp_client_request_duration_seconds`` (the engine's
  exporter, labelled with the run id) and PromQL sums the buckets across replicas:
  ``histogram_quantile(q, sum by (le) (mcp_client_request_duration_seconds_bucket{run="RUN"}))``.

They must agree to within one bucket: the bucket index of the Prometheus estimate (which
interpolates linearly inside its bucket) and that of the exact HDR value differ by at most
one.  Both are read at the same rank: ``histogram_quantile`` looks for the bucket where
the cumulative count reaches ``q * N``, so the HDR value compared is the one at rank
``ceil(q * N)`` (``hdr_rank_ms``).  With thousands of samples that is the report's
percentile (``hdr_ms``, HdrHistogram rounds the rank to nearest); with 60 samples p99 is
the 59th value for HdrHistogram but the 60th for PromQL, which may lie buckets apart.

Before comparing, the check waits until Prometheus holds every replica's final count
(``sum(..._count{run="RUN"})`` equals the merged histogram's total), so both paths cover
the same requests.  When Prometheus is unreachable, or never catches up, the check is
reported as ``skipped`` with the reason; it never fails the run by itself.
"""

from __future__ import annotations

import bisect
import math
import time
from typing import Any, Final

from pytest_mcpswarm.load.exporter import BUCKETS_S
from pytest_mcpswarm.stats.histogram import LatencyHistogram

QUANTILES: Final = (0.5, 0.95, 0.99)
METRIC: Final = "mcp_client_request_duration_seconds"


def bucket_index(value_s: float) -> int:
    """Index of the exporter bucket holding ``value_s`` (``le`` bounds; ``len(BUCKETS_S)`` = +Inf)."""
    return bisect.bisect_left(BUCKETS_S, value_s)


def _scalar(prom: Any, query: str) -> float | None:
    result = prom.custom_query(query)
    if not result:
        return None
    return float(result[0]["value"][1])


def cross_check(url: str, run_id: str, latency: LatencyHistogram, *, wait_s: float = 45.0) -> dict[str, Any]:
    """``{"status": passed|failed|skipped, "reason": ..., "quantiles": {...}}`` for one run."""
    out: dict[str, Any] = {"status": "skipped", "prometheus": url, "run": run_id, "quantiles": {}}
    expected = latency.total_count
    if not expected:
        return out | {"reason": "no successful request was measured"}
    try:
        from prometheus_api_client import PrometheusConnect
    except ImportError:
        return out | {"reason": "prometheus-api-client is not installed"}
    selector = f'{{run="{run_id}"}}'
    try:
        prom = PrometheusConnect(url=url, disable_ssl=True)
        deadline = time.monotonic() + wait_s
        seen: float | None = None
        while True:
            seen = _scalar(prom, f"sum({METRIC}_count{selector})")
            if seen is not None and int(seen) == expected:
                break
            if time.monotonic() >= deadline:
                held = 0 if seen is None else int(seen)
                return out | {
                    "reason": f"Prometheus held {held} of the {expected} requests after {wait_s:.0f} s "
                    "(scrapes lag, or a replica's target was not discovered)"
                }
            time.sleep(2.0)
        agree = True
        for q in QUANTILES:
            promql = f"histogram_quantile({q}, sum by (le) ({METRIC}_bucket{selector}))"
            estimate = _scalar(prom, promql)
            hdr_s = latency.percentile(q * 100) / 1e6
            rank_s = latency.percentile(math.ceil(q * expected) / expected * 100) / 1e6
            if estimate is None or math.isnan(estimate):
                return out | {"reason": f"{promql} returned no value"}
            hb, pb = bucket_index(rank_s), bucket_index(estimate)
            ok = abs(hb - pb) <= 1
            agree = agree and ok
            out["quantiles"][f"p{round(q * 100):d}"] = {
                "hdr_ms": hdr_s * 1000, "hdr_rank_ms": rank_s * 1000, "prometheus_ms": estimate * 1000,
                "hdr_bucket": hb, "prometheus_bucket": pb, "agree": ok,
            }  # fmt: skip
    except Exception as exc:  # the client raises requests' errors and its own on connection problems
        return out | {"reason": f"Prometheus at {url} is unreachable or failed: {type(exc).__name__}: {exc}"}
    out["status"] = "passed" if agree else "failed"
    out["reason"] = (
        "within one bucket" if agree else "the Prometheus estimate is more than one bucket from the HDR value"
    )
    out["samples"] = expected
    return out
