"""Endpoints, datasets, load profiles and plans: the things a run is made of."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from benchmarks import bridge
from benchmarks.charts.profiles import capacity_figure, profile_figure
from benchmarks.decorators import team_required, writer_required
from benchmarks.forms.library import EndpointForm, PlanForm, ProfileForm
from benchmarks.forms.stream_format import StreamFormatForm
from benchmarks.http import TeamRequest
from benchmarks.models import Endpoint, LoadProfile, Plan, Run
from benchmarks.presenters.plans import plan_form_preview
from benchmarks.selectors.datasets import plan_over_context
from benchmarks.selectors.objects import can_write, object_get
from benchmarks.selectors.runs import runs_for_plan
from benchmarks.services.endpoints import endpoint_save, endpoint_test_connection
from benchmarks.services.runs.start import run_start
from benchmarks.views import crud
from benchmarks.views.helpers import ensure_can_write


def _endpoint_form(request: HttpRequest, obj: Endpoint | None) -> EndpointForm:
    return EndpointForm(request.POST or None, instance=obj)


def _endpoint_save(form: EndpointForm, team: Any, obj: Endpoint | None) -> Endpoint:
    return endpoint_save(
        form=form,
        team=team,
        api_key=form.cleaned_data.get("api_key", ""),
        clear_api_key=form.cleaned_data.get("clear_api_key", False),
    )


def _plan_form(request: TeamRequest, obj: Plan | None) -> PlanForm:
    team = obj.team if obj else request.team
    return PlanForm(request.POST or None, instance=obj, team=team)


ENDPOINTS = crud.Entity(
    Endpoint,
    "endpoint",
    "endpoint",
    _endpoint_form,
    [("protocol", "Protocol"), ("base_url", "Base URL"), ("model", "Model")],
    save=_endpoint_save,
    template_form="benchmarks/endpoints/form.html",
)
PROFILES = crud.Entity(
    LoadProfile,
    "profile",
    "load profile",
    lambda request, obj: ProfileForm(request.POST or None, instance=obj),
    [("kind", "Kind")],
    template_form="benchmarks/profile_form.html",
)
PLANS = crud.Entity(
    Plan,
    "plan",
    "plan",
    _plan_form,
    [("endpoint", "Endpoint"), ("dataset", "Dataset"), ("profile", "Profile")],
    template_form="benchmarks/plans/form.html",
)
ENTITIES = {e.prefix: e for e in (ENDPOINTS, PROFILES, PLANS)}  # datasets: views/datasets.py


@team_required
def object_list(request: HttpRequest, kind: str) -> HttpResponse:
    return crud.list_view(request, ENTITIES[kind])


@writer_required
def object_create(request: HttpRequest, kind: str) -> HttpResponse:
    return crud.create_view(request, ENTITIES[kind])


@team_required
def object_edit(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    return crud.edit_view(request, ENTITIES[kind], pk)


@team_required
@require_POST
def object_clone(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    return crud.clone_view(request, ENTITIES[kind], pk)


@team_required
def object_delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    return crud.delete_view(request, ENTITIES[kind], pk)


SAMPLE_MAX_CHARS = 100_000


@team_required
@require_POST
def endpoint_stream_check(request: HttpRequest) -> HttpResponse:
    """A pasted sample stream, line by line, as the endpoint form's stream format reads it (JSON)."""
    form = StreamFormatForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": {name: list(errors) for name, errors in form.errors.items()}})
    sample = (request.POST.get("stream_sample") or "")[:SAMPLE_MAX_CHARS]
    return JsonResponse({"rows": form.classify(sample)})


@team_required
@require_POST
def plan_preview(request: TeamRequest) -> HttpResponse:
    """What the plan form describes, before it is saved or run (JSON for the form's panel)."""
    form = PlanForm(request.POST, team=request.team)
    form.is_valid()  # the preview needs the cleaned choices, not a valid form
    return JsonResponse(plan_form_preview(form=form))


@team_required
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = object_get(Endpoint, user=request.user, pk=pk)
    return render(request, "benchmarks/endpoint_detail.html", _detail(request, ENDPOINTS, endpoint))


@team_required
@require_POST
def endpoint_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = object_get(Endpoint, user=request.user, pk=pk)
    ensure_can_write(request, endpoint)
    prompt = (request.POST.get("prompt") or "Say hello in five words.").strip()[:4000]
    result = endpoint_test_connection(endpoint=endpoint, prompt=prompt)
    context = _detail(request, ENDPOINTS, endpoint) | {"probe": result, "prompt": prompt}
    return render(request, "benchmarks/endpoint_detail.html", context)


def _preview(profile: LoadProfile, title: str, horizon_s: float | None) -> Any:
    capacity = bridge.capacity_settings(profile)
    if capacity is not None:  # a search: its bracket of levels, not one flat rate
        return capacity_figure(capacity, title)
    return profile_figure(bridge.profile_spec(profile), title, horizon_s=horizon_s)


@team_required
def profile_detail(request: HttpRequest, pk: int) -> HttpResponse:
    profile = object_get(LoadProfile, user=request.user, pk=pk)
    context = _detail(request, PROFILES, profile) | {"preview": _preview(profile, profile.name, None)}
    return render(request, "benchmarks/profile_detail.html", context)


@team_required
def plan_detail(request: HttpRequest, pk: int) -> HttpResponse:
    plan = object_get(Plan, user=request.user, pk=pk)
    title = f"{plan.profile.name} over the plan's duration"
    context = _detail(request, PLANS, plan) | {
        "preview": _preview(plan.profile, title, plan.duration_s),
        "runs": runs_for_plan(plan=plan)[:20],
        "over_context": plan_over_context(plan),
    }
    return render(request, "benchmarks/plan_detail.html", context)


@team_required
@require_POST
def plan_start(request: HttpRequest, pk: int) -> HttpResponse:
    plan = object_get(Plan, user=request.user, pk=pk)
    ensure_can_write(request, plan)
    try:
        run: Run = run_start(plan=plan, by=request.user)
    except bridge.RunRefused as exc:  # nothing to send, or past the limits
        messages.error(request, str(exc))
        return redirect("plan_detail", pk=pk)
    messages.success(request, f"Run {run.pk} queued.")
    return redirect("run_detail", pk=run.pk)


def _detail(request: HttpRequest, entity: crud.Entity, obj: Any) -> dict[str, Any]:
    return {"entity": entity, "object": obj, "can_edit": can_write(obj, user=request.user)}


@team_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("run_list")
