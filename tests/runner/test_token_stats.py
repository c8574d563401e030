"""Token-level views: the client-side prefix-cache share, tokens per chunk, per-token ITL."""

from __future__ import annotations

import pytest

from runner.engine import run
from runner.records import RequestRecord
from runner.simulator import SimulatorProcess
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec
from runner.token_stats import chunk_stats, chunk_tokens, prefix_cache_share


def _rec(rows: list[tuple[str, float, int, int]], output_tokens: int) -> RequestRecord:
    return RequestRecord(
        request_id="r",
        prompt_id="p",
        packets=rows,
        output_tokens=output_tokens,
        content_chunks=sum(1 for row in rows if row[0] != "heartbeat"),
    )


def test_server_counts_win_and_a_gap_is_spread_over_its_tokens() -> None:
    rec = _rec([("answer", 100.0, 1, 4), ("answer", 110.0, 3, 12), ("heartbeat", 111.0, 0, 0)], 4)
    assert chunk_tokens(rec) == ([(100.0, 1.0), (110.0, 3.0)], "server")
    stats = chunk_stats([rec])
    assert stats["tokens_per_chunk_histogram"] == {"1": 1, "3": 1}
    assert stats["itl_per_token_ms"]["count"] == 3  # one 10 ms gap over three tokens
    assert stats["itl_per_token_ms"]["p50"] == pytest.approx(10 / 3)
    assert stats["tokens_per_chunk_mean"] == 2.0


def test_without_server_counts_tokens_follow_characters_and_say_so() -> None:
    rec = _rec([("answer", 100.0, 0, 10), ("answer", 120.0, 0, 30)], 8)
    chunks, source = chunk_tokens(rec)
    assert source == "estimated_by_chars"
    assert [n for _, n in chunks] == [2.0, 6.0]


def test_cached_share_counts_only_requests_that_reported_it() -> None:
    recs = [
        RequestRecord(request_id="a", prompt_id="a", input_tokens=1000, cached_input_tokens=750),
        RequestRecord(request_id="b", prompt_id="b", input_tokens=1000, cached_input_tokens=0),
        RequestRecord(request_id="c", prompt_id="c", input_tokens=5000),
    ]
    share = prefix_cache_share(recs)
    assert share["requests_reporting"] == 2 and share["requests_with_hits"] == 1
    assert share["cached_share"] == pytest.approx(0.375)


async def test_mtp_chunks_from_the_simulator_show_in_the_summary() -> None:
    config = {"spec_accept_rate": 0.7, "chunk_tokens": 4, "ttft_ms": 20, "itl_ms": 8, "output_tokens": 120}
    async with SimulatorProcess(**config) as sim:
        spec = RunSpec(
            endpoint=EndpointSpec(protocol="openai-chat", base_url=sim.base_url),
            prompts=[Prompt(id="0", text="hello there")],
            profile=ProfileSpec(kind="users", users=2),
            duration_s=None,
            max_requests=6,
        )
        result = await run(spec)
    chunks = result.summary["chunks"]
    assert 1.5 < chunks["tokens_per_chunk_mean"] < 4  # 1 + accepted drafts, at most 3 of them
    assert set(chunks["tokens_per_chunk_histogram"]) >= {"1", "4"}
    assert result.summary["itl_ms"]["p50"] == pytest.approx(8, abs=3)  # one step per ITL
    assert chunks["itl_per_token_ms"]["p50"] < result.summary["itl_ms"]["p50"]
