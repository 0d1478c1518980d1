"""Per-second windows, their rows and the sliding spans built from them."""

from __future__ import annotations

import orjson
import pytest

from pytest_mcpswarm.stats.histogram import LatencyHistogram
from pytest_mcpswarm.stats.window import TimeSeries, Window


def hist(*values: int) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    return h


def series_of(per_second: dict[int, list[int]], elapsed: float = 0.0) -> TimeSeries:
    s = TimeSeries(elapsed)
    for index, values in per_second.items():
        win = s.window(index)
        for v in values:
            win.latency.record(v)
        win.ok += len(values)
    return s


def test_window_is_created_once_and_negative_index_refused() -> None:
    s = TimeSeries()
    assert s.window(3) is s.window(3)
    assert s.window_at(3.999) is s.window(3)
    assert s.window_at(4.0) is s.window(4)
    with pytest.raises(ValueError, match=">= 0"):
        s.window(-1)
    with pytest.raises(ValueError, match=">= 0"):
        s.window_at(-0.5)


def test_window_add_sums_every_field() -> None:
    a = Window(hist(1, 2), ok=2, errors=1, timeouts=3, not_sent=4, connects=5, disconnects=6)
    b = Window(hist(3), ok=1, errors=10, timeouts=30, not_sent=40, connects=50, disconnects=60)
    a.add(b)
    assert a == Window(hist(1, 2, 3), ok=3, errors=11, timeouts=33, not_sent=44, connects=55, disconnects=66)


def test_merge_is_exact_and_elapsed_takes_the_max() -> None:
    a = series_of({0: [10, 20], 2: [30]}, elapsed=2.5)
    b = series_of({0: [40], 1: [50]}, elapsed=1.7)
    a.merge(b)
    assert a == series_of({0: [10, 20, 40], 1: [50], 2: [30]}, elapsed=2.5)
    assert a != series_of({0: [10, 20, 40], 1: [50], 2: [30]}, elapsed=3.0)
    assert a.__eq__(1) is NotImplemented


def test_length_and_seconds_covered() -> None:
    s = series_of({0: [1], 4: [1]}, elapsed=2.5)
    assert s.length == 5  # the last window with data wins over elapsed
    assert TimeSeries(2.5).length == 3
    assert TimeSeries().length == 0
    assert [s.seconds_covered(i) for i in range(5)] == [1.0, 1.0, 0.5, 1.0, 1.0]


def test_rows_fill_gaps_and_count_connections_as_a_running_sum() -> None:
    s = series_of({0: [1000, 2000, 3000], 2: [500]}, elapsed=2.5)
    s.window(0).connects = 3
    s.window(1).errors = 4
    s.window(1).timeouts = 1
    s.window(1).not_sent = 2
    s.window(2).disconnects = 1
    rows = s.rows()
    assert [r["t"] for r in rows] == [0, 1, 2]
    assert [r["connections"] for r in rows] == [3, 3, 2]
    assert [r["rps"] for r in rows] == [3.0, 4.0, 2.0]  # window 2 covers half a second
    # Percentiles report the top of their HDR slot: 3000 us sits in [3000, 3001].
    assert rows[0]["p50_ms"] == 2.0 and rows[0]["p99_ms"] == 3.001
    assert rows[1]["p50_ms"] is None and rows[1]["p95_ms"] is None  # no samples, no latency
    assert (rows[1]["errors"], rows[1]["timeouts"], rows[1]["not_sent"]) == (4, 1, 2)
    assert rows[2]["p95_ms"] == 0.5


def test_sliding_equals_brute_force_merge() -> None:
    per_second = {i: [100 * (i + 1) + j for j in range(i + 1)] for i in range(12) if i != 5}
    s = series_of(per_second, elapsed=11.5)
    s.window(3).errors = 2
    s.window(7).not_sent = 5
    spans = list(s.sliding(4))
    assert [sp.start for sp in spans] == list(range(0, 9))
    for sp in spans:
        members = range(sp.start, sp.start + 4)
        expected = LatencyHistogram.merged(hist(*per_second.get(i, [])) for i in members)
        assert sp.latency == expected
        assert sp.ok == sum(len(per_second.get(i, [])) for i in members)
        assert sp.errors == (2 if 3 in members else 0)
        assert sp.not_sent == (5 if 7 in members else 0)
        assert sp.seconds == (3.5 if 11 in members else 4.0)
        assert sp.width == 4


def test_sliding_step_short_run_and_empty() -> None:
    s = series_of({i: [i + 1] for i in range(10)})
    assert [sp.start for sp in s.sliding(3, step=3)] == [0, 3, 6]
    only = list(s.sliding(60))
    assert len(only) == 1 and only[0].width == 10 and only[0].ok == 10
    assert list(TimeSeries().sliding(10)) == []
    with pytest.raises(ValueError, match=">= 1"):
        list(s.sliding(0))
    with pytest.raises(ValueError, match=">= 1"):
        list(s.sliding(2, step=0))


def test_sliding_values_uses_the_metric_table() -> None:
    s = series_of({0: [1000], 1: [9000], 2: []}, elapsed=3.0)
    # 9000 us sits in the 8-us slot [9000, 9007]; max stays exact.
    assert s.sliding_values("p99", 1) == [(0, 1000.0), (1, 9007.0), (2, None)]
    assert s.sliding_values("rps", 2) == [(0, 1.0), (1, 0.5)]
    assert s.sliding_values("max", 2) == [(0, 9000.0), (1, 9000.0)]


def test_to_dict_round_trips_through_json() -> None:
    s = series_of({0: [1, 2], 7: [3]}, elapsed=7.25)
    s.window(7).connects = 2
    data = orjson.loads(orjson.dumps(s.to_dict()))
    assert [index for index, _ in data["windows"]] == [0, 7]
    assert TimeSeries.from_dict(data) == s


def test_only_the_newest_window_keeps_a_full_histogram() -> None:
    s = series_of({0: [1, 2], 1: [3], 2: [4, 5]})
    assert [s.windows[i].latency.sealed for i in range(3)] == [True, True, False]
    late = s.window(1)  # exists: handed back as it is
    assert late.latency.sealed
    gap = TimeSeries()
    gap.window(5)
    assert gap.window(2).latency.sealed  # created behind the newest: sealed from the start
    assert not gap.window(5).latency.sealed


def test_writing_into_a_sealed_window_still_counts() -> None:
    s = series_of({0: [10], 1: [20]})
    s.window(0).latency.record(30)
    s.window(0).ok += 1
    assert s == series_of({0: [10, 30], 1: [20]})
    assert s.rows()[0]["p99_ms"] == 0.03


def test_sealed_windows_merge_and_round_trip_exactly() -> None:
    a = series_of({i: [100 * i + 1, 7] for i in range(6)}, elapsed=6.0)
    b = series_of({i: [5 * i + 3] for i in range(0, 8, 2)}, elapsed=7.5)
    a.merge(b)
    expected = {
        i: ([100 * i + 1, 7] if i < 6 else []) + ([5 * i + 3] if i % 2 == 0 else []) for i in range(7)
    }
    assert a == series_of(expected, elapsed=7.5)
    assert [a.windows[i].latency.sealed for i in range(7)] == [True] * 6 + [False]
    back = TimeSeries.from_dict(orjson.loads(orjson.dumps(a.to_dict())))
    assert back == a
    assert [back.windows[i].latency.sealed for i in range(7)] == [True] * 6 + [False]
