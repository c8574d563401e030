"""Profiles, datasets and plans in the browser forms: every kind saves, bad input explains itself,
clone and delete behave, and nothing is half-saved."""

from __future__ import annotations

import pytest
from django.urls import reverse

from benchmarks import bridge
from benchmarks.charts.profiles import profile_figure
from benchmarks.models import LoadProfile, Plan
from runner import ProfileSpec
from runner.profiles import users_at

PROFILE_BASE = {
    "users": "",
    "spawn_rate": "",
    "hold_s": "",
    "ramp_down_s": "",
    "stages": "",
    "stage_mode": "users",
    "rate": "",
    "rate_unit": "qps",
    "arrival": "poisson",
    "sweep_levels": "",
    "sweep_mode": "users",
    "level_duration_s": "",
    "replay": "",
    "speed": "",
    "seed": "",
}
PROFILES = {
    "users": {"users": "8", "spawn_rate": "2", "hold_s": "20", "ramp_down_s": "4"},
    "stages": {"stages": '[{"duration_s": 10, "target": 2}, {"duration_s": 10, "target": 6}]'},
    "rate": {"rate": "120", "rate_unit": "qpm", "arrival": "constant", "max_concurrency": "16"},
    "sweep": {"sweep_levels": "1, 2, 4", "level_duration_s": "15"},
    "replay": {
        "replay": '[{"t_s": 0, "prompt": 0}, {"t_s": 0.5, "prompt": 1}, {"t_s": 2, "prompt": 0}]',
        "speed": "2",
    },
}


@pytest.mark.parametrize("kind", PROFILES)
def test_every_profile_kind_saves_and_previews(cast, client_for, kind):
    client = client_for(cast.alice)
    response = client.post(
        reverse("profile_create"), {**PROFILE_BASE, "name": f"p-{kind}", "kind": kind, **PROFILES[kind]}
    )
    assert response.status_code == 302, response.context and response.context["form"].errors
    profile = LoadProfile.objects.get(name=f"p-{kind}")
    spec = bridge.profile_spec(profile)
    assert spec.kind == kind
    if kind == "rate":
        assert spec.max_concurrency == 16 and spec.rate == 120 and spec.rate_unit == "qpm"
    page = client.get(response["Location"])
    assert page.status_code == 200 and "preview-data" in page.content.decode()
    assert client.get(reverse("profile_edit", args=[profile.pk])).status_code == 200


@pytest.mark.parametrize(
    ("kind", "change", "field", "message"),
    [
        ("users", {"users": ""}, "users", "Required for a “users” profile"),
        ("users", {"users": "0"}, "users", "greater than or equal to 1"),
        ("stages", {"stages": "[1, 2]"}, "stages", "non-negative numbers duration_s and target"),
        ("stages", {"stages": "{oops"}, "stages", "Not valid JSON"),
        ("sweep", {"sweep_levels": "1, two"}, "sweep_levels", "comma-separated numbers"),
        ("rate", {"rate": "-1"}, "rate", "greater than or equal to"),
    ],
)
def test_profile_form_explains_bad_input(cast, client_for, kind, change, field, message):
    data = {**PROFILE_BASE, "name": "bad", "kind": kind, **PROFILES[kind], **change}
    response = client_for(cast.alice).post(reverse("profile_create"), data)
    assert response.status_code == 400
    assert any(message in e for e in response.context["form"].errors[field]), response.context["form"].errors
    assert not LoadProfile.objects.filter(name="bad").exists()


def test_profile_preview_is_sampled_from_the_engines_own_shape():
    """Closed-loop stages ramp at the spawn rate, as the engine runs them, not as steps."""
    spec = ProfileSpec(kind="stages", stages=[{"duration_s": 20, "target": 10}], spawn_rate=1)
    trace = profile_figure(spec, "ramp")["data"][0]
    assert trace["y"] == [float(users_at(spec, t)) for t in trace["x"]]
    assert trace["y"][0] == 1 and max(trace["y"]) == 10
    assert 4 <= trace["y"][len(trace["y"]) // 4] <= 7  # five seconds in: about six users, not ten


def test_plan_preview_ends_where_the_run_would():
    long = ProfileSpec(kind="stages", stages=[{"duration_s": 600, "target": 4}], spawn_rate=4)
    assert profile_figure(long, "cut", horizon_s=60)["data"][0]["x"][-1] == 60
    open_ended = ProfileSpec(kind="rate", rate=120, rate_unit="qpm")
    trace = profile_figure(open_ended, "rate", horizon_s=30)["data"][0]
    assert trace["x"][-1] == 30 and set(trace["y"]) == {2.0}
    replay = ProfileSpec(kind="replay", replay=[{"t_s": 0, "prompt": 0}, {"t_s": 4, "prompt": 1}], speed=2)
    assert profile_figure(replay, "replay")["data"][0]["x"][-1] == 2  # the last entry, sped up


def _plan_data(cast, **change):
    plan = cast.plan
    data = {
        "name": "new plan",
        "endpoint": plan.endpoint_id,
        "dataset": plan.dataset_id,
        "profile": plan.profile_id,
        "max_tokens": 64,
        "temperature": "0.7",
        "extra_params": '{"top_p": 0.9}',
        "duration_s": 30,
        "max_requests": "",
        "drain_s": 30,
        "bucket_edges": "0, 1024, 4096",
        "slo_ttft_ms": 2000,
        "slo_tokens_per_s": 20,
        "slo_e2e_ms": "",
        "sample_order": "sequential",
        "shard_count": 0,
        "quantization": "fp8",
        "speculative": "MTP",
        "pd_separation": "1P1D",
        "tp": 4,
        "dp": "",
        "pp": "",
        "ep": "",
        "hardware": "8xH100",
        "engine_name": "vllm",
        "engine_version": "0.8.5",
        "notes": "baseline",
    }
    return {**data, **change}


def test_plan_create_edit_clone_delete(cast, client_for):
    client = client_for(cast.bob)
    response = client.post(reverse("plan_create"), _plan_data(cast))
    assert response.status_code == 302, response.context and response.context["form"].errors
    plan = Plan.objects.get(name="new plan")
    assert plan.variant() == {
        "quantization": "fp8",
        "speculative": "MTP",
        "pd_separation": "1P1D",
        "tp": "4",
        "hardware": "8xH100",
        "engine_name": "vllm",
        "engine_version": "0.8.5",
    }
    spec = bridge.run_spec(plan)
    assert spec.endpoint.params == {"max_tokens": 64, "temperature": 0.7, "top_p": 0.9}
    assert spec.endpoint.api_key == ""  # the stored snapshot never carries the key
    assert spec.drain_s == 30
    assert (
        client.post(reverse("plan_edit", args=[plan.pk]), _plan_data(cast, name="renamed")).status_code == 302
    )
    clone = client.post(reverse("plan_clone", args=[plan.pk]))
    copy = Plan.objects.get(name="renamed (copy)")
    assert clone["Location"] == reverse("plan_edit", args=[copy.pk])
    assert client.post(reverse("plan_delete", args=[copy.pk])).status_code == 302
    assert not Plan.objects.filter(pk=copy.pk).exists()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"duration_s": "", "max_requests": ""}, "__all__", "Set a duration, a maximum number of requests"),
        ({"max_tokens": 999999}, "max_tokens", "output context"),
        ({"temperature": "3"}, "temperature", "between 0 and 2"),
        ({"bucket_edges": "4096, 1024"}, "bucket_edges", "increasing"),
        ({"bucket_edges": "a, b"}, "bucket_edges", "comma-separated whole numbers"),
        ({"extra_params": "[1]"}, "extra_params", "Must be a JSON object"),
        ({"duration_s": "-5"}, "duration_s", "more than 0"),
    ],
)
def test_plan_form_explains_bad_input(cast, client_for, change, field, message):
    response = client_for(cast.alice).post(reverse("plan_create"), _plan_data(cast, **change))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert any(message in e for e in errors[field]), errors
    assert not Plan.objects.filter(name="new plan").exists()


CAPACITY = {
    "mode": "rate",
    "load_min": "2",
    "load_max": "64",
    "attainment": "0.95",
    "level_min_requests": "100",
    "min_level_s": "",
    "warmup_s": "",
    "tolerance": "",
    "per_bucket": "on",
}


def test_capacity_profile_keeps_the_search_settings_and_runs_as_one_shard(cast, client_for):
    from benchmarks.services.runs.start import run_start

    client = client_for(cast.alice)
    data = {**PROFILE_BASE, "name": "cap", "kind": "capacity", **CAPACITY}
    response = client.post(reverse("profile_create"), data)
    assert response.status_code == 302, response.context and response.context["form"].errors
    profile = LoadProfile.objects.get(name="cap")
    assert bridge.capacity_settings(profile) == {
        "mode": "rate",
        "load_min": 2.0,
        "load_max": 64.0,
        "attainment": 0.95,
        "level_min_requests": 100,
        "min_level_s": 10.0,
        "warmup_s": 3.0,
        "tolerance": 0.05,
        "per_bucket": True,
    }
    assert bridge.profile_spec(profile).kind == "rate"  # the search replaces the load level by level
    edit = client.get(reverse("profile_edit", args=[profile.pk])).content.decode()
    assert "<legend>Capacity at SLO</legend>" in edit and "SLO attainment" in edit
    cast.plan.profile, cast.plan.shard_count = profile, 4
    cast.plan.save()
    run = run_start(plan=cast.plan, by=cast.alice)
    assert run.shard_count == 1 and run.spec["capacity"]["attainment"] == 0.95
    shard = bridge.shard_spec(run, index=0, count=1, api_key="")
    assert shard.profile.kind == "rate"  # the study keys never reach RunSpec


def test_a_kv_reuse_profile_saves_previews_and_runs_as_one_shard_of_users(cast, client_for):
    from benchmarks.services.runs.start import run_start

    client = client_for(cast.alice)
    data = {**PROFILE_BASE, "name": "kv", "kind": "kv_reuse", "users": "3", "spawn_rate": "10"}
    response = client.post(reverse("profile_create"), data)
    assert response.status_code == 302, response.context and response.context["form"].errors
    profile = LoadProfile.objects.get(name="kv")
    spec = bridge.profile_spec(profile)
    assert spec.kind == "users" and spec.users == 3  # each pass's users send every prompt once
    page = client.get(response["Location"])
    assert page.status_code == 200 and "preview-data" in page.content.decode()
    missing = client.post(reverse("profile_create"), {**data, "name": "kv2", "users": ""})
    assert missing.status_code == 400 and "Required for a “kv_reuse” profile" in str(
        missing.context["form"].errors["users"]
    )
    cast.plan.profile, cast.plan.shard_count = profile, 4
    cast.plan.save()
    run = run_start(plan=cast.plan, by=cast.alice)
    assert run.shard_count == 1 and run.spec["kv_reuse"] == {}
    assert bridge.shard_spec(run, index=0, count=1, api_key="").profile.kind == "users"


def test_capacity_profile_form_explains_a_backwards_range(cast, client_for):
    data = {**PROFILE_BASE, "name": "bad", "kind": "capacity", **CAPACITY, "load_min": "50", "load_max": "5"}
    response = client_for(cast.alice).post(reverse("profile_create"), data)
    assert response.status_code == 400
    assert "at least the lowest" in response.context["form"].errors["load_max"][0]


def test_plan_repeat_is_kept_and_defaults_to_once(cast, client_for):
    client = client_for(cast.alice)
    assert client.post(reverse("plan_create"), _plan_data(cast, repeat=3)).status_code == 302
    assert Plan.objects.get(name="new plan").repeat == 3
    assert client.post(reverse("plan_create"), _plan_data(cast, name="once")).status_code == 302
    assert Plan.objects.get(name="once").repeat == 1
    bad = client.post(reverse("plan_create"), _plan_data(cast, name="many", repeat=99))
    assert bad.status_code == 400 and "repeat" in bad.context["form"].errors


def test_a_users_profile_can_hold_multi_turn_conversations(cast, client_for):
    from benchmarks import bridge
    from benchmarks.models import LoadProfile

    response = client_for(cast.alice).post(
        reverse("profile_create"),
        {"name": "chatty", "kind": "users", "users": 4, "spawn_rate": 1, "turns": 3, "think_s": 2.5},
    )
    assert response.status_code == 302
    spec = bridge.profile_spec(LoadProfile.objects.get(name="chatty"))
    assert spec.turns == 3 and spec.think_s == 2.5


def test_a_thinking_budget_sweep_profile_from_the_form(cast, client_for):
    from benchmarks import bridge
    from benchmarks.models import LoadProfile

    client = client_for(cast.alice)
    form = {"name": "budget", "kind": "sweep", "sweep_mode": "budget", "users": 4, "level_duration_s": 60,
            "budget_param": "max_tokens", "budget_levels": "512, 2048, 8192"}  # fmt: skip
    assert client.post(reverse("profile_create"), form).status_code == 302
    spec = bridge.profile_spec(LoadProfile.objects.get(name="budget"))
    assert spec.sweep_mode == "budget" and spec.budget_levels == ["512", "2048", "8192"]
    assert spec.sweep_levels == [4.0, 4.0, 4.0]  # the same users at every level
    bad = client.post(reverse("profile_create"), {**form, "name": "bad", "budget_levels": "lots, more"})
    assert bad.status_code == 400 and "whole numbers" in str(bad.context["form"].errors["budget_levels"])
    effort = client.post(
        reverse("profile_create"),
        {**form, "name": "effort", "budget_param": "reasoning_effort", "budget_levels": "low, high"},
    )
    assert effort.status_code == 302


def test_a_capacity_profile_previews_its_bracket_of_levels(cast, client_for):
    from benchmarks.models import LoadProfile

    profile = LoadProfile.objects.create(
        team=cast.team_a, name="search", kind="capacity",
        spec={"mode": "rate", "load_min": 1.0, "load_max": 8.0, "warmup_s": 2.0, "min_level_s": 8.0},
    )  # fmt: skip
    response = client_for(cast.alice).get(reverse("profile_detail", args=[profile.pk]))
    assert response.status_code == 200
    trace = response.context["preview"]["data"][0]
    assert list(trace["y"]) == [1.0, 2.0, 4.0, 8.0, 8.0] and list(trace["x"])[-1] == 40.0
