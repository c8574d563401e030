"""The one place where models become runner specs (and runner records become rows)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from benchmarks.models import (
    DatasetItem,
    DatasetVersion,
    Endpoint,
    LoadProfile,
    Plan,
    RequestRecord,
    Run,
    Shard,
)
from runner import (
    CAPACITY_KEYS,
    PROMPT_META_KEYS,
    Columns,
    EndpointSpec,
    GenericFormat,
    Limits,
    ProfileSpec,
    Prompt,
    RunSpec,
    Slo,
    Timeouts,
    apply_template,
    capacity_problems,
    columns_from,
    pack_series,
    run_problems,
    select_prompts,
    split_run,
    summarize_columns,
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
        headers={
            **{str(k): str(v) for k, v in (endpoint.headers or {}).items()},
            **(endpoint.reveal_secret_headers() if with_key else {}),
        },
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
    # a capacity search replaces the load level by level; its open-loop arrivals and seed stay.
    # KV-cache reuse: its users send each prompt once per pass
    fields["kind"] = {"capacity": "rate", "kv_reuse": "users"}.get(kind, kind)
    return ProfileSpec(**fields)


# Keys of a Run's spec beyond RunSpec's own: what the shard does besides the load (not the engine's).
STUDY_KEYS = ("capacity", "server_metrics", "repeat", "kv_reuse")


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
    if plan.profile.kind == "kv_reuse":
        out["kv_reuse"] = {}  # runner.kv_reuse: the plan's prompts cold, then warm, on one shard
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


class RunRefused(ValueError):
    """A run of the plan cannot start; the message says why."""


class NoPrompts(RunRefused):
    """The plan would send nothing (no ready version, or no prompt in its buckets); says why."""


class OverLimits(RunRefused):
    """The run would be past the deployment's limits (settings LIMIT_*); names each."""


def limits() -> Limits:
    """The deployment's limits (settings LIMIT_*), for forms, the start service and the engine."""
    return Limits(
        users=settings.LIMIT_USERS,
        spawn_rate=settings.LIMIT_SPAWN_RATE,
        rate=settings.LIMIT_RATE,
        duration_s=settings.LIMIT_DURATION_S,
        requests=settings.LIMIT_REQUESTS,
        timeout_s=settings.LIMIT_TIMEOUT_S,
        replay_entries=settings.LIMIT_REPLAY_ENTRIES,
        replay_s=settings.LIMIT_REPLAY_S,
        preview_points=settings.LIMIT_PREVIEW_POINTS,
        shards=settings.LIMIT_SHARDS,
    )


def run_limits_check(spec: RunSpec, study: dict[str, Any]) -> None:
    """Raise :class:`OverLimits` naming every limit the run's spec (and capacity search) is past."""
    bound = limits()
    problems = run_problems(spec, bound)
    if study.get("capacity"):
        problems += capacity_problems(study["capacity"], bound)
    if problems:
        raise OverLimits("Past this deployment's limits: " + "; ".join(str(p) for p in problems) + ".")


def stored_limits_check(spec: dict[str, Any], *, shard_count: int) -> None:
    """:func:`run_limits_check` of a stored run's spec (its study keys included), e.g. before it runs
    again: the snapshot may predate a lower limit."""
    plain = {k: v for k, v in spec.items() if k not in (*STUDY_KEYS, "prompt_ref", "run_started_epoch")}
    run_limits_check(RunSpec.from_dict({**plain, "shard_count": max(shard_count, 1)}), spec)


def prompts(plan: Plan, version: DatasetVersion | None = None) -> list[Prompt]:
    """What a run of ``plan`` sends, in order: the items of ``version`` (default: the dataset's
    current one) wrapped in the plan's prompt template, with ``input_tokens`` from the stored counts,
    the item's subject/level/unique_id as ``meta``, only those in the plan's buckets, in its sampling
    order ("weighted" is drawn here; "shuffled" is left to the engine)."""
    version = version or plan.dataset.current_version()
    if version is None:
        raise NoPrompts(f"Dataset “{plan.dataset}” has no ready version yet.")
    every = version_prompts(version, _sending(plan))
    return [every[i] for i in prompt_positions(plan, version, every)]


def _sending(plan: Plan) -> dict[str, Any]:
    """How a plan turns a version's items into prompts (kept in the run's ``prompt_ref``)."""
    return {
        "template": plan.effective_template,
        "max_tokens": plan.max_tokens,
        "tokenizer": plan.endpoint.tokenizer,
    }


def version_prompts(version: DatasetVersion, sending: dict[str, Any]) -> list[Prompt]:
    """Every item of ``version`` as a prompt, in item order, templated and counted as ``sending`` says."""
    from benchmarks.selectors.datasets import counts_for_sending

    counts = counts_for_sending(version, sending.get("tokenizer") or "")
    values = counts.counts if counts else [0] * version.item_count
    rows = version.items.order_by("index").values_list(
        "key", "prompt", "messages", "max_tokens", "expected", "metadata", "params"
    )
    template = str(sending.get("template") or "")
    return [
        Prompt(
            id=key,
            text=apply_template(template, text) if text or not messages else text,
            messages=templated_messages(template, messages),
            input_tokens=values[i],
            max_tokens=max_tokens or int(sending.get("max_tokens") or 0),
            expected=expected,
            meta={k: metadata[k] for k in PROMPT_META_KEYS if k in (metadata or {})},
            params=params or None,  # a captured request's own parameters (temperature, tools…)
            session=(metadata or {}).get("session") or None,  # one turn of a replayed conversation
        )
        for i, (key, text, messages, max_tokens, expected, metadata, params) in enumerate(
            rows.iterator(chunk_size=2000)
        )
    ]


def prompt_positions(plan: Plan, version: DatasetVersion, every: list[Prompt]) -> list[int]:
    """Which of ``every`` (the version's prompts, in item order) a run sends, in sending order."""
    from benchmarks.selectors.datasets import counts_for_sending

    if not plan.buckets and plan.sample_order != "weighted":
        return list(range(len(every)))
    if counts_for_sending(version, plan.endpoint.tokenizer) is None:
        raise NoPrompts(f"Token counts of {version} are not ready, and the plan's buckets need them.")
    chosen = select_prompts(
        every,
        plan.buckets or None,
        "weighted" if plan.sample_order == "weighted" else "sequential",
        plan.bucket_weights or None,
        int((plan.profile.spec or {}).get("seed") or 0),
        edges=[int(e) for e in plan.bucket_edges],
    )
    if not chosen:
        raise NoPrompts(f"No prompt of {version} falls in the plan's buckets ({', '.join(plan.buckets)}).")
    position = {id(p): i for i, p in enumerate(every)}
    return [position[id(p)] for p in chosen]


def stored_run_spec(plan: Plan, version: DatasetVersion | None = None) -> dict[str, Any]:
    """The spec a Run keeps: ``run_spec`` with the prompts named, not copied — the pinned version,
    the positions of its items sent in order, and how they were templated and counted; shards load
    the text from the version (``spec_prompts``)."""
    version = version or plan.dataset.current_version()
    if version is None:
        raise NoPrompts(f"Dataset “{plan.dataset}” has no ready version yet.")
    every = version_prompts(version, _sending(plan))
    positions = prompt_positions(plan, version, every)
    spec = run_spec(plan, version, sent=[every[i] for i in positions]).to_dict()
    spec["prompts"] = []
    spec["prompt_ref"] = {"dataset_version": version.pk, "items": positions, **_sending(plan)}
    return spec


def spec_prompts(spec: dict[str, Any]) -> list[Prompt]:
    """The prompts a stored run sent: from its pinned version when the spec names them, else the
    texts older runs carried in the spec itself."""
    ref = spec.get("prompt_ref")
    if not ref:
        return [Prompt(**p) for p in spec.get("prompts") or []]
    version = DatasetVersion.objects.get(pk=ref["dataset_version"])
    every = version_prompts(version, ref)
    return [every[i] for i in ref["items"]]


def templated_messages(template: str, messages: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """A chat's last user turn wrapped in ``template`` (the other turns are history, sent as they are)."""
    if not template or not messages:
        return messages
    out = [dict(m) for m in messages]
    users = [i for i, m in enumerate(out) if m.get("role") == "user" and isinstance(m.get("content"), str)]
    if users:
        out[users[-1]]["content"] = apply_template(template, out[users[-1]]["content"])
    return out


def run_spec(
    plan: Plan, version: DatasetVersion | None = None, *, sent: list[Prompt] | None = None
) -> RunSpec:
    """The whole run, without the API key, its prompts' texts included (``stored_run_spec`` is what
    a Run keeps)."""
    sent = prompts(plan, version) if sent is None else sent
    profile = profile_spec(plan.profile)
    if profile.kind == "replay" and not profile.replay:
        profile.replay = replay_entries(sent, version or plan.dataset.current_version())
    return RunSpec(
        endpoint=endpoint_spec(plan.endpoint, params=request_params(plan), with_key=False),
        prompts=sent,
        profile=profile,
        duration_s=plan.duration_s,
        max_requests=plan.max_requests,
        bucket_edges=[int(e) for e in plan.bucket_edges],
        slo=slo(plan),
        length_is_failure=plan.length_is_failure,
        sample_order="shuffled" if plan.sample_order == "shuffled" else "sequential",
        drain_s=plan.drain_s,
        variants=ab_variants(plan),
        ab_mode=ab_mode(plan),
        prompt_template=plan.effective_template,
    )


def target_policy() -> dict[str, list[str]]:
    """Settings' allow and deny lists, plus this deployment's own database and broker (by name and by
    every address the name resolves to), so no plan can aim load at them."""
    deny = list(settings.TARGET_DENY)
    db = settings.DATABASES["default"]
    own = []
    if "postgresql" in db["ENGINE"]:
        own.append((str(db.get("HOST") or "127.0.0.1"), int(db.get("PORT") or 5432)))
    if settings.REDIS_URL:
        url = urlsplit(settings.REDIS_URL)
        own.append((url.hostname or "127.0.0.1", url.port or 6379))
    for host, port in own:
        deny.append(_host_port(host, port))
        with contextlib.suppress(OSError):
            for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP):
                deny.append(_host_port(str(info[4][0]), port))
    return {"allow": list(settings.TARGET_ALLOW), "deny": sorted(set(deny))}


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def replay_entries(sent: list[Prompt], version: DatasetVersion | None) -> list[dict[str, float]]:
    """A replay profile without entries sends the timed dataset at its recorded arrivals: one
    ``{t_s, prompt}`` per prompt sent, offsets counted from the first (``speed`` scales them)."""
    arrivals = dict(
        version.items.exclude(arrival_s=None).values_list("key", "arrival_s") if version is not None else []
    )
    if not arrivals:
        raise NoPrompts(
            "A replay profile without entries needs a timed dataset (upload a capture, an access log "
            "or a trace); this dataset has no arrival times."
        )
    timed = [(arrivals[p.id], i) for i, p in enumerate(sent) if p.id in arrivals]
    t0 = min(t for t, _ in timed)
    return [{"t_s": t - t0, "prompt": float(i)} for t, i in timed]


def shard_spec(
    run: Run, *, index: int, count: int, api_key: str, secret_headers: dict[str, str] | None = None
) -> RunSpec:
    """One shard's share, with the key and secret headers added back at the last moment (they never
    sit in a task or in the stored run), and the target policy as it stands now."""
    spec = RunSpec.from_dict({k: v for k, v in run.spec.items() if k not in (*STUDY_KEYS, "prompt_ref")})
    if run.spec.get("prompt_ref"):
        spec.prompts = spec_prompts(run.spec)
    spec.endpoint.api_key = api_key
    spec.endpoint.headers.update(secret_headers or {})
    spec.target_policy = target_policy()
    for variant, key in zip(spec.variants, ab_keys(run, api_key), strict=False):
        variant.api_key = key
    return split_run(spec, index, count) if count > 1 else _single(spec)


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
        variant=int(record.get("variant") or 0),
        **{key: _count(record.get(key)) for key in COUNT_COLUMNS},
        data=record,
        series=pack_series(record),
    )


COUNT_COLUMNS = ("usage_input_tokens", "client_input_tokens", "usage_output_tokens", "client_output_tokens")


def _count(value: Any) -> int | None:
    return round(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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


def run_summary(
    run: Run, shards: list[Shard], records: Columns | list[dict[str, Any]], *, variant: int | None = None
) -> dict[str, Any]:
    """The run's exact summary from its records (as columns, or record dicts), of one A/B variant's
    records only when ``variant`` is given."""
    columns = records if isinstance(records, Columns) else columns_from(records)
    mask = None if variant is None else columns.f("variant") == variant
    summary = _records_summary(run, shards, columns, mask)
    # the capacity search, the KV-cache reuse passes and the scraper run in shard 0 only; their
    # blocks speak for the run
    first = next((s.summary for s in shards if s.index == 0 and s.summary), {})
    summary.update({k: first[k] for k in ("capacity", "server_metrics", "kv_cache_reuse") if k in first})
    return summary


def _records_summary(run: Run, shards: list[Shard], columns: Columns, mask: Any) -> dict[str, Any]:
    spec = run.spec
    endpoint = spec.get("endpoint", {})
    summary = summarize_columns(
        columns,
        mask=mask,
        duration_s=measured_duration_s(shards),
        bucket_edges=list(spec.get("bucket_edges") or []),
        slo=Slo(**spec.get("slo", {})),
        price_in_per_1k=float(endpoint.get("price_in_per_1k") or 0),
        price_out_per_1k=float(endpoint.get("price_out_per_1k") or 0),
        currency=str(endpoint.get("currency") or "USD"),
        length_is_failure=bool(spec.get("length_is_failure")),
        engine=merged_engine(shards),
        prompts=graded_prompts(spec),
    )
    if (spec.get("profile") or {}).get("kind") == "replay":
        sent = columns.size if mask is None else int(mask.sum())
        summary["replay"] = replay_block(run, sent, summary)
    return summary


def replay_block(run: Run, sent: int, summary: dict[str, Any]) -> dict[str, Any]:
    """Whether the replay kept the recorded arrival pattern (schedule lag), and its answers and
    latencies against what production recorded, when the dataset came from a capture."""
    from runner import REPLAY_LAG_WARN_MS, compare_pairs

    lag = summary.get("schedule_lag_ms") or {}
    recorded: dict[str, Any] = {}
    if run.dataset_version_id is not None:
        rows = run.dataset_version.items.exclude(recorded=None).values_list("key", "recorded")  # type: ignore[union-attr]
        recorded = dict(rows)
    keys = ("prompt_id", "outcome", "ttft_ms", "e2e_ms", "tokens_per_s", "data__answer_text")
    stored = RequestRecord.objects.filter(run=run, prompt_id__in=list(recorded)).order_by("id")
    pairs = [
        (
            recorded[row[0]],
            dict(
                zip(
                    ("prompt_id", "outcome", "ttft_ms", "e2e_ms", "tokens_per_s", "answer_text"),
                    row,
                    strict=True,
                )
            ),
        )
        for row in stored.values_list(*keys).iterator(chunk_size=5000)
    ]
    profile = run.spec.get("profile") or {}
    return {
        "scheduled": len(profile.get("replay") or []),
        "sent": sent,
        "speed": profile.get("speed", 1.0),
        "schedule_lag_ms": lag,
        "lag_warn_ms": REPLAY_LAG_WARN_MS,
        "kept_up": lag.get("p99") is None or lag["p99"] <= REPLAY_LAG_WARN_MS,
        "versus_recorded": compare_pairs(pairs) if pairs else None,
    }


def graded_prompts(spec: dict[str, Any]) -> list[Prompt]:
    """The run's prompts that have an expected answer: the summary's subjects and levels come from
    them, and a failed request on one counts as a wrong answer. For a run that names its prompts,
    only the graded items' keys, answers and metadata are read (never every text)."""
    ref = spec.get("prompt_ref")
    if not ref:
        return [
            Prompt(id=str(p["id"]), expected=p["expected"], meta=dict(p.get("meta") or {}))
            for p in spec.get("prompts") or []
            if p.get("expected") is not None
        ]
    items = DatasetItem.objects.filter(version_id=ref["dataset_version"])
    order = list(items.order_by("index").values_list("index", flat=True))
    graded = {
        index: (key, expected, metadata)
        for index, key, expected, metadata in items.exclude(expected=None).values_list(
            "index", "key", "expected", "metadata"
        )
    }
    out = []
    for position in sorted(set(ref["items"])):
        if position < len(order) and (item := graded.get(order[position])) is not None:
            key, expected, metadata = item
            meta = {k: metadata[k] for k in PROMPT_META_KEYS if k in (metadata or {})}
            out.append(Prompt(id=key, expected=expected, meta=meta))
    return out


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


# --- mirror sessions (services/mirrors.py) ------------------------------------------------------------


def origin(url: str) -> str:
    """``http://host:port`` of a base URL: the mirror appends each caller's path unchanged."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def mirror_spec(*, shadow: Endpoint, upstream: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The session's stored spec, shaped like a paired A/B run's (variant 0 production, variant 1 the
    shadow) so the comparison reads it as one; no key anywhere."""
    # no duration: a session lasts until it is stopped
    spec = RunSpec(endpoint=endpoint_spec(shadow, with_key=False), prompts=[], duration_s=None)
    production = EndpointSpec(protocol=shadow.protocol, base_url=upstream, model="production")
    spec.variants = [production, spec.endpoint]
    return {**spec.to_dict(), "mirror": settings}


def mirror_config(run: Run, *, api_key: str, capture: str = "") -> Any:
    """The runner's MirrorConfig of a session, the shadow endpoint's own key added at the last moment."""
    from runner import DEFAULT_MAX_EVENT_BYTES, MirrorConfig, generic_format

    endpoint = run.spec.get("endpoint") or {}
    m = run.spec["mirror"]
    headers = {str(k): str(v) for k, v in (endpoint.get("headers") or {}).items()}
    if api_key:
        anthropic = str(endpoint.get("protocol", "")).startswith("anthropic")
        headers.update({"x-api-key": api_key} if anthropic else {"Authorization": f"Bearer {api_key}"})
    return MirrorConfig(
        listen=m["listen"],
        upstream=m["upstream"],
        shadow=origin(str(endpoint.get("base_url", ""))),
        sample=float(m.get("sample", 1.0)),
        shadow_headers=headers,
        shadow_model=str(endpoint.get("model") or ""),
        shadow_concurrency=int(m.get("shadow_concurrency", 64)),
        shadow_timeout_s=float(endpoint.get("timeouts", {}).get("total") or 120.0),
        capture=capture,
        capture_prompts=m.get("capture_prompts", "keep"),
        drain_s=float(m.get("drain_s", 10.0)),
        ws_format=generic_format(m["ws_format"]) if m.get("ws_format") else None,
        max_event_bytes=int(endpoint.get("max_event_bytes") or DEFAULT_MAX_EVENT_BYTES),
    )


def mirror_run_summary(
    run: Run, shards: list[Shard], records: list[dict[str, Any]], mirror: dict[str, Any]
) -> dict[str, Any]:
    """The shadow (the endpoint under test) is the session's overall figure; both sides are its
    variants; ``mirror`` keeps the mirror's own counts, overhead and paired verdict."""
    sides = [[r for r in records if int(r.get("variant") or 0) == v] for v in (0, 1)]
    summary = run_summary(run, shards, sides[1])
    specs = run.spec.get("variants") or [{}, {}]
    summary["variants"] = [
        {
            "variant": v,
            "model": specs[v].get("model"),
            "base_url": specs[v].get("base_url"),
            **run_summary(run, shards, side),
        }
        for v, side in enumerate(sides)
    ]
    keep = (
        "requests",
        "passed_through",
        "duration_s",
        "overhead_ms",
        "paired",
        "errors",
        "mirror",
        "captured",
    )
    summary["mirror"] = {k: mirror[k] for k in keep if k in mirror}
    shadow = mirror.get("shadow") or {}
    summary["mirror"]["shadow_counts"] = {
        k: shadow.get(k) for k in ("sampled", "sent", "succeeded", "failed", "dropped", "failures")
    }
    production_ttft = ((summary["variants"][0].get("ttft_ms") or {}).get("p50")) or 0.0
    summary["mirror"]["verdict"] = paired_verdict(mirror.get("paired") or {}, production_ttft)
    return summary


def paired_verdict(paired: dict[str, Any], production_ttft_p50: float) -> dict[str, Any]:
    """Shadow against production on the same requests, in words: latency (median paired TTFT
    difference beyond 5 % of production's, at least 5 ms), success agreement and answer similarity."""
    n = paired.get("pairs") or 0
    if not n:
        return {"latency": "no pairs", "text": "No request reached both sides: nothing to pair."}
    diff = (paired.get("ttft_ms_diff") or {}).get("p50")
    margin = max(5.0, 0.05 * production_ttft_p50)
    latency = (
        "unknown"
        if diff is None
        else "slower"
        if diff > margin
        else "faster"
        if diff < -margin
        else "about the same"
    )
    success = paired.get("success") or {}
    rouge = (paired.get("answer_rouge_l") or {}).get("mean")
    parts = [
        {"slower": "Shadow slower than production", "faster": "Shadow faster than production"}.get(
            latency,
            f"Shadow {latency} against production"
            if latency == "unknown"
            else "Shadow as fast as production",
        )
        + (f" (TTFT {diff:+.1f} ms median over {n} pairs)" if diff is not None else f" ({n} pairs)"),
        f"both succeeded {success.get('both', 0)}, production only {success.get('base_only', 0)}, "
        f"shadow only {success.get('other_only', 0)}",
    ]
    if rouge is not None:
        parts.append(f"answers ROUGE-L mean {rouge:.2f}, {paired.get('answers_identical', 0)} identical")
    return {
        "latency": latency,
        "ttft_ms_diff_p50": diff,
        "rouge_l_mean": rouge,
        "text": "; ".join(parts) + ".",
    }
