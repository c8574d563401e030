"""The one place where models become runner specs (and runner records become rows)."""

from __future__ import annotations

import dataclasses
from typing import Any

from benchmarks.models import DatasetVersion, Endpoint, LoadProfile, Plan, RequestRecord, Run, Shard
from runner import (
    CAPACITY_KEYS,
    EndpointSpec,
    GenericFormat,
    ProfileSpec,
    Prompt,
    RunSpec,
    Slo,
    Timeouts,
    select_prompts,
    summarize,
)

_PROFILE_FIELDS = {f.name for f in dataclasses.fields(ProfileSpec)}
_GENERIC_FIELDS = {f.name for f in dataclasses.fields(GenericFormat)}


def endpoint_spec(
    endpoint: Endpoint, *, params: dict[str, Any] | None = None, with_key: bool = True
) -> EndpointSpec:
    return EndpointSpec(
        protocol=endpoint.protocol,
        base_url=endpoint.base_url,
        model=endpoint.model,
        api_key=endpoint.reveal_api_key() if with_key else "",
        headers={str(k): str(v) for k, v in (endpoint.headers or {}).items()},
        timeouts=Timeouts(
            connect=endpoint.timeout_connect_s,
            first_byte=endpoint.timeout_first_byte_s,
            idle=endpoint.timeout_idle_s,
            total=endpoint.timeout_total_s,
        ),
        params=dict(params or {}),
        generic=GenericFormat(**{k: v for k, v in (endpoint.generic or {}).items() if k in _GENERIC_FIELDS}),
        price_in_per_1k=float(endpoint.price_in_per_1k),
        price_out_per_1k=float(endpoint.price_out_per_1k),
        currency=endpoint.currency,
        max_input_tokens=endpoint.max_input_tokens,
        tokenizer=endpoint.tokenizer,
        max_event_bytes=endpoint.max_event_bytes,
    )


def profile_spec(profile: LoadProfile | dict[str, Any]) -> ProfileSpec:
    data = profile.spec if isinstance(profile, LoadProfile) else profile
    kind = profile.kind if isinstance(profile, LoadProfile) else data.get("kind", "users")
    fields = {k: v for k, v in data.items() if k in _PROFILE_FIELDS}
    # a capacity search replaces the load level by level; its open-loop arrivals and seed stay
    fields["kind"] = "rate" if kind == "capacity" else kind
    return ProfileSpec(**fields)


# Keys of a Run's spec beyond RunSpec's own: what the shard does besides the load (not the engine's).
STUDY_KEYS = ("capacity", "server_metrics", "repeat")


def capacity_settings(profile: LoadProfile) -> dict[str, Any] | None:
    """The search's settings (runner.CAPACITY_KEYS and per_bucket) of a capacity profile, else None."""
    if profile.kind != "capacity":
        return None
    spec = profile.spec or {}
    return {k: spec[k] for k in (*CAPACITY_KEYS, "per_bucket") if spec.get(k) is not None}


def study(plan: Plan) -> dict[str, Any]:
    """What the run does besides sending load: a capacity search, server metrics to scrape."""
    out: dict[str, Any] = {}
    capacity = capacity_settings(plan.profile)
    if capacity is not None:
        out["capacity"] = capacity
    if plan.endpoint.metrics_urls:
        out["server_metrics"] = [str(u) for u in plan.endpoint.metrics_urls]
    return out


def slo(plan: Plan) -> Slo:
    return Slo(ttft_ms=plan.slo_ttft_ms, tokens_per_s=plan.slo_tokens_per_s, e2e_ms=plan.slo_e2e_ms)


def request_params(plan: Plan) -> dict[str, Any]:
    params: dict[str, Any] = {"max_tokens": plan.max_tokens}
    if plan.temperature is not None:
        params["temperature"] = plan.temperature
    params.update(plan.extra_params or {})
    return params


class NoPrompts(ValueError):
    """The plan would send nothing (no ready version, or no prompt in its buckets); says why."""


def prompts(plan: Plan, version: DatasetVersion | None = None) -> list[Prompt]:
    """What a run of ``plan`` sends, in order: the items of ``version`` (default: the dataset's
    current one) with ``input_tokens`` from the stored counts, only those in the plan's buckets, in
    its sampling order ("weighted" is drawn here; "shuffled" is left to the engine)."""
    from benchmarks.selectors.datasets import counts_for_sending

    version = version or plan.dataset.current_version()
    if version is None:
        raise NoPrompts(f"Dataset “{plan.dataset}” has no ready version yet.")
    counts = counts_for_sending(version, plan.endpoint.tokenizer)
    values = counts.counts if counts else [0] * version.item_count
    rows = version.items.order_by("index").values_list("key", "prompt", "messages", "max_tokens", "expected")
    out = [
        Prompt(
            id=key,
            text=text,
            messages=messages,
            input_tokens=values[i],
            max_tokens=max_tokens or plan.max_tokens,
            expected=expected,
        )
        for i, (key, text, messages, max_tokens, expected) in enumerate(rows.iterator(chunk_size=2000))
    ]
    if not plan.buckets and plan.sample_order != "weighted":
        return out
    if counts is None:
        raise NoPrompts(f"Token counts of {version} are not ready, and the plan's buckets need them.")
    chosen = select_prompts(
        out,
        plan.buckets or None,
        "weighted" if plan.sample_order == "weighted" else "sequential",
        plan.bucket_weights or None,
        int((plan.profile.spec or {}).get("seed") or 0),
        edges=[int(e) for e in plan.bucket_edges],
    )
    if not chosen:
        raise NoPrompts(f"No prompt of {version} falls in the plan's buckets ({', '.join(plan.buckets)}).")
    return chosen


def run_spec(plan: Plan, version: DatasetVersion | None = None) -> RunSpec:
    """The whole run, without the API key (this dict is stored on the Run and shown in pages)."""
    return RunSpec(
        endpoint=endpoint_spec(plan.endpoint, params=request_params(plan), with_key=False),
        prompts=prompts(plan, version),
        profile=profile_spec(plan.profile),
        duration_s=plan.duration_s,
        max_requests=plan.max_requests,
        bucket_edges=[int(e) for e in plan.bucket_edges],
        slo=slo(plan),
        length_is_failure=plan.length_is_failure,
        sample_order="shuffled" if plan.sample_order == "shuffled" else "sequential",
        drain_s=plan.drain_s,
        variants=ab_variants(plan),
        ab_mode=ab_mode(plan),
    )


def shard_spec(run: Run, *, index: int, count: int, api_key: str) -> RunSpec:
    """One shard's share, with the key added back at the last moment (it never sits in a task)."""
    spec = RunSpec.from_dict({k: v for k, v in run.spec.items() if k not in STUDY_KEYS})
    spec.endpoint.api_key = api_key
    for variant, key in zip(spec.variants, ab_keys(run, api_key), strict=False):
        variant.api_key = key
    return spec.shard(index, count) if count > 1 else _single(spec)


def _single(spec: RunSpec) -> RunSpec:
    spec.shard_index, spec.shard_count = 0, 1
    return spec


def record_row(run_id: int, record: dict[str, Any]) -> RequestRecord:
    return RequestRecord(
        run_id=run_id,
        shard_index=int(record.get("shard") or 0),
        request_id=str(record["request_id"]),
        prompt_id=str(record.get("prompt_id") or ""),
        outcome=str(record.get("outcome") or ""),
        started_epoch=float(record.get("started_epoch") or 0.0),
        ttft_ms=record.get("ttft_ms"),
        e2e_ms=record.get("e2e_ms"),
        tokens_per_s=record.get("tokens_per_s"),
        input_tokens=record.get("input_tokens"),
        output_tokens=record.get("output_tokens"),
        data=record,
    )


# -- paired A/B -------------------------------------------------------------------------------------


def ab_endpoints(plan: Plan) -> list[Endpoint]:
    """Variant 0 is the plan's endpoint, then its A/B targets in order; [] for a one-endpoint plan."""
    from benchmarks.models import PlanAB

    ab = PlanAB.objects.filter(plan_id=plan.pk).first()
    targets = ab.endpoints() if ab else []
    return [plan.endpoint, *targets] if targets else []


def ab_variants(plan: Plan) -> list[EndpointSpec]:
    params = request_params(plan)
    return [endpoint_spec(e, params=params, with_key=False) for e in ab_endpoints(plan)]


def ab_mode(plan: Plan) -> Any:
    from benchmarks.models import PlanAB

    return PlanAB.objects.filter(plan_id=plan.pk).values_list("mode", flat=True).first() or "simultaneous"


def ab_keys(run: Run, api_key: str) -> list[str]:
    """Each variant's key, read at the last moment like the main one. A variant whose endpoint no
    longer matches what the run was started with (the plan changed since) gets no key."""
    specs = (run.spec or {}).get("variants") or []
    endpoints = ab_endpoints(run.plan) if run.plan else []
    keys = [api_key]
    for i, spec in enumerate(specs[1:], start=1):
        endpoint = endpoints[i] if i < len(endpoints) else None
        same = endpoint is not None and [endpoint.base_url, endpoint.model] == [
            spec.get("base_url"),
            spec.get("model"),
        ]
        keys.append(endpoint.reveal_api_key() if endpoint is not None and same else "")
    return keys


# --- the other way: a run's records and shards to runner's summary ------------------------------------


def run_summary(run: Run, shards: list[Shard], records: list[dict[str, Any]]) -> dict[str, Any]:
    summary = _records_summary(run, shards, records)
    # the capacity search and the scraper run in shard 0 only; their blocks speak for the run
    first = next((s.summary for s in shards if s.index == 0 and s.summary), {})
    summary.update({k: first[k] for k in ("capacity", "server_metrics") if k in first})
    return summary


def _records_summary(run: Run, shards: list[Shard], records: list[dict[str, Any]]) -> dict[str, Any]:
    spec = run.spec
    endpoint = spec.get("endpoint", {})
    return summarize(
        records,
        duration_s=measured_duration_s(shards),
        bucket_edges=list(spec.get("bucket_edges") or []),
        slo=Slo(**spec.get("slo", {})),
        price_in_per_1k=float(endpoint.get("price_in_per_1k") or 0),
        price_out_per_1k=float(endpoint.get("price_out_per_1k") or 0),
        currency=str(endpoint.get("currency") or "USD"),
        length_is_failure=bool(spec.get("length_is_failure")),
        engine=merged_engine(shards),
    )


def measured_duration_s(shards: list[Shard]) -> float:
    starts = [s.started_at for s in shards if s.started_at]
    ends = [s.ended_at for s in shards if s.ended_at]
    if not starts or not ends:
        return 0.0
    return max((max(ends) - min(starts)).total_seconds(), 0.0)


def merged_engine(shards: list[Shard]) -> dict[str, Any] | None:
    """The most loaded shard's engine health speaks for the run (saturation anywhere skews it)."""
    engines = [s.engine for s in shards if s.engine]
    if not engines:
        return None
    return max(engines, key=lambda e: float(e.get("lag_ms_p99") or 0.0))
