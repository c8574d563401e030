"""The server's gauges in the live view: per second of the run's clock, peaks merged across deltas."""

from __future__ import annotations

from benchmarks.live.server import ServerSeconds, per_second


def test_scrapes_become_per_second_peaks_on_the_runs_clock() -> None:
    t0 = 1000.0
    samples = [
        (999.5, {"requests_running": 9.0}),  # before the run: left out
        (1000.2, {"requests_running": 3.0, "requests_waiting": 0.0}),
        (1000.7, {"requests_running": 8.0, "requests_waiting": 2.0, "kv_cache_usage": 0.4}),
        (1001.1, {"requests_running": 8.0, "requests_waiting": 5.0}),
    ]
    assert per_second(samples, t0) == {
        "0": {"server_running": 8.0, "server_waiting": 2.0, "server_kv_cache": 0.4},
        "1": {"server_running": 8.0, "server_waiting": 5.0},
    }


def test_the_aggregator_keeps_peaks_and_puts_them_in_each_point() -> None:
    server = ServerSeconds()
    assert server.merge({"server": {"3": {"server_running": 4.0}}}) == {3}
    assert server.merge({"server": {"3": {"server_running": 2.0, "server_waiting": 1.0}}}) == {3}
    assert server.merge({"windows": {}}) == set()
    point = server.decorate({"t": 3, "ttft_p99": 120.0})
    assert point == {"t": 3, "ttft_p99": 120.0, "server_running": 4.0, "server_waiting": 1.0}
    assert server.decorate({"t": 4}) == {"t": 4}
