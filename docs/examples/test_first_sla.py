import pytest


@pytest.mark.mcpswarm_sla("p99<50ms, error_rate<0.1%, not_sent==0")
def test_my_server_keeps_up(mcpswarm):
    """5 clients x 100 msg/s of the normal profile's mix for 10 s, against --mcpswarm-target."""
    result = mcpswarm("normal", clients=5, duration_s=10)
    assert result["requests"]["timeouts"] == 0
    assert result["connections"]["failed"] == 0
