"""The REST API with team-scoped tokens: created in the UI and shown once, stored as a hash; 401 without
one, 404 for another team's objects."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from benchmarks.models import ApiToken, Membership, Plan, Run
from benchmarks.services.api_tokens import api_token_create
from tests.benchmarks.compare_runs import finished_run


@pytest.fixture
def no_dispatch(monkeypatch):
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a, **kw: None)


@pytest.fixture
def token(cast) -> str:
    return api_token_create(team=cast.team_a, by=cast.bob, name="team-a-deploy-gate")[1]


def api(token: str | None = None) -> Client:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client(**headers)


def test_token_is_shown_once_and_only_its_hash_is_kept(cast, client_for):
    client = client_for(cast.alice)
    response = client.post(reverse("api_token_new"), {"name": "deploy pipeline"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    token = re.search(r'id="token-value">(llmp_[\w-]+)<', response.content.decode()).group(1)
    row = ApiToken.objects.get(name="deploy pipeline")
    assert row.key_hash == ApiToken.digest(token) and token not in str(row.__dict__)
    listing = client.get(reverse("api_token_list")).content.decode()
    assert "deploy pipeline" in listing and token not in listing and row.hint in listing
    assert api(token).get(reverse("api_plan_list")).status_code == 200


def test_without_a_valid_token_401(cast, token):
    for client in (api(None), api("llmp_not-a-real-token"), Client(HTTP_AUTHORIZATION="Basic YWxpY2U6eA==")):
        response = client.get(reverse("api_plan_list"))
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    session = Client()
    session.force_login(cast.alice)  # a browser session is not an API credential
    assert session.get(reverse("api_plan_list")).status_code == 401


def test_every_answer_carries_its_schema_version(cast, token):
    from runner import SCHEMA_VERSION

    body = api(token).get(reverse("api_plan_list")).json()
    assert body["schema_version"] == SCHEMA_VERSION >= 2


def test_plans_are_the_tokens_team_only(cast, token):
    plans = api(token).get(reverse("api_plan_list")).json()["plans"]
    assert [p["id"] for p in plans] == [cast.plan.pk]
    assert plans[0]["variant"] == {"quantization": "fp8", "tp": "2"}


def test_start_poll_and_fetch_summary(cast, token, no_dispatch):
    client = api(token)
    response = client.post(reverse("api_run_start", args=[cast.plan.pk]))
    assert response.status_code == 201
    run = Run.objects.get(pk=response.json()["id"])
    assert run.created_by == cast.bob and run.plan == cast.plan
    status = client.get(response.json()["url"]).json()
    assert status["status"] == "queued" and status["active"] is True
    assert client.get(status["summary_url"]).status_code == 409
    done = finished_run(cast.plan, seed=1)
    body = client.get(reverse("api_run_summary", args=[done.pk])).json()
    assert (
        body["status"] == "finished" and body["summary"]["ttft_ms"]["p50"] == done.summary["ttft_ms"]["p50"]
    )
    listed = client.get(reverse("api_run_list"), {"plan": cast.plan.pk}).json()["runs"]
    assert listed[0]["id"] == done.pk  # newest first


def test_another_teams_objects_are_404(cast, token, no_dispatch):
    carol_run = finished_run(Plan.objects.get(team=cast.team_b), seed=1)
    client = api(token)
    assert client.post(reverse("api_run_start", args=[carol_run.plan_id])).status_code == 404
    assert client.get(reverse("api_run", args=[carol_run.pk])).status_code == 404
    assert client.get(reverse("api_run_summary", args=[carol_run.pk])).status_code == 404
    assert client.get(reverse("api_compare"), {"runs": f"{cast.run.pk},{carol_run.pk}"}).status_code == 404
    assert not Run.objects.filter(plan=carol_run.plan).exclude(pk=carol_run.pk).exists()


def test_compare_over_the_api(cast, token):
    a, b = finished_run(cast.plan, seed=1), finished_run(cast.plan, seed=2, ttft_ms=150)
    body = api(token).get(reverse("api_compare"), {"runs": f"{a.pk},{b.pk}"}).json()
    row = next(r for r in body["comparison"]["rows"] if r["path"] == "ttft_ms.p50")
    assert row["deltas"][1]["verdict"] == "worse"


def test_revoked_token_or_departed_creator_stops_working(cast, token, client_for):
    assert api(token).get(reverse("api_plan_list")).status_code == 200
    Membership.objects.filter(team=cast.team_a, user=cast.bob).update(role=Membership.Role.VIEWER)
    assert api(token).get(reverse("api_plan_list")).status_code == 401
    Membership.objects.filter(team=cast.team_a, user=cast.bob).update(role=Membership.Role.MEMBER)
    row = ApiToken.objects.get()
    assert client_for(cast.alice).post(reverse("api_token_revoke", args=[row.pk])).status_code == 302
    assert api(token).get(reverse("api_plan_list")).status_code == 401


def test_viewers_and_outsiders_cannot_manage_tokens(cast, client_for, token):
    row = ApiToken.objects.get()
    assert client_for(cast.vera).post(reverse("api_token_new"), {"name": "x"}).status_code == 403
    assert client_for(cast.vera).post(reverse("api_token_revoke", args=[row.pk])).status_code == 403
    assert client_for(cast.carol).post(reverse("api_token_revoke", args=[row.pk])).status_code == 404
    # carol's own token page never shows team A's token (a distinctive name: CSRF tokens are random text)
    assert "team-a-deploy-gate" not in client_for(cast.carol).get(reverse("api_token_list")).content.decode()


def test_the_run_list_pages_through_every_run(cast, token):
    for seed in range(7):
        finished_run(cast.plan, seed=seed)
    client = api(token)
    body = client.get(reverse("api_run_list"), {"per_page": 3}).json()
    seen = [r["id"] for r in body["runs"]]
    assert body["count"] == 8 and len(seen) == 3  # 7 here and the cast's own run
    while body["next"]:
        body = client.get(body["next"]).json()
        seen += [r["id"] for r in body["runs"]]
    assert len(seen) == len(set(seen)) == 8
