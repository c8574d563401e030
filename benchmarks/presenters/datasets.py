"""A dataset version's page: lengths, buckets and the context check in a chosen endpoint's tokenizer, and
what one pass of a plan over it costs. Every count shown names its tokenizer and whether it is an
estimate."""

from __future__ import annotations

from typing import Any

from benchmarks import bridge
from benchmarks.charts.datasets import token_histogram
from benchmarks.models import Dataset, DatasetVersion, Endpoint, Plan, Team
from benchmarks.models.datasets import tokenizer_ref
from benchmarks.selectors.datasets import (
    counts_done,
    counts_for_sending,
    item_rows,
    length_summary,
    over_context,
    plans_using,
    progress,
    runs_of_version,
    team_edges,
    tokenizer_choices,
    versions_of,
)
from benchmarks.selectors.objects import in_team

SAMPLE_ROWS = 50


def version_page(
    dataset: Dataset,
    version: DatasetVersion | None,
    *,
    plan_id: int | None,
    endpoint_id: int | None,
    tokenizer: str | None,
) -> dict[str, Any]:
    """The page of ``version``, seen through a plan and an endpoint when the user picked them."""
    team: Team = dataset.team
    plans = plans_using(dataset=dataset)
    plan = plans.filter(pk=plan_id).first() if plan_id else None
    endpoints = in_team(Endpoint, team=team)
    endpoint = (endpoints.filter(pk=endpoint_id).first() if endpoint_id else None) or (
        plan.endpoint if plan else None
    )
    context: dict[str, Any] = {
        "dataset": dataset,
        "object": dataset,
        "version": version,
        "versions": versions_of(dataset)[:50],
        "plans": plans,
        "plan": plan,
        "endpoints": endpoints,
        "endpoint": endpoint,
        "tokenizers": tokenizer_choices(team),
    }
    if version is not None:
        context |= _analysis(dataset, version, plan=plan, endpoint=endpoint, tokenizer=tokenizer)
    return context


def _analysis(
    dataset: Dataset,
    version: DatasetVersion,
    *,
    plan: Plan | None,
    endpoint: Endpoint | None,
    tokenizer: str | None,
) -> dict[str, Any]:
    wanted = tokenizer_ref(tokenizer or (endpoint.tokenizer if endpoint else dataset.tokenizer))
    counts = counts_done(version, wanted) or counts_for_sending(version, dataset.tokenizer)
    max_input = endpoint.max_input_tokens if endpoint else None
    context: dict[str, Any] = {
        "is_current": dataset.current_version() == version,
        "progress": progress(version),
        "wanted": wanted,
        "counts": counts,
        "counts_stand_in": counts is not None and counts.tokenizer != wanted,
        "rows": item_rows(version, counts, limit=SAMPLE_ROWS, max_input=max_input),
        "runs": runs_of_version(version=version),
    }
    if counts is not None:
        edges = team_edges(dataset.team)
        context["lengths"] = length_summary(counts, edges)
        context["histogram"] = token_histogram(
            list(counts.counts), estimated=counts.estimated, tokenizer=counts.tokenizer_name, limit=max_input
        )
        if endpoint is not None:
            context["over"] = over_context(version, counts, endpoint.max_input_tokens)
    if plan is not None and version.state == DatasetVersion.State.READY:
        context["estimate"] = plan_estimate(plan=plan, version=version)
    return context


def plan_estimate(*, plan: Plan, version: DatasetVersion) -> dict[str, Any]:
    """Tokens and cost of one pass over the prompts the plan would send from this version (and of
    ``max_requests`` requests when the plan has that limit). Output is at each prompt's max_tokens:
    an upper bound, since answers may stop earlier."""
    endpoint = plan.endpoint
    counts = counts_for_sending(version, endpoint.tokenizer)
    try:
        chosen = bridge.prompts(plan, version)
    except ValueError as exc:
        return {"plan": plan, "error": str(exc)}
    n = len(chosen)
    tokens_in = sum(p.input_tokens for p in chosen)
    tokens_out = sum(p.max_tokens or plan.max_tokens for p in chosen)
    price_in, price_out = float(endpoint.price_in_per_1k), float(endpoint.price_out_per_1k)
    per_pass = _cost(tokens_in, tokens_out, price_in, price_out)
    estimate: dict[str, Any] = {
        "plan": plan,
        "endpoint": endpoint,
        "prompts": n,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost": per_pass,
        "currency": endpoint.currency,
        "counted_with": (counts.tokenizer_name or counts.tokenizer) if counts else None,
        "estimated": counts is None or counts.estimated,
        "exact_tokenizer": counts is not None and counts.tokenizer == tokenizer_ref(endpoint.tokenizer),
        "endpoint_tokenizer": tokenizer_ref(endpoint.tokenizer),
    }
    if plan.max_requests and n:
        scale = plan.max_requests / n
        estimate["max_requests"] = {
            "requests": plan.max_requests,
            "input_tokens": round(tokens_in * scale),
            "output_tokens": round(tokens_out * scale),
            "cost": _cost(tokens_in * scale, tokens_out * scale, price_in, price_out),
        }
    return estimate


def _cost(tokens_in: float, tokens_out: float, price_in: float, price_out: float) -> dict[str, float]:
    cost_in, cost_out = tokens_in / 1000 * price_in, tokens_out / 1000 * price_out
    return {"input": cost_in, "output": cost_out, "total": cost_in + cost_out}
