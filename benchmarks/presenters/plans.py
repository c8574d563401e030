"""What a plan will do before it runs: requests, tokens, cost and duration, and its profile's shape.

Computed from the profile (the same functions the engine schedules with, via ``runner.profile_preview``),
the dataset's stored token counts and the endpoint's prices. Nothing is guessed silently: an open
loop's request count is the expected number of sends of its schedule; a closed loop's depends on how
fast the endpoint answers, so it is worked out from the E2E latency the endpoint last measured (named)
or left unknown; output tokens are each prompt's ``max_tokens``, an upper bound.
"""

from __future__ import annotations

from typing import Any

from benchmarks import bridge
from benchmarks.charts.profiles import capacity_figure, profile_figure
from benchmarks.models import DatasetVersion, Plan
from benchmarks.models.datasets import tokenizer_ref
from benchmarks.selectors.datasets import counts_for_sending
from benchmarks.selectors.runs import endpoint_last_e2e
from runner import profile_preview


def plan_form_preview(*, form: Any) -> dict[str, Any]:
    """The preview of what a (validated, unsaved) plan form describes: enough to show once an
    endpoint, a dataset and a profile are picked, whatever else is still wrong."""
    plan: Plan = form.instance
    data = getattr(form, "cleaned_data", {})
    for name in ("endpoint", "dataset", "profile"):
        if data.get(name) is None:
            return {"error": "Pick an endpoint, a dataset and a load profile to see what the plan will do."}
        setattr(plan, name, data[name])
    for name in ("duration_s", "max_requests", "drain_s", "max_tokens"):
        if name in form.errors:
            return {"error": f"Fix {form.fields[name].label} to see what the plan will do."}
    return plan_preview(
        plan=plan,
        version=plan.dataset.current_version(),
        last_e2e=endpoint_last_e2e(endpoint_id=plan.endpoint.pk),
    )


def plan_preview(
    *, plan: Plan, version: DatasetVersion | None, last_e2e: tuple[int, float] | None
) -> dict[str, Any]:
    """The plan form's preview of an unsaved (or saved) ``plan``. ``last_e2e``: (run id, E2E p50 ms)
    of the endpoint's latest finished run, for a closed loop's request count; None when there is none."""
    notes: list[str] = []
    spec = bridge.profile_spec(plan.profile)
    capacity = bridge.capacity_settings(plan.profile)
    horizon = plan.duration_s or None
    requests, duration_s = _requests(plan, spec, horizon, capacity, last_e2e, notes)
    figure = (
        capacity_figure(capacity, plan.profile.name)
        if capacity is not None
        else profile_figure(spec, f"{plan.profile.name} over the plan's duration", horizon_s=horizon)
    )
    out: dict[str, Any] = {
        "requests": requests,
        "duration_s": duration_s,
        "drain_s": plan.drain_s,
        "figure": figure,
        "notes": notes,
        "currency": plan.endpoint.currency,
    }
    out |= _tokens(plan, version, requests, notes)
    return out


def _requests(
    plan: Plan,
    spec: Any,
    horizon: float | None,
    capacity: dict[str, Any] | None,
    last_e2e: tuple[int, float] | None,
    notes: list[str],
) -> tuple[float | None, float | None]:
    """(expected requests, load duration in seconds); None where it cannot be known before running."""
    cap = plan.max_requests or None
    if capacity is not None:
        notes.append(
            "A capacity search decides its own levels and length: the chart shows its bracket at most."
        )
        return cap, None
    curve = profile_preview(spec, horizon)
    t = curve["t"]
    end = t[-1] if t else 0.0
    if not horizon and not _shape_ends(spec):
        end = 0.0  # "60 s" is only the chart's window: the run lasts until max_requests
    if spec.kind == "replay":
        sends = float(len(spec.replay)) if spec.replay else None
        if sends is None:
            notes.append("Replays the timed dataset's recorded arrivals: as many requests as it holds.")
        return _cap(sends, cap), (end or None)
    # each sample holds until the next, as the engine's targets do
    area = sum(
        v * (t[i + 1] - t[i])
        for i, v in enumerate(next(curve[k] for k in ("rate", "users") if k in curve)[:-1])
    )
    if "rate" in curve:
        expected = area if end else None
        notes.append("Open loop: the expected number of sends of the schedule.")
        return _cap(expected, cap), (end or None)
    if last_e2e is None:
        notes.append(
            "Closed loop: the count depends on how fast the endpoint answers; it has no finished run to measure that from yet."
        )
        return cap, (end or None)
    run_id, e2e_ms = last_e2e
    notes.append(
        f"Closed loop: user-seconds / the E2E p50 of {e2e_ms:.0f} ms the endpoint measured in run #{run_id}."
    )
    expected = area / (e2e_ms / 1000) if end and e2e_ms > 0 else None
    return _cap(expected, cap), (end or None)


def _shape_ends(spec: Any) -> bool:
    return spec.kind in ("stages", "sweep") or (spec.kind == "users" and spec.hold_s > 0)


def _cap(expected: float | None, cap: int | None) -> float | None:
    if expected is None:
        return float(cap) if cap else None
    return min(expected, float(cap)) if cap else expected


def _tokens(
    plan: Plan, version: DatasetVersion | None, requests: float | None, notes: list[str]
) -> dict[str, Any]:
    """Mean input and (at most) output tokens per request over the prompts the plan draws, times requests."""
    if version is None or version.state != DatasetVersion.State.READY:
        notes.append("The dataset is not ready yet: no token counts.")
        return {}
    try:
        prompts = bridge.prompts(plan, version)
    except ValueError as exc:
        notes.append(str(exc))
        return {}
    if not prompts:
        return {}
    counts = counts_for_sending(version, plan.endpoint.tokenizer)
    mean_in = sum(p.input_tokens for p in prompts) / len(prompts)
    mean_out = sum(p.max_tokens or plan.max_tokens for p in prompts) / len(prompts)
    price_in, price_out = float(plan.endpoint.price_in_per_1k), float(plan.endpoint.price_out_per_1k)
    out: dict[str, Any] = {
        "prompts": len(prompts),
        "mean_input_tokens": mean_in,
        "mean_output_tokens_max": mean_out,
        "counted_with": (counts.tokenizer_name or counts.tokenizer) if counts else None,
        "estimated": counts is None or counts.estimated,
        "exact_tokenizer": counts is not None and counts.tokenizer == tokenizer_ref(plan.endpoint.tokenizer),
    }
    if requests is not None:
        tokens_in, tokens_out = mean_in * requests, mean_out * requests
        out |= {
            "input_tokens": tokens_in,
            "output_tokens_max": tokens_out,
            "cost_max": tokens_in / 1000 * price_in + tokens_out / 1000 * price_out,
        }
    return out
