"""The engine's verdict on itself: loop stalls make it client-bound, one hiccup does not."""

from __future__ import annotations

from runner.monitor import LAG_SECOND_LIMIT_MS, EngineMonitor


def monitor_with(second_lags_ms: list[float]) -> EngineMonitor:
    m = EngineMonitor()
    m.seconds = [{"lag_ms_max": lag, "cpu": 0.3} for lag in second_lags_ms]
    m.cpu_per_s = [0.3] * len(second_lags_ms)
    m.lags_ms = [0.2] * 100 * len(second_lags_ms)  # p99 stays low: only the per-second maxima differ
    return m


def report(m: EngineMonitor) -> dict[str, object]:
    return m.report(
        schedule_lags_ms=[0.05] * 100, late_sends=0, capped_sends=0, total_sends=100, token_mismatch_pct=None
    )


async def test_a_single_hiccup_on_a_shared_machine_keeps_the_run_trustworthy() -> None:
    r = report(monitor_with([1.0] * 59 + [150.0]))
    assert r["verdict"] == "trustworthy" and r["stalled_seconds"] == 1


async def test_repeated_loop_stalls_make_the_client_the_bottleneck() -> None:
    r = report(monitor_with([1.0] * 55 + [LAG_SECOND_LIMIT_MS + 10] * 5))
    assert r["verdict"] == "client-bound" and r["saturated"] is True
    assert any("stalled over" in str(reason) for reason in r["reasons"])  # type: ignore[attr-defined]


async def test_lag_max_is_reported_beside_the_percentiles() -> None:
    r = report(monitor_with([1.0, 2.0, 3.0]))
    assert r["lag_ms_max"] == 0.2 and r["stalled_seconds"] == 0
