"""Thinking-budget sweeps: the same prompts at each budget, accuracy and answer quality against it.

A budget is a request parameter: ``max_tokens`` levels (``max_tokens=512,1024,4096``) or OpenAI's
``reasoning_effort`` (``reasoning_effort=low,medium,high``). Each level is a run of its own (the
load profile unchanged), so its latency, accuracy, empty-answer and truncated-thinking rates are
measured under the same load; :func:`budget_report` lines them up against the budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from runner.spec import RunSpec

__all__ = ["BUDGET_PARAMS", "budget_report", "budget_specs", "parse_budget"]

BUDGET_PARAMS = ("max_tokens", "reasoning_effort")
EFFORTS = ("minimal", "low", "medium", "high")

Level = int | str


def parse_budget(text: str) -> tuple[str, list[Level]]:
    """``max_tokens=512,1024`` → ("max_tokens", [512, 1024]); ``reasoning_effort=low,high`` likewise."""
    param, sep, raw = text.partition("=")
    param = param.strip()
    if not sep or param not in BUDGET_PARAMS:
        raise ValueError(f"budget {text!r}: write {BUDGET_PARAMS[0]}=256,1024 or {BUDGET_PARAMS[1]}=low,high")
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values:
        raise ValueError(f"budget {text!r} lists no levels")
    if param == "reasoning_effort":
        unknown = [v for v in values if v not in EFFORTS]
        if unknown:
            raise ValueError(f"budget {text!r}: reasoning_effort is one of {', '.join(EFFORTS)}")
        return param, list(values)
    if not all(v.isdigit() and int(v) > 0 for v in values):
        raise ValueError(f"budget {text!r}: max_tokens levels are positive integers")
    return param, [int(v) for v in values]


def budget_specs(spec: RunSpec, param: str, levels: Sequence[Level]) -> list[RunSpec]:
    """One spec per level: ``param`` set on the endpoint (and every A/B variant); with max_tokens, a
    prompt's own max_tokens gives way so the budget is what the server sees."""
    specs = []
    for level in levels:
        s = RunSpec.from_dict(spec.to_dict())
        for ep in (s.endpoint, *s.variants):
            ep.params[param] = level
        if param == "max_tokens":
            s.prompts = [dataclasses.replace(p, max_tokens=None) for p in s.prompts]
        specs.append(s)
    return specs


def _rate(block: Mapping[str, Any] | None, key: str) -> float | None:
    return None if not block or not block.get(key) else block[key].get("rate")


def budget_report(
    param: str, levels: Sequence[Level], summaries: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Per budget level: accuracy (with its interval), empty-answer, truncated-thinking and leak rates,
    output tokens and latency, from each level's run summary."""
    points = []
    for level, s in zip(levels, summaries, strict=True):
        acc, q = s.get("accuracy"), s.get("quality")
        points.append(
            {
                "budget": level,
                "accuracy": acc if isinstance(acc, Mapping) else None,
                "empty_answer_rate": _rate(q, "empty_answer"),
                "truncated_thinking_rate": _rate(q, "truncated_thinking"),
                "cut_by_length_rate": _rate(q, "cut_by_length"),
                "reasoning_leak_rate": _rate(q, "reasoning_leak"),
                "output_tokens": s.get("tokens", {}).get("billed_output"),
                "thinking_tokens": s.get("tokens", {}).get("thinking"),
                "ttft_ms": s.get("ttft_ms"),
                "e2e_ms": s.get("e2e_ms"),
                "requests": s.get("requests"),
            }
        )
    return {"param": param, "levels": list(levels), "points": points}
