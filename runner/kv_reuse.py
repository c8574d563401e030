"""KV-cache reuse: the same prompts cold, then warm, and what the server's prefix cache saves.

Pass 1 sends every prompt behind a marker no server has seen (``[kv-<tag>-<i>]`` at the very start),
so nothing of it can be cached: cold. Pass 2 sends the same marked prompts again with a short new
tail: everything but the tail is a prefix the server has just seen: warm. Both passes run the plan's
profile, each prompt once; the report gives TTFT per input-token bucket for both and the difference.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from runner.engine import RunResult, run
from runner.spec import Prompt, RunSpec

__all__ = ["PassRunner", "compare", "lines", "marked"]

TAIL = " Answer again, briefly."


def marked(prompt: Prompt, tag: str, index: int, tail: str = "") -> Prompt:
    """The prompt with an unseen marker in front (and ``tail`` after), text or chat messages."""
    mark = f"[kv-{tag}-{index}] "
    if prompt.messages:
        messages = [dict(m) for m in prompt.messages]
        first, last = messages[0], messages[-1]
        if isinstance(first.get("content"), str):
            first["content"] = mark + first["content"]
        if tail and isinstance(last.get("content"), str):
            last["content"] = last["content"] + tail
        return dataclasses.replace(prompt, messages=messages, input_tokens=0)
    return dataclasses.replace(prompt, text=mark + prompt.text + tail, input_tokens=0)


def _pass_spec(spec: RunSpec, prompts: list[Prompt]) -> RunSpec:
    out = RunSpec.from_dict(spec.to_dict())
    out.prompts, out.sample_order = prompts, "sequential"
    out.max_requests = min(len(prompts), spec.max_requests or len(prompts))
    out.duration_s = None
    return out


PassRunner = Callable[[RunSpec, str], Awaitable[RunResult]]


async def compare(
    spec: RunSpec,
    *,
    cancel: asyncio.Event | None = None,
    tag: str | None = None,
    run_pass: PassRunner | None = None,
) -> dict[str, Any]:
    """Both passes, then the block. ``run_pass(spec, "cold" | "warm")`` runs one pass (default: the
    engine, records kept in memory; a dashboard shard streams them to its sink instead)."""
    tag = tag or uuid.uuid4().hex[:10]

    async def engine(pass_spec: RunSpec, _name: str) -> RunResult:
        return await run(pass_spec, cancel=cancel)

    one = run_pass or engine
    cold_prompts = [marked(p, tag, i) for i, p in enumerate(spec.prompts)]
    warm_prompts = [marked(p, tag, i, TAIL) for i, p in enumerate(spec.prompts)]
    cold = await one(_pass_spec(spec, cold_prompts), "cold")
    if cancel is not None and cancel.is_set():
        return {
            "tag": tag,
            "cancelled": True,
            "all": _row("all", cold.summary, _NO_PASS),
            "buckets": [],
            "cold": _pass(cold.summary),
            "warm": None,
        }
    warm = await one(_pass_spec(spec, warm_prompts), "warm")
    return {
        "tag": tag,
        "all": _row("all", cold.summary, warm.summary),
        "buckets": [
            _row(b["label"], b, w)
            for b in cold.summary["buckets"]
            for w in warm.summary["buckets"]
            if w["label"] == b["label"]
        ],
        "cold": _pass(cold.summary),
        "warm": _pass(warm.summary),
    }


_NO_PASS: dict[str, Any] = {"requests": {"succeeded": 0}, "ttft_ms": {"p50": None, "p99": None}}


def _pass(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "requests": summary["requests"],
        "ttft_ms": summary["ttft_ms"],
        "prefix_cache": summary.get("prefix_cache"),
    }


def _row(label: str, cold: dict[str, Any], warm: dict[str, Any]) -> dict[str, Any]:
    c, w = cold["ttft_ms"]["p50"], warm["ttft_ms"]["p50"]
    saved = c - w if c is not None and w is not None else None
    return {
        "label": label,
        "requests": [cold["requests"]["succeeded"], warm["requests"]["succeeded"]],
        "cold_ttft_p50_ms": c,
        "warm_ttft_p50_ms": w,
        "cold_ttft_p99_ms": cold["ttft_ms"]["p99"],
        "warm_ttft_p99_ms": warm["ttft_ms"]["p99"],
        "ttft_saved_ms": saved,
        "ttft_saved_pct": saved * 100.0 / c if saved is not None and c else None,
    }


def lines(block: dict[str, Any]) -> list[str]:
    out = ["KV-cache reuse (TTFT p50, cold → warm):"]
    for row in [block["all"], *block["buckets"]]:
        if row["cold_ttft_p50_ms"] is None or row["warm_ttft_p50_ms"] is None:
            continue
        out.append(
            f"  {row['label']:<10} {row['cold_ttft_p50_ms']:.0f} ms → {row['warm_ttft_p50_ms']:.0f} ms"
            f"  (saves {row['ttft_saved_ms']:.0f} ms, {row['ttft_saved_pct']:.0f}%)"
        )
    return out
