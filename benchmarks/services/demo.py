"""The demo's data: what ``manage.py demo`` (and the new-user browser test) seeds.

Two endpoints — a reasoning simulator (thinking packets, heartbeats while it prefills) and a
"quantized" variant of it that is faster but answers more MATH-500 items wrongly — both counting
tokens in Qwen3 like the client, so the token audit is clean. Three datasets counted in Qwen3:
MATH-500, the OpenAssistant conversations (both shipped) and a synthetic set spanning the 1k–48k
input buckets (seeded, generated locally). Two short plans, one per variant, that ``demo_compare``
runs for real through the ordinary run path and saves as a comparison; and the live demo plan.

Nothing here is faked: the runs measure the simulators like any endpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from benchmarks.models import Comparison, Dataset, Endpoint, LoadProfile, Membership, Plan, Run, Team
from benchmarks.services.comparisons import comparison_create
from benchmarks.services.datasets import dataset_add_builtin, dataset_update, synthetic_create
from benchmarks.services.runs.start import run_start

USERNAME = "demo"
TEAM = "Demo team"
TOKENIZER = "qwen3"
COMPARISON_TITLE = "Demo: BF16 against INT4 on MATH-500"

# Simulator settings (runner.simulator.SimConfig fields) of the two endpoints. Both find the
# MATH-500 question in the prompt and box the key's answer; the same seed makes the baseline's wrong
# items a subset of the quantized one's, as a quantized model loses items its original got right.
REASONING: dict[str, Any] = {
    "model": "sim-reasoning-bf16",
    "ttft_ms": 150,
    "prefill_us_per_token": 20,
    "itl_ms": 10,
    "output_tokens": 80,
    "thinking_tokens": 96,
    "heartbeat_ms": 100,
    "answer_key": "builtin:math500",
    "wrong_rate": 0.04,
    "seed": 15,
    "tokenizer": TOKENIZER,
}
QUANTIZED: dict[str, Any] = REASONING | {
    "model": "sim-reasoning-int4",
    "ttft_ms": 90,
    "prefill_us_per_token": 10,
    "itl_ms": 6,
    "wrong_rate": 0.14,
}
# The synthetic set: prompts of exact Qwen3 lengths in every bucket from 1k to 48k.
SYNTHETIC_BUCKETS = {"1024-4096": 8, "4096-16384": 6, "16384-32768": 4, "32768-49152": 4}
SYNTHETIC_SEED = 15
# Items each compared variant sends: the first 40 of MATH-500 hold 1 item the baseline answers
# wrongly and 9 the INT4 variant does (seed 15), a difference McNemar's test tells from noise.
COMPARE_REQUESTS = 40


@dataclass(slots=True)
class DemoObjects:
    user: Any
    team: Team
    live_plan: Plan
    variant_plans: list[Plan]  # baseline first


@transaction.atomic
def demo_seed(
    *,
    reasoning_url: str,
    quantized_url: str,
    password: str,
    duration_s: float = 60.0,
    compare_requests: int = COMPARE_REQUESTS,
) -> DemoObjects:
    """Create (or refresh) the demo login, team, endpoints, datasets, profiles and plans. The compared
    variants each send the first ``compare_requests`` MATH-500 items in order, so their answers pair
    item by item (McNemar's test in the comparison)."""
    user, _ = get_user_model().objects.get_or_create(
        username=USERNAME, defaults={"email": "demo@example.com"}
    )
    user.set_password(password)
    user.save()
    team, _ = Team.objects.get_or_create(name=TEAM)
    Membership.objects.get_or_create(team=team, user=user, defaults={"role": Membership.Role.OWNER})
    reasoning = _endpoint(
        team, "Reasoning simulator (BF16)", reasoning_url, REASONING, price=(0.0005, 0.0015)
    )
    quantized = _endpoint(
        team, "Reasoning simulator (INT4)", quantized_url, QUANTIZED, price=(0.0003, 0.0009)
    )
    math = _builtin(team, "math500", user)
    _builtin(team, "conversations", user)
    _synthetic(team, user)
    users8, _ = LoadProfile.objects.update_or_create(
        team=team, name="Ramp to 8 users", defaults={"kind": "users", "spec": {"users": 8, "spawn_rate": 2.0}}
    )
    at_once, _ = LoadProfile.objects.update_or_create(
        team=team,
        name="8 users at once",
        defaults={"kind": "users", "spec": {"users": 8, "spawn_rate": 100.0}},
    )
    live_plan = _plan(team, "Demo: 8 users against the reasoning simulator", reasoning, math, users8)
    live_plan.duration_s = duration_s
    live_plan.save(update_fields=["duration_s"])
    variants = [
        _plan(
            team,
            f"Demo: {tag.upper()} on {compare_requests} MATH-500 items",
            endpoint,
            math,
            at_once,
            quantization=tag,
        )
        for tag, endpoint in (("bf16", reasoning), ("int4", quantized))
    ]
    for plan in variants:
        # ends after its items; the duration only bounds a simulator that stopped answering
        plan.max_requests, plan.duration_s, plan.drain_s = compare_requests, 120.0, 10.0
        plan.save(update_fields=["max_requests", "duration_s", "drain_s"])
    return DemoObjects(user=user, team=team, live_plan=live_plan, variant_plans=variants)


def _endpoint(
    team: Team, name: str, url: str, sim: dict[str, Any], *, price: tuple[float, float]
) -> Endpoint:
    endpoint, _ = Endpoint.objects.update_or_create(
        team=team,
        name=name,
        defaults={
            "protocol": "openai-chat",
            "base_url": url,
            "model": sim["model"],
            "tokenizer": TOKENIZER,
            "max_input_tokens": 65536,
            "max_output_tokens": 4096,
            "price_in_per_1k": price[0],
            "price_out_per_1k": price[1],
        },
    )
    return endpoint


def _builtin(team: Team, name: str, user: Any) -> Dataset:
    dataset, _ = dataset_add_builtin(team=team, name=name, by=user)
    if dataset.tokenizer != TOKENIZER:  # counted in Qwen3, as the endpoints count
        dataset_update(
            dataset=dataset,
            name=dataset.name,
            description=dataset.description,
            tokenizer=TOKENIZER,
            new=None,
            by=user,
        )
    return dataset


def _synthetic(team: Team, user: Any) -> Dataset:
    name = "Synthetic 1k–48k"
    existing = Dataset.objects.filter(team=team, name=name).first()
    if existing is not None:
        return existing
    return synthetic_create(
        team=team,
        name=name,
        description="Seeded prompts of exact Qwen3 lengths in every input bucket from 1k to 48k tokens.",
        tokenizer=TOKENIZER,
        params={
            "n": sum(SYNTHETIC_BUCKETS.values()),
            "distribution": {"kind": "buckets", "counts": SYNTHETIC_BUCKETS},
            "seed": SYNTHETIC_SEED,
            "output_tokens": 128,
        },
        by=user,
    )


def _plan(
    team: Team,
    name: str,
    endpoint: Endpoint,
    dataset: Dataset,
    profile: LoadProfile,
    quantization: str = "bf16",
) -> Plan:
    plan, _ = Plan.objects.update_or_create(
        team=team,
        name=name,
        defaults={
            "endpoint": endpoint,
            "dataset": dataset,
            "profile": profile,
            "max_tokens": 1024,
            "sample_order": "sequential",
            "engine_name": "llmperf-sim",
            "hardware": "cpu",
            "quantization": quantization,
        },
    )
    return plan


def demo_compare(*, demo: DemoObjects, timeout_s: float = 90.0, poll_s: float = 0.5) -> Comparison:
    """The saved comparison of the two variants: an existing one whose runs finished, else each
    variant's short plan run for real, one after the other (never competing for the CPU they
    measure with), then saved. Raises ``RuntimeError`` if a run does not finish in time."""
    for comparison in Comparison.objects.filter(team=demo.team, title=COMPARISON_TITLE).order_by("-pk"):
        finished = Run.objects.filter(pk__in=comparison.run_ids, status=Run.Status.FINISHED).count()
        if finished == len(comparison.run_ids) == len(demo.variant_plans):
            return comparison
    runs = [_run_to_end(plan, demo.user, timeout_s, poll_s) for plan in demo.variant_plans]
    return comparison_create(
        team=demo.team,
        by=demo.user,
        title=COMPARISON_TITLE,
        notes=(
            "The same MATH-500 items at 8 users against the reasoning simulator and its quantized variant: "
            "INT4 is faster and answers more items wrongly."
        ),
        run_ids=[run.pk for run in runs],
    )


def _run_to_end(plan: Plan, user: Any, timeout_s: float, poll_s: float) -> Run:
    run = run_start(plan=plan, by=user)
    deadline = time.monotonic() + timeout_s
    while run.status in Run.ACTIVE:
        if time.monotonic() > deadline:
            raise RuntimeError(f"demo run {run.pk} ({plan.name}) did not finish within {timeout_s:g} s")
        time.sleep(poll_s)
        run.refresh_from_db(fields=["status", "reason"])
    if run.status != Run.Status.FINISHED:
        raise RuntimeError(f"demo run {run.pk} ({plan.name}) ended {run.status}: {run.reason}")
    return run
