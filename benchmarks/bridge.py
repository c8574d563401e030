"""The one place where models become runner specs (and runner records become rows)."""

from __future__ import annotations

import dataclasses
from typing import Any

from benchmarks.models import Endpoint, LoadProfile, Plan, RequestRecord, Run
from runner.spec import EndpointSpec, GenericFormat, ProfileSpec, Prompt, RunSpec, Slo, Timeouts

_PROFILE_FIELDS = {f.name for f in dataclasses.fields(ProfileSpec)}
_PROMPT_FIELDS = {f.name for f in dataclasses.fields(Prompt)}
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
    )


def profile_spec(profile: LoadProfile | dict[str, Any]) -> ProfileSpec:
    data = profile.spec if isinstance(profile, LoadProfile) else profile
    kind = profile.kind if isinstance(profile, LoadProfile) else data.get("kind", "users")
    fields = {k: v for k, v in data.items() if k in _PROFILE_FIELDS}
    fields["kind"] = kind
    return ProfileSpec(**fields)


def slo(plan: Plan) -> Slo:
    return Slo(ttft_ms=plan.slo_ttft_ms, tokens_per_s=plan.slo_tokens_per_s, e2e_ms=plan.slo_e2e_ms)


def request_params(plan: Plan) -> dict[str, Any]:
    params: dict[str, Any] = {"max_tokens": plan.max_tokens}
    if plan.temperature is not None:
        params["temperature"] = plan.temperature
    params.update(plan.extra_params or {})
    return params


def prompts(plan: Plan) -> list[Prompt]:
    out = []
    for item in plan.dataset.items:
        fields = {k: v for k, v in item.items() if k in _PROMPT_FIELDS}
        fields["id"] = str(fields.get("id", len(out)))
        fields.setdefault("max_tokens", None)
        if fields["max_tokens"] is None:
            fields["max_tokens"] = plan.max_tokens
        out.append(Prompt(**fields))
    return out


def run_spec(plan: Plan) -> RunSpec:
    """The whole run, without the API key (this dict is stored on the Run and shown in pages)."""
    return RunSpec(
        endpoint=endpoint_spec(plan.endpoint, params=request_params(plan), with_key=False),
        prompts=prompts(plan),
        profile=profile_spec(plan.profile),
        duration_s=plan.duration_s,
        max_requests=plan.max_requests,
        bucket_edges=[int(e) for e in plan.bucket_edges],
        slo=slo(plan),
        length_is_failure=plan.length_is_failure,
        sample_order=plan.sample_order,  # type: ignore[arg-type]
        drain_s=plan.drain_s,
        variants=ab_variants(plan),
        ab_mode=ab_mode(plan),
    )


def shard_spec(run: Run, *, index: int, count: int, api_key: str) -> RunSpec:
    """One shard's share, with the key added back at the last moment (it never sits in a task)."""
    spec = RunSpec.from_dict(run.spec)
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
