"""The deployment's limits (settings LIMIT_*): profiles, endpoints and plans past them are refused
when saved (forms and plans as code), a run past them is refused when it starts (page, API, a
repetition), the shard's engine checks them again, and previews stay small whatever the profile."""

from __future__ import annotations

import pytest
from django.urls import reverse

from benchmarks import bridge
from benchmarks.models import Endpoint, LoadProfile, Plan, Run
from benchmarks.services.api_tokens import api_token_create
from benchmarks.services.runs.start import run_start
from benchmarks.services.runs.study import shard_run_engine
from runner import LimitExceeded
from tests.benchmarks.services.test_endpoints import VALID as ENDPOINT
from tests.benchmarks.test_library import PROFILE_BASE, _plan_data


@pytest.fixture(autouse=True)
def no_enqueue(monkeypatch):
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a, **kw: None)


def errors(response) -> dict[str, list[str]]:
    return {k: list(v) for k, v in response.context["form"].errors.items()}


def test_a_billion_users_at_a_billion_per_second_is_refused_and_not_saved(cast, client_for):
    data = {**PROFILE_BASE, "name": "huge", "kind": "users", "users": "1000000000", "spawn_rate": "1e9"}
    response = client_for(cast.alice).post(reverse("profile_create"), data)
    assert response.status_code == 400
    assert errors(response) == {
        "users": ["Users is 1,000,000,000; the limit is 10,000 (LIMIT_USERS)."],
        "spawn_rate": ["Spawn rate (users/s) is 1,000,000,000; the limit is 1,000 (LIMIT_SPAWN_RATE)."],
    }
    assert not LoadProfile.objects.filter(name="huge").exists()


@pytest.mark.parametrize(
    ("kind", "fields", "field", "message"),
    [
        ("rate", {"rate": "600001", "rate_unit": "qpm"}, "rate", "(LIMIT_RATE)"),
        (
            "rate",
            {"rate": "5", "max_concurrency": "20000"},
            "max_concurrency",
            "Requests in flight is 20,000",
        ),
        ("stages", {"stages": '[{"duration_s": 90000, "target": 2}]'}, "stages", "(LIMIT_DURATION_S)"),
        ("sweep", {"sweep_levels": "1, 20000", "level_duration_s": "10"}, "sweep_levels", "(LIMIT_USERS)"),
        ("replay", {"replay": '[{"t_s": 1000000, "prompt": 0}]', "speed": "1"}, "replay", "(LIMIT_REPLAY_S)"),
        ("capacity", {"mode": "rate", "load_min": "1", "load_max": "50000"}, "load_max", "(LIMIT_RATE)"),
    ],
)
def test_each_profile_kind_is_held_to_the_limits(cast, client_for, kind, fields, field, message):
    data = {**PROFILE_BASE, "name": "over", "kind": kind, **fields}
    response = client_for(cast.alice).post(reverse("profile_create"), data)
    assert response.status_code == 400
    assert any(message in e for e in errors(response).get(field, [])), errors(response)
    assert not LoadProfile.objects.filter(name="over").exists()


def test_limits_move_with_the_settings(cast, client_for, settings):
    client = client_for(cast.alice)
    data = {**PROFILE_BASE, "name": "forty", "kind": "users", "users": "40", "spawn_rate": "5"}
    settings.LIMIT_USERS = 32
    refused = client.post(reverse("profile_create"), data)
    assert errors(refused)["users"] == ["Users is 40; the limit is 32 (LIMIT_USERS)."]
    settings.LIMIT_USERS = 40
    assert client.post(reverse("profile_create"), data).status_code == 302


def test_endpoint_timeouts_are_held_to_the_limit(cast, client_for):
    response = client_for(cast.alice).post(
        reverse("endpoint_create"), {**ENDPOINT, "name": "slow", "timeout_total_s": 7200}
    )
    assert response.status_code == 400
    assert errors(response)["timeout_total_s"] == [
        "Total timeout (s) is 7,200; the limit is 3,600 (LIMIT_TIMEOUT_S)."
    ]
    assert not Endpoint.objects.filter(name="slow").exists()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"duration_s": "100000"},
            "duration_s",
            "Duration (s) is 100,000; the limit is 86,400 (LIMIT_DURATION_S).",
        ),
        (
            {"max_requests": "1000000000"},
            "max_requests",
            "Max requests is 1,000,000,000; the limit is 10,000,000 (LIMIT_REQUESTS).",
        ),
        ({"shard_count": "1000000"}, "shard_count", "Shards is 1,000,000; the limit is 64 (LIMIT_SHARDS)."),
    ],
)
def test_plan_stops_and_shards_are_held_to_the_limits(cast, client_for, change, field, message):
    response = client_for(cast.alice).post(reverse("plan_create"), _plan_data(cast, **change))
    assert response.status_code == 400
    assert errors(response)[field] == [message]
    assert not Plan.objects.filter(name="new plan").exists()


def test_a_plan_cannot_pick_a_profile_saved_before_a_lower_limit(cast, client_for, settings):
    settings.LIMIT_USERS = 1  # the cast's profile has 2 users
    response = client_for(cast.alice).post(reverse("plan_create"), _plan_data(cast))
    assert response.status_code == 400
    assert errors(response)["profile"] == [
        f"Profile “{cast.plan.profile.name}”: users is 2; the limit is 1 (LIMIT_USERS). Edit the profile first."
    ]


def test_a_run_past_the_limits_as_they_are_now_is_refused_at_start_everywhere(cast, client_for, settings):
    before = Run.objects.count()
    settings.LIMIT_USERS = 1
    with pytest.raises(bridge.OverLimits, match=r"users is 2; the limit is 1 \(LIMIT_USERS\)"):
        run_start(plan=cast.plan, by=cast.alice)
    client = client_for(cast.alice)
    page = client.post(reverse("plan_start", args=[cast.plan.pk]), follow=True)
    assert "users is 2; the limit is 1 (LIMIT_USERS)" in page.content.decode()
    _, token = api_token_create(team=cast.team_a, by=cast.alice, name="ci")
    api = client.post(reverse("api_run_start", args=[cast.plan.pk]), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.status_code == 400 and "(LIMIT_USERS)" in api.json()["detail"]
    settings.LIMIT_USERS, settings.LIMIT_DURATION_S = 10_000, 2  # the plan runs 3 s
    with pytest.raises(bridge.OverLimits, match=r"duration \(s\) is 3; the limit is 2"):
        run_start(plan=cast.plan, by=cast.alice)
    assert Run.objects.count() == before  # nothing half-stored


def test_the_shards_engine_checks_the_limits_again_before_sending(cast):
    run = run_start(plan=cast.plan, by=cast.alice)
    spec = bridge.shard_spec(run, index=0, count=1, api_key="k", secret_headers={})
    tight = bridge.limits().__class__(users=1)
    sent = []
    with pytest.raises(LimitExceeded, match=r"users is 2; the limit is 1 \(LIMIT_USERS\)"):
        shard_run_engine(
            run=run,
            shard_index=0,
            spec=spec,
            sink=None,
            should_cancel=lambda: sent.append(1) or False,
            limits=tight,
        )
    assert sent == []  # refused before the engine started polling, let alone sending


def test_a_stored_million_second_replay_previews_in_a_fixed_number_of_points(cast, client_for, settings):
    profile = LoadProfile.objects.create(
        team=cast.team_a,
        name="old replay",
        kind="replay",
        spec={"kind": "replay", "replay": [{"t_s": 0, "prompt": 0}, {"t_s": 1e6, "prompt": 1}], "speed": 1},
    )
    client = client_for(cast.alice)
    page = client.get(reverse("profile_detail", args=[profile.pk]))
    assert page.status_code == 200
    figure = page.context["preview"]
    assert len(figure["data"][0]["x"]) == 200
    settings.LIMIT_PREVIEW_POINTS = 50
    assert (
        len(client.get(reverse("profile_detail", args=[profile.pk])).context["preview"]["data"][0]["x"]) == 50
    )


def test_plans_as_code_refuses_a_profile_past_the_limits_and_applies_nothing(cast, tmp_path):
    from benchmarks.forms.plans_as_code import PlanFileError, plans_apply

    document = {"profiles": [{"name": "flood", "kind": "users", "spec": {"users": 10**9, "spawn_rate": 1}}]}
    with pytest.raises(
        PlanFileError, match=r"profile 'flood': users: Users is 1,000,000,000; the limit is 10,000"
    ):
        plans_apply(team=cast.team_a, document=document, base_dir=tmp_path)
    assert not LoadProfile.objects.filter(name="flood").exists()
