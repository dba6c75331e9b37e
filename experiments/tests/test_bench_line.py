"""experiments/station/bench_line.py: the figures of a line-rate run (no broker, no station, no model)."""

from __future__ import annotations

import pytest

from experiments.station import bench_line


def test_rates_read_images_per_second_and_shares_of_the_limit() -> None:
    rates = bench_line.parse_rates("2, 5,0.8x,1.2X")
    assert [rate.resolve(20.0) for rate in rates] == [2.0, 5.0, 16.0, 24.0]
    with pytest.raises(ValueError, match="needs benchmark_app"):
        rates[2].resolve(None)
    for bad in ("", "0", "-1", "fast", "nanx"):
        with pytest.raises(ValueError):
            bench_line.parse_rates(bad)


def test_the_limit_adds_the_cost_of_each_model() -> None:
    # the demo's three IRs: 317, 30 and 67 images/s give about 19.5 images/s together
    assert bench_line.line_limit([317.0, 30.0, 67.0]) == pytest.approx(19.5, abs=0.1)
    assert bench_line.line_limit([50.0]) == 50.0
    assert bench_line.sequential_limit([10.0, 40.0]) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        bench_line.line_limit([10.0, 0.0])


def test_a_rate_counts_latency_to_the_first_verdict_lost_parts_and_duplicates() -> None:
    triggers = {"a": 0.0, "b": 0.1, "c": 0.2, "d": 0.3}
    arrivals = {"a": [0.05, 0.5], "b": [0.2], "c": [0.4], "x": [0.45]}  # d lost, a twice, x not ours
    row = bench_line.summarise(triggers, arrivals, {"a": "OK", "b": "NG", "c": "OK"}, 10.0)
    assert row["delivered"] == 3 and row["lost"] == 1 and row["duplicates"] == 1 and row["unexpected"] == 1
    assert row["throughput_per_s"] == pytest.approx(3 / 0.4)
    assert row["p50_ms"] == pytest.approx(100.0) and row["max_ms"] == pytest.approx(200.0)
    assert row["verdicts"] == {"OK": 2, "NG": 1} and row["sent_per_s"] == pytest.approx(10.0)


def test_targets_and_the_rate_where_latency_climbs() -> None:
    rows = [{"offered_per_s": 5.0, "throughput_per_s": 5.0, "p99_ms": 150.0, "lost": 0},
            {"offered_per_s": 8.0, "throughput_per_s": 8.0, "p99_ms": 190.0, "lost": 0},
            {"offered_per_s": 10.0, "throughput_per_s": 9.2, "p99_ms": 900.0, "lost": 0}]
    targets = bench_line.verdict_targets(rows, single_p50_ms=100.0, limit=10.0)
    assert targets["latency_climbs_at_per_s"] == 10.0
    assert targets["throughput_met"] and targets["sustained_share"] == pytest.approx(0.92)
    assert targets["p99_at_80pct_ms"] == 190.0 and targets["latency_met"]
    rows[2]["lost"] = 1
    assert not bench_line.verdict_targets(rows, single_p50_ms=100.0, limit=10.0)["throughput_met"]
