"""The columnar summary (what finalize runs on big runs) gives exactly today's ``summarize``."""

from __future__ import annotations

import itertools
import random
import tempfile
import tracemalloc
from typing import Any

import numpy as np
import pytest

from runner import Columns, Prompt, Slo, columns_from, pack_series, summarize, summarize_columns
from runner.exact import Exact, exact_distribution
from runner.summary import distribution

OUTCOMES = ["success"] * 12 + [
    "http_error",
    "timeout",
    "rate_limited",
    "cancelled",
    "empty_answer",
    "truncated_thinking",
    "length_stopped",
]


def record(i: int, rng: random.Random) -> dict[str, Any]:
    outcome = rng.choice(OUTCOMES)
    ok = outcome == "success"
    chunks = rng.randint(0, 12) if ok or outcome == "empty_answer" else 0
    server_tokens = rng.random() < 0.5
    t, packets = rng.uniform(20, 400), [["role", 5.0, 0, 0]]
    for _ in range(chunks):
        t += rng.expovariate(1 / 12)
        packets.append([rng.choice(["answer", "thinking"]), t, rng.randint(1, 3) if server_tokens else 0, 4])
        if rng.random() < 0.1:
            packets.append(["heartbeat", t, 0, 0])
    content = packets[1:]  # the gaps the engine would give: between any two packets after the role
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(content)]
    maybe = lambda v: v if rng.random() > 0.15 else None  # noqa: E731
    answer = rng.choice(
        ["", "", "42", "  ", "Okay, so I need to add", "<think>hm</think> 7", "The answer is 3"]
    )
    out_tokens = maybe(rng.randint(0, 300))
    return {
        "request_id": f"r{i}",
        "prompt_id": f"p{i % 37}",
        "shard": i % 2,
        "level": (i % 3) if i % 5 else None,
        "variant": i % 2,
        "scheduled_s": i * 0.01 + rng.random() * 0.001,
        "schedule_lag_ms": rng.expovariate(2),
        "outcome": outcome,
        "finish_reason": rng.choice(["stop", "length", None]),
        "length_stopped": rng.random() < 0.2,
        "first_chunk_ms": maybe(rng.uniform(10, 300)),
        "ttft_ms": maybe(rng.uniform(10, 400)) if ok else None,
        "ttft_answer_ms": maybe(rng.uniform(10, 500)),
        "thinking_ms": maybe(rng.uniform(0, 100)),
        "e2e_ms": maybe(rng.choice([0.0, rng.uniform(100, 3000)])),
        "itl_ms": gaps,
        "tpot_ms": maybe(rng.uniform(1, 30)),
        "tokens_per_s": maybe(rng.uniform(5, 200)),
        "input_tokens": maybe(rng.choice([0, 200, 900, 2000, 5000, 20000])),
        "output_tokens": out_tokens,
        "thinking_tokens": maybe(rng.randint(0, 50)),
        "usage_input_tokens": maybe(rng.randint(0, 3000)),
        "usage_output_tokens": maybe(rng.randint(0, 300)),
        "client_input_tokens": maybe(rng.choice([100, 1500, 3000, 9000, 40000])),
        "client_output_tokens": maybe(rng.randint(0, 300)),
        "cached_input_tokens": maybe(rng.choice([0, 0, 128, 512])),
        "tokens_estimated": rng.random() < 0.1,
        "content_chunks": chunks,
        "answer_chars": len(answer) if rng.random() < 0.9 else 5,
        "answer_text": answer,
        "packets": packets,
        "correct": rng.choice([None, True, False]) if i % 4 else None,
    }


PROMPTS = [
    Prompt(id=f"p{i}", expected="42", meta={"subject": f"s{i % 3}", "level": i % 2}) for i in range(0, 37, 2)
]


@pytest.mark.parametrize("length_is_failure", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_columns_give_exactly_the_summary_of_the_records(seed: int, length_is_failure: bool) -> None:
    rng = random.Random(seed)
    records = [record(i, rng) for i in range(400)]
    kwargs: dict[str, Any] = {
        "duration_s": 12.5,
        "bucket_edges": [0, 1024, 4096, 16384],
        "slo": Slo(ttft_ms=250.0, tokens_per_s=20.0, e2e_ms=2500.0),
        "price_in_per_1k": 0.5,
        "price_out_per_1k": 1.5,
        "length_is_failure": length_is_failure,
        "prompts": PROMPTS,
    }
    expected = summarize(records, **kwargs)
    assert expected["requests"]["failures"] and len(expected["sweep"]) == 3 and expected["accuracy"]["graded"]
    assert expected["chunks"]["sources"].keys() >= {"server", "estimated_by_chars", "none"}
    # from whole records, and from lean ones (no packets, no gaps) with their stored series blobs
    assert summarize_columns(columns_from(records), **kwargs) == expected
    lean = [{k: v for k, v in r.items() if k not in ("packets", "itl_ms")} for r in records]
    assert summarize_columns(columns_from(lean, [pack_series(r) for r in records]), **kwargs) == expected


def test_a_mask_gives_the_summary_of_that_subset() -> None:
    rng = random.Random(9)
    records = [record(i, rng) for i in range(300)]
    columns = columns_from(records)
    for variant in (0, 1):
        mine = [r for r in records if r["variant"] == variant]
        mask = columns.f("variant") == variant
        assert summarize_columns(columns, duration_s=3.0, mask=mask, prompts=PROMPTS) == summarize(
            mine, duration_s=3.0, prompts=PROMPTS
        )


def test_no_records() -> None:
    assert summarize_columns(columns_from([]), duration_s=1.0) == summarize([], duration_s=1.0)


# --- bounded memory: the gaps and chunks are read a part at a time, never held together -------------


def _split(values: np.ndarray, rng: random.Random) -> list[np.ndarray]:
    cuts = sorted(rng.sample(range(values.size + 1), min(values.size + 1, rng.randint(0, 9))))
    return [values[a:b] for a, b in itertools.pairwise([0, *cuts, values.size])]


@pytest.mark.parametrize(
    "values",
    [
        np.array([3.5]),
        np.array([2.0, 1.0]),
        np.array([0.0, -0.0, 0.0, 5.0, 0.0]),
        np.zeros(1000),
        np.repeat([1.0, 2.0, 3.0], [500, 3, 700]),
        np.random.default_rng(1).lognormal(np.log(12), 0.3, 5000),
        np.random.default_rng(2).normal(0, 1e-3, 5000),  # negatives and values across many octaves
        np.concatenate([np.zeros(40_000), np.random.default_rng(3).exponential(8, 100_000)]),  # > 1 block
        np.random.default_rng(4).integers(0, 20, 70_000).astype(np.float64),  # ties everywhere
    ],
)
def test_exact_distribution_of_a_stream_is_distribution_of_the_whole(values: np.ndarray) -> None:
    rng = random.Random(values.size)
    for _ in range(3):
        parts = _split(values, rng)
        assert exact_distribution(parts) == distribution(values)
    assert exact_distribution([]) == distribution(np.empty(0))


def test_the_second_pass_keeps_only_the_bins_of_the_wanted_ranks() -> None:
    values = np.random.default_rng(5).lognormal(np.log(12), 0.3, 200_000)
    e = Exact()
    e.see(values)
    e.plan()
    e.keep(values)
    assert e.result() == distribution(values)
    assert 0 < e.kept_values() < values.size / 100


def _chunked(records: list[dict[str, Any]], size: int, spill: Any) -> Columns:
    lean = [{k: v for k, v in r.items() if k not in ("packets", "itl_ms")} for r in records]
    blobs = [pack_series(r) for r in records]
    return Columns.concat(
        [
            columns_from(lean[i : i + size], blobs[i : i + size], spill=spill)
            for i in range(0, len(records), size)
        ]
    )


@pytest.mark.parametrize("size", [1, 7, 64, 400])
@pytest.mark.parametrize("spilled", [False, True])
def test_the_summary_does_not_depend_on_how_the_records_were_chunked(size: int, spilled: bool) -> None:
    rng = random.Random(11)
    records = [record(i, rng) for i in range(400)]
    kwargs: dict[str, Any] = {"duration_s": 4.0, "bucket_edges": [0, 1024, 4096], "prompts": PROMPTS}
    with tempfile.TemporaryFile(buffering=0) as spill:
        columns = _chunked(records, size, spill if spilled else None)
        assert len(columns.series.parts) == -(-400 // size)
        assert summarize_columns(columns, **kwargs) == summarize(records, **kwargs)
        for variant in (0, 1):
            mine = [r for r in records if r["variant"] == variant]
            mask = columns.f("variant") == variant
            assert summarize_columns(columns, mask=mask, **kwargs) == summarize(mine, **kwargs)


def _long_record(i: int, rng: np.random.Generator) -> dict[str, Any]:
    t = 150.0 + np.concatenate([[0.0], np.cumsum(rng.lognormal(np.log(12), 0.3, 128))])
    return {
        "request_id": f"r{i}",
        "outcome": "success",
        "ttft_ms": 150.0,
        "e2e_ms": float(t[-1]),
        "input_tokens": [300, 2000, 6000][i % 3],
        "output_tokens": 129,
        "content_chunks": 129,
        "itl_ms": np.diff(t).tolist(),
        "packets": [["answer", float(x), 1, 4] for x in t],
    }


def _summary_peak(n: int, chunk: int) -> tuple[int, int]:
    """(peak bytes traced while summarising n spilled records, bytes their gaps and chunks take)."""
    rng = np.random.default_rng(n)
    with tempfile.TemporaryFile(buffering=0) as spill:
        columns = _chunked([_long_record(i, rng) for i in range(n)], chunk, spill)
        held = 8 * int(columns.itl_len.sum() + 2 * columns.chunk_len.sum())
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            summarize_columns(columns, duration_s=10.0, bucket_edges=[0, 1024, 4096])
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    return peak, held


def test_summary_memory_grows_with_the_chunk_not_with_the_gaps_of_every_record() -> None:
    small, held_small = _summary_peak(500, chunk=100)
    big, held_big = _summary_peak(4000, chunk=100)
    # eight times the records: holding their gaps would add (held_big - held_small) bytes
    assert big - small < 0.2 * (held_big - held_small), (small, big, held_small, held_big)
