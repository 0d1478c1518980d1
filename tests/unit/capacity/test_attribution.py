"""The bottleneck verdict: whichever resource saturated first, sustained."""

from __future__ import annotations

from typing import Any

from pytest_mcpswarm.capacity.attribution import attribute


def samples(**columns: list[float]) -> list[dict[str, Any]]:
    n = len(next(iter(columns.values())))
    return [{"t": i * 0.5, **{k: v[i] for k, v in columns.items()}} for i in range(n)]


def test_nothing_saturated_is_none() -> None:
    out = attribute(samples(server_cpu_max=[0.2, 0.3, 0.2], client_cpu_max=[0.1, 0.1, 0.1]))
    assert out["verdict"] == "none"
    assert out["line"].startswith("bottleneck: none")


def test_the_earliest_sustained_saturation_wins() -> None:
    out = attribute(
        samples(
            server_cpu_max=[0.5, 0.95, 0.5, 0.97, 0.98, 0.99],  # one spike at t=0.5 does not count
            client_cpu_max=[0.3, 0.5, 0.8, 0.92, 0.93, 0.95],
        )
    )
    assert out["verdict"] == "server_cpu"  # both from t=1.5; the order of VERDICTS breaks the tie
    assert out["saturated"]["server_cpu"]["t"] == 1.5
    assert out["saturated"]["client_cpu"]["t"] == 1.5
    out = attribute(
        samples(server_cpu_max=[0.1, 0.1, 0.1, 0.95, 0.95], client_cpu_max=[0.1, 0.95, 0.95, 0.95, 0.9])
    )
    assert out["verdict"] == "client_cpu" and out["label"] == "client CPU"


def test_network_against_the_link_rate() -> None:
    rows = samples(
        net_tx_bps=[0.5e6, 0.95e6, 0.99e6, 1.0e6], net_rx_bps=[0.1e6] * 4, server_cpu_max=[0.1] * 4
    )
    out = attribute(rows, link_bps=1e6)
    assert out["verdict"] == "network"
    assert "of a 1 Mbit/s link" in out["line"]
    assert attribute(rows)["verdict"] == "none"  # without a known link rate there is nothing to compare


def test_connection_failures_are_dated_by_the_first_error() -> None:
    out = attribute(
        samples(server_cpu_max=[0.1, 0.1, 0.95, 0.95]),
        connection_failures=3,
        errors_by_type={"transport:refused": 3, "jsonrpc:-32000": 1},
        first_error_s=0.0,
    )
    assert out["verdict"] == "connections"
    assert "3 failed connections; transport:refused x3" in out["line"]
    assert set(out["saturated"]) == {"connections", "server_cpu"}
