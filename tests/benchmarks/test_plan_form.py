"""The plan form a person can read: groups, labels in words with units, help on every field, messages
that say what to do; and what the plan will do before it runs — requests, tokens, cost, duration and
the profile's shape — from a plain function of profile, dataset counts and endpoint prices."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from benchmarks.forms.library import PlanForm
from benchmarks.models import Endpoint, LoadProfile, Run, TokenCount
from benchmarks.presenters.plans import plan_preview
from benchmarks.services.datasets import token_count_execute
from tests.benchmarks.factories import make_finished_run
from tests.benchmarks.test_library import _plan_data

pytestmark = pytest.mark.django_db


def _counted(plan):
    """The plan's dataset counted (the estimate: ceil(chars / 4)), as the Celery task would."""
    version = plan.dataset.current_version()
    for count in TokenCount.objects.filter(version=version):
        token_count_execute(count_id=count.pk)
    return version


def _priced(plan, price_in="1.0", price_out="2.0"):
    plan.endpoint.price_in_per_1k, plan.endpoint.price_out_per_1k = Decimal(price_in), Decimal(price_out)
    plan.endpoint.save()


def test_an_open_loop_plan_expects_its_schedule_and_prices_its_tokens(cast):
    plan = cast.plan
    plan.profile = LoadProfile.objects.create(
        team=cast.team_a, name="2/s", kind="rate", spec={"rate": 2.0, "arrival": "constant"}
    )
    plan.duration_s, plan.max_tokens, plan.drain_s = 30.0, 100, 10.0
    _priced(plan)
    out = plan_preview(plan=plan, version=_counted(plan), last_e2e=None)
    assert out["requests"] == pytest.approx(60, rel=0.02)  # 2 requests/s for 30 s
    assert out["duration_s"] == pytest.approx(30) and out["drain_s"] == 10.0
    # "Tell me about item 0." is 21 characters: 6 estimated tokens; item 10 would be 7 (none here)
    assert out["mean_input_tokens"] == 6 and out["estimated"]
    assert out["input_tokens"] == pytest.approx(6 * out["requests"])
    assert out["output_tokens_max"] == pytest.approx(100 * out["requests"])
    assert out["cost_max"] == pytest.approx(
        out["input_tokens"] / 1000 * 1.0 + out["output_tokens_max"] / 1000 * 2.0
    )
    assert out["figure"]["data"][0]["y"][1] == pytest.approx(2.0)

    plan.max_requests = 10
    assert plan_preview(plan=plan, version=_counted(plan), last_e2e=None)["requests"] == 10


def test_a_closed_loop_plan_needs_a_measured_latency_and_says_so(cast):
    plan = cast.plan  # two users at once for the plan's duration
    plan.duration_s = 30.0
    unknown = plan_preview(plan=plan, version=_counted(plan), last_e2e=None)
    assert unknown["requests"] is None and "input_tokens" not in unknown
    assert any("no finished run" in n for n in unknown["notes"])

    measured = plan_preview(plan=plan, version=_counted(plan), last_e2e=(7, 500.0))
    assert measured["requests"] == pytest.approx(2 * 30 / 0.5, rel=0.02)  # user-seconds / E2E
    assert any("500 ms" in n and "run #7" in n for n in measured["notes"])


def test_a_capacity_search_has_no_count_before_it_runs(cast):
    plan = cast.plan
    plan.profile = LoadProfile.objects.create(
        team=cast.team_a, name="cap", kind="capacity", spec={"kind": "capacity", "load_min": 1, "load_max": 8}
    )
    out = plan_preview(plan=plan, version=_counted(plan), last_e2e=None)
    assert out["requests"] is None and out["duration_s"] is None
    assert any("capacity search" in n for n in out["notes"])


def test_the_preview_view_answers_for_an_unsaved_form(cast, client_for):
    client = client_for(cast.alice)
    _counted(cast.plan)
    run = make_finished_run(cast.plan)
    Run.objects.filter(pk=run.pk).update(summary={"e2e_ms": {"p50": 250.0}})
    data = _plan_data(cast, name="", duration_s=20)  # a missing name does not stop the preview
    out = client.post(reverse("plan_preview"), data).json()
    assert out["requests"] == pytest.approx(2 * 20 / 0.25, rel=0.02)
    assert any(f"run #{run.pk}" in n for n in out["notes"])
    assert out["figure"]["data"] and out["mean_input_tokens"] == 6

    missing = client.post(reverse("plan_preview"), _plan_data(cast, endpoint="")).json()
    assert "Pick an endpoint" in missing["error"]
    other_team = client.post(
        reverse("plan_preview"), _plan_data(cast, endpoint=Endpoint.objects.get(team=cast.team_b).pk)
    )
    assert "Pick an endpoint" in other_team.json()["error"]  # another team's endpoint is not a choice
    bad = client.post(reverse("plan_preview"), _plan_data(cast, duration_s="soon")).json()
    assert bad["error"] == "Fix Duration (s) to see what the plan will do."
    assert client.get(reverse("plan_preview")).status_code == 405

    page = client.get(reverse("plan_create")).content.decode()
    assert 'id="plan-preview"' in page and "js/plan_form.js" in page and "<script>" not in page


def test_the_form_is_grouped_labelled_in_words_and_helped(cast):
    form = PlanForm(team=cast.team_a)
    legends = [g["legend"] for g in form.fieldsets()]
    assert legends == ["Target", "Load", "Stop conditions", "SLOs", "Analysis", "Variant tags", "Scale"]
    grouped = [f.name for g in form.fieldsets() for f in g["fields"]]
    assert sorted(grouped) == sorted(form.fields)  # every field in exactly one group
    for name, field in form.fields.items():
        assert field.help_text, f"{name} has no help text"
        if name.endswith(("_s", "_ms")):  # Django's own label would read "Slo ttft ms", "Drain s"
            assert field.label.endswith(("(s)", "(ms)", "per request)")), (
                f"{name}: no unit in {field.label!r}"
            )
    labels = {name: field.label for name, field in form.fields.items()}
    assert labels["slo_ttft_ms"] == "TTFT SLO (ms)"
    assert labels["drain_s"] == "Drain time (s)"
    assert labels["length_is_failure"] == "Count length-capped answers as failures"


def test_a_missing_choice_says_what_to_do(cast, client_for):
    response = client_for(cast.alice).post(reverse("plan_create"), _plan_data(cast, endpoint="", drain_s=""))
    errors = response.context["form"].errors
    assert errors["endpoint"] == ["Pick the endpoint to send load to (add one under Endpoints first)."]
    assert "Give the drain time in seconds" in errors["drain_s"][0]
    assert "<legend>Stop conditions</legend>" in response.content.decode()


def test_the_profile_form_is_grouped_labelled_and_helped():
    from benchmarks.forms.library import ProfileForm

    form = ProfileForm()
    grouped = [f.name for g in form.fieldsets() for f in g["fields"]]
    assert sorted(grouped) == sorted(form.fields)
    for name, field in form.fields.items():
        assert field.help_text, f"{name} has no help text"
        if name.endswith("_s"):
            assert field.label.endswith("(s)"), f"{name}: no unit in {field.label!r}"
    assert form.fields["spawn_rate"].label == "Spawn rate (users/s)"
