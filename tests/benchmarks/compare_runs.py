"""Finished runs with synthetic records, ended through the real ``run_finalize`` (summary and sample
taken exactly as after a live run), for comparison tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from benchmarks import bridge
from benchmarks.models import Plan, RequestRecord, Run, RunSecond, Shard
from benchmarks.services.runs.finalize import run_finalize


def synthetic_records(
    n: int, *, seed: int, ttft_ms: float = 100.0, tokens_per_s: float = 50.0, variants: int = 1
) -> list[dict[str, Any]]:
    """``n`` scheduled prompts (each sent to every variant, as a paired A/B run does); lognormal spread.
    Variant i is ``1 + i/10`` times slower in TTFT, so B is reliably worse than A."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base_ttft = float(rng.lognormal(0, 0.25)) * ttft_ms
        tps = float(rng.lognormal(0, 0.15)) * tokens_per_s
        for v in range(variants):
            ttft = base_ttft * (1 + v / 10) * float(rng.lognormal(0, 0.02))
            tokens = 64
            e2e = ttft + (tokens - 1) / tps * 1000
            out.append(
                {
                    "request_id": f"r{i}-{v}",
                    "prompt_id": f"p{i % 50}",
                    "shard": 0,
                    "variant": v,
                    "scheduled_s": i * 0.05,
                    "started_epoch": 1_700_000_000 + i * 0.05,
                    "outcome": "success",
                    "ttft_ms": ttft,
                    "e2e_ms": e2e,
                    "tpot_ms": 1000 / tps,
                    "tokens_per_s": tps,
                    "itl_ms": [1000 / tps] * 3,
                    "input_tokens": [200, 2000, 5000][i % 3],
                    "output_tokens": tokens,
                }
            )
    return out


def finished_run(
    plan: Plan,
    *,
    n: int = 300,
    seed: int = 0,
    ttft_ms: float = 100.0,
    tokens_per_s: float = 50.0,
    variant: dict[str, str] | None = None,
    variants: int = 1,
    accuracy: float | None = None,
) -> Run:
    records = synthetic_records(n, seed=seed, ttft_ms=ttft_ms, tokens_per_s=tokens_per_s, variants=variants)
    if accuracy is not None:
        for i, r in enumerate(records):
            r["correct"] = i < accuracy * len(records)
    spec = bridge.run_spec(plan).to_dict()
    spec["bucket_edges"] = [0, 1024, 4096]
    if variants > 1:
        spec["variants"] = [dict(spec["endpoint"], model=f"model-{chr(97 + v)}") for v in range(variants)]
    tags = variant if variant is not None else plan.variant()
    now = timezone.now()
    run = Run.objects.create(
        team=plan.team,
        plan=plan,
        endpoint=plan.endpoint,
        plan_name=plan.name,
        endpoint_name=plan.endpoint.name,
        status=Run.Status.RUNNING,
        spec=spec,
        variant=tags,
        variant_text=" ".join(f"{k}={v}" for k, v in tags.items()).lower(),
        shard_count=1,
        started_at=now - timedelta(seconds=n * 0.05),
    )
    Shard.objects.create(
        run=run,
        index=0,
        status=Shard.Status.FINISHED,
        started_at=now - timedelta(seconds=n * 0.05),
        ended_at=now,
    )
    RequestRecord.objects.bulk_create([bridge.record_row(run.pk, r) for r in records], batch_size=2000)
    RunSecond.objects.bulk_create(
        [
            RunSecond(run=run, t=t, point={"t": t, "ttft_p50": ttft_ms, "qpm": 1200.0, "completed": 20})
            for t in range(int(n * 0.05) + 1)
        ]
    )
    run_finalize(run_id=run.pk)
    run.refresh_from_db()
    return run
