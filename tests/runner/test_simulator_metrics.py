"""The simulator's /metrics: vLLM's names, consistent with its batch, prefix cache and MTP steps."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from runner.server_metrics import parse_exposition
from runner.simulator import SimulatorProcess


async def _metrics(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with session.get(url + "/metrics") as resp:
        return parse_exposition(await resp.text())[0]


async def _chat(session: aiohttp.ClientSession, base: str, text: str) -> list[str]:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": True}
    async with session.post(base + "/chat/completions", json=body) as resp:
        raw = (await resp.read()).decode()
    chunks = []
    for event in raw.split("\n\n"):
        data = event.removeprefix("data: ").strip()
        if data.startswith("{"):
            choices = json.loads(data)["choices"]
            if choices and choices[0]["delta"].get("content"):
                chunks.append(choices[0]["delta"]["content"])
    return chunks


async def test_running_is_the_batch_and_waiting_the_queue_behind_it() -> None:
    sim_process = SimulatorProcess(max_batch=2, ttft_ms=400, itl_ms=5, output_tokens=4)
    async with sim_process as sim, aiohttp.ClientSession() as session:
        streams = [asyncio.create_task(_chat(session, sim.base_url, "hi there")) for _ in range(5)]
        await asyncio.sleep(0.25)
        during = await _metrics(session, sim.url)
        await asyncio.gather(*streams)
        after = await _metrics(session, sim.url)
    assert during["vllm:num_requests_running"] == 2
    assert during["vllm:num_requests_waiting"] == 3
    assert during["vllm:kv_cache_usage_perc"] == 1.0
    assert after["vllm:num_requests_running"] == after["vllm:num_requests_waiting"] == 0
    assert after["vllm:generation_tokens"] == 20
    assert after["vllm:prompt_tokens"] == 10


async def test_prefix_hits_follow_the_prefix_cache() -> None:
    prompt = " ".join(f"w{i}" for i in range(64))
    for enabled, expected_hits in ((True, 64), (False, 0)):
        sim_process = SimulatorProcess(prefix_cache=enabled, ttft_ms=1, itl_ms=1, output_tokens=2)
        async with sim_process as sim, aiohttp.ClientSession() as session:
            await _chat(session, sim.base_url, prompt)
            await _chat(session, sim.base_url, prompt)
            m = await _metrics(session, sim.url)
        assert m["vllm:prefix_cache_queries"] == 128
        assert m["vllm:prefix_cache_hits"] == expected_hits


async def test_spec_accept_rate_sends_varying_chunks_and_counts_acceptance() -> None:
    config = {"spec_accept_rate": 0.6, "chunk_tokens": 4, "ttft_ms": 5, "itl_ms": 2, "output_tokens": 200}
    async with SimulatorProcess(**config) as sim, aiohttp.ClientSession() as session:
        chunks = await _chat(session, sim.base_url, "hello")
        m = await _metrics(session, sim.url)
    sizes = [len(c.split()) for c in chunks]  # one simulator token = one word
    assert sum(sizes) == 200
    assert set(sizes) >= {1, 2, 4} and max(sizes) <= 4
    assert m["vllm:spec_decode_num_draft_tokens"] == 3 * len(chunks)
    assert m["vllm:spec_decode_num_accepted_tokens"] == 200 - len(chunks)
    rate = m["vllm:spec_decode_num_accepted_tokens"] / m["vllm:spec_decode_num_draft_tokens"]
    assert 0.3 < rate < 0.7  # sequential acceptance at 0.6 until the first rejection
