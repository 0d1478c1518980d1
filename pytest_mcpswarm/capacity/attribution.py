"""Which resource saturated first: server CPU, client CPU, connection limits, network bandwidth, or none.

Pure: it reads the samples of a ``ResourceSampler`` (or a
``DockerStatsSampler``, whose replicas may have a CPU limit below a core:
then ``*_cpu_share_max``, the share of that ceiling, is what saturates) and
a run's error counts.  A resource counts as saturated at the first time it stays at or
above its threshold for ``sustain`` consecutive samples (one busy sample is
noise); connection limits are failed connections or refusals, dated by the
first second with errors.  The earliest saturation is the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

VERDICTS: Final = ("server_cpu", "client_cpu", "connections", "network", "none")
LABELS: Final = {
    "server_cpu": "server CPU",
    "client_cpu": "client CPU",
    "connections": "connection limits",
    "network": "network bandwidth",
    "none": "none",
}
#: Error kinds that mean a connection limit (refused, reset, or an overload status).
CONNECTION_ERRORS: Final = (
    "transport:refused",
    "transport:reset",
    "transport:http_503",
    "transport:http_429",
)


@dataclass(frozen=True)
class Thresholds:
    #: Busiest process, in cores: asyncio processes saturate at one core.
    cpu: float = 0.9
    #: Share of the link (tbf rate or link speed).
    network: float = 0.85
    sustain: int = 2


def _first_sustained(
    values: Sequence[tuple[float, float | None]], limit: float, sustain: int
) -> tuple[float, float] | None:
    run = 0
    for i, (_, v) in enumerate(values):
        run = run + 1 if v is not None and v >= limit else 0
        if run >= sustain:
            start = values[i - sustain + 1]
            return start[0], max(float(x or 0.0) for _, x in values[i - sustain + 1 : i + 1])
    return None


def attribute(
    samples: Sequence[Mapping[str, Any]],
    *,
    link_bps: float | None = None,
    directions: tuple[str, ...] = ("tx", "rx"),
    connection_failures: int = 0,
    errors_by_type: Mapping[str, int] | None = None,
    first_error_s: float | None = None,
    thresholds: Thresholds | None = None,
) -> dict[str, Any]:
    """The ``attribution`` object of a scenario: verdict, one-line reason, when each resource saturated.

    ``link_bps`` applies to each of ``directions`` on its own (a full-duplex
    link speed: both; a ``tbf`` qdisc shapes egress only: ``("tx",)``).
    """
    th = thresholds or Thresholds()
    errors = dict(errors_by_type or {})
    found: dict[str, tuple[float, str]] = {}

    def series(key: str) -> list[tuple[float, float | None]]:
        return [(float(s["t"]), s.get(key)) for s in samples]

    for side, name, who in (("server", "server_cpu", "server"), ("client", "client_cpu", "generator")):
        replicas = any(f"{side}_cpu_share_max" in s for s in samples)
        key = f"{side}_cpu_share_max" if replicas else f"{side}_cpu_max"
        hit = _first_sustained(series(key), th.cpu, th.sustain)
        if hit is None:
            continue
        what = f"a {who} process at {hit[1]:.0%} of a core"
        if replicas:
            at = next(s for s in samples if float(s["t"]) == hit[0])
            ceiling = float(at.get(f"{side}_cpu_ceiling") or 1.0)
            limit = f"its {ceiling:g}-core CPU limit" if ceiling < 1.0 else "a core"
            what = f"a {who} replica at {hit[1]:.0%} of {limit}"
        found[name] = (hit[0], f"{what} from t={hit[0]:.1f} s")
    if link_bps:
        keys = [f"net_{d}_bps" for d in directions]
        both = [(float(s["t"]), max(float(s.get(k) or 0.0) for k in keys)) for s in samples]
        hit = _first_sustained([(t, v / link_bps) for t, v in both], th.network, th.sustain)
        if hit is not None:
            found["network"] = (
                hit[0],
                f"{hit[1] * link_bps / 1e6:.2f} Mbit/s of a {link_bps / 1e6:g} Mbit/s link ({hit[1]:.0%}) "
                f"from t={hit[0]:.1f} s",
            )
    refused = {k: n for k, n in errors.items() if k in CONNECTION_ERRORS}
    if connection_failures or refused:
        what = ", ".join(f"{k} x{n}" for k, n in sorted(refused.items()))
        text = f"{connection_failures} failed connections" + (f"; {what}" if what else "")
        found["connections"] = (first_error_s if first_error_s is not None else 0.0, text)
    if found:
        verdict = min(found, key=lambda k: (found[k][0], VERDICTS.index(k)))
        line = f"bottleneck: {LABELS[verdict]} ({found[verdict][1]})"
    else:
        verdict = "none"
        line = "bottleneck: none (no resource reached its saturation threshold)"
    return {
        "verdict": verdict,
        "label": LABELS[verdict],
        "line": line,
        "saturated": {k: {"t": t, "evidence": text} for k, (t, text) in sorted(found.items())},
        "thresholds": {"cpu": th.cpu, "network": th.network, "sustain": th.sustain},
        "link_bps": link_bps,
        "link_directions": list(directions),
        "errors_by_type": errors,
        "samples": list(samples),
    }
