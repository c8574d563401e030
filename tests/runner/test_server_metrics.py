"""Server metrics: exposition parsed by prometheus_client, known names mapped, counters as rates,
scrapes lined up with the run's clock, failures reported without failing anything."""

from __future__ import annotations

import asyncio
import time

import pytest

from runner.server_metrics import ServerMetricsScraper, parse_exposition
from runner.simulator import SimulatorProcess

VLLM = """# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{model_name="m",engine="0"}} {running}
vllm:num_requests_running{{model_name="m",engine="1"}} 1
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{model_name="m"}} {waiting}
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{{model_name="m"}} 0.5
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{{model_name="m"}} {queries}
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{{model_name="m"}} {hits}
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{{model_name="m"}} {generated}
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{le="0.1"}} 3
vllm:time_to_first_token_seconds_count 3
vllm:time_to_first_token_seconds_sum 0.2
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{{block_size="16"}} 1
# TYPE process_cpu_seconds counter
process_cpu_seconds_total 12
"""

LLAMACPP = """# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing {running}
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 0
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total {prompt}
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total {cached}
# TYPE llamacpp:spec_decode_num_draft_tokens_total counter
llamacpp:spec_decode_num_draft_tokens_total {draft}
# TYPE llamacpp:spec_decode_num_accepted_tokens_total counter
llamacpp:spec_decode_num_accepted_tokens_total {accepted}
"""


def _scraper_with(
    texts: list[str], step_ns: int = 250_000_000, keep: str = r"^vllm:"
) -> ServerMetricsScraper:
    scraper = ServerMetricsScraper(["http://x/metrics"], keep=keep)
    ep = scraper.endpoints[0]
    for i, text in enumerate(texts):
        values, counters = parse_exposition(text)
        ep.counters |= counters
        ep.scrapes.append((1_000_000_000 + i * step_ns, values))
    return scraper


def test_vllm_names_map_to_common_names_and_counters_become_rates() -> None:
    texts = [
        VLLM.format(running=3, waiting=0, queries=1000, hits=0, generated=0),
        VLLM.format(running=7, waiting=5, queries=2000, hits=750, generated=100),
    ]
    report = _scraper_with(texts).report(t0_ns=1_000_000_000)
    s = report["series"]
    assert s["requests_running"] == [[0.0, 4.0], [0.25, 8.0]]  # summed over the engines' labels
    assert s["requests_waiting"][-1] == [0.25, 5.0]
    assert s["kv_cache_usage"][-1][1] == 0.5  # the older gpu_cache_usage_perc name
    assert s["prefix_cache_hit_rate"] == [[0.25, 0.75]]  # increases: 750 hits of 1000 queries
    assert s["generation_tokens_per_s"] == [[0.25, pytest.approx(400.0)]]
    assert report["summary"]["requests_running"] == {"p50": 6.0, "max": 8.0}


def test_unknown_metrics_are_kept_raw_only_through_the_filter() -> None:
    texts = [VLLM.format(running=1, waiting=0, queries=0, hits=0, generated=0)] * 2
    s = _scraper_with(texts).report(t0_ns=0)["series"]
    assert "vllm:cache_config_info" in s
    assert "vllm:time_to_first_token_seconds_count_per_s" in s
    assert not any(name.startswith("process_") for name in s)
    assert not any(name.endswith("_bucket") for name in s)


def test_llamacpp_cache_hits_count_cached_against_all_prompt_tokens() -> None:
    texts = [
        LLAMACPP.format(running=2, prompt=100, cached=0, draft=0, accepted=0),
        LLAMACPP.format(running=4, prompt=200, cached=300, draft=40, accepted=30),
    ]
    s = _scraper_with(texts).report(t0_ns=0)["series"]
    assert s["requests_running"][-1][1] == 4
    assert s["prefix_cache_hit_rate"][0][1] == pytest.approx(0.75)  # 300 cached of 300 + 100 processed
    assert s["spec_decode_acceptance_rate"][0][1] == pytest.approx(0.75)


def test_a_counter_reset_gives_no_rate_for_that_interval() -> None:
    texts = [
        VLLM.format(running=1, waiting=0, queries=0, hits=0, generated=500),
        VLLM.format(running=1, waiting=0, queries=0, hits=0, generated=20),
    ]
    assert "generation_tokens_per_s" not in _scraper_with(texts).report(t0_ns=0)["series"]


async def test_scrapes_the_simulator_and_reports_a_dead_endpoint_without_failing() -> None:
    async with SimulatorProcess(max_batch=2, ttft_ms=50, itl_ms=5, output_tokens=8) as sim:
        scraper = ServerMetricsScraper([sim.url + "/metrics", "http://127.0.0.1:9/metrics"], interval_s=0.1)
        t0 = time.perf_counter_ns()
        scraper.start()
        await asyncio.sleep(0.55)
        await scraper.stop()
    report = scraper.report(t0)
    live, dead = report["endpoints"]
    assert live["scrapes"] >= 4 and live["failures"] == 0
    assert dead["scrapes"] == 0 and dead["failures"] >= 4 and dead["last_error"]
    assert report["errors"] and "127.0.0.1:9" in report["errors"][0]
    times = [t for t, _ in report["series"]["requests_running"]]
    assert times == sorted(times) and 0 <= times[0] < 0.3
