"""REST endpoints: list plans, start a run, poll it, fetch its summary, compare runs. Thin: selectors
read, services write, and ``request.auth.team`` scopes every lookup."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.urls import reverse
from rest_framework import status
from rest_framework.decorators import api_view, authentication_classes, permission_classes, renderer_classes
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from benchmarks.api.auth import ApiTokenAuthentication, HasTeamToken
from benchmarks.models import Plan, Run
from benchmarks.presenters.accuracy import summary_current
from benchmarks.presenters.compare import comparison_build
from benchmarks.presenters.records import records_jsonl_response, requests_csv_response
from benchmarks.selectors.comparisons import NotComparable, parse_run_ids, runs_outside_team, runs_to_compare
from benchmarks.selectors.objects import team_object_get
from benchmarks.selectors.runs import plans_for_team, progress, queue_place, runs_filtered
from benchmarks.services.runs.start import run_start
from runner import SCHEMA_VERSION


class VersionedJSONRenderer(JSONRenderer):
    """Every API answer says which shape it has (``schema_version``, listed in CHANGELOG.md)."""

    def render(self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, dict):
            data = {"schema_version": SCHEMA_VERSION, **data}
        return super().render(data, accepted_media_type, renderer_context)


class AnyRenderer(BaseRenderer):
    """Lets a download's own type (CSV, JSONL) through content negotiation: the view streams the
    body itself, whatever ``Accept`` asked for; errors still come as JSON."""

    media_type = "*/*"
    format = "download"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> Any:
        response = (renderer_context or {}).get("response")
        if response is not None:  # an error on the way to a download: said in JSON, labelled so
            response["Content-Type"] = "application/json"
        return JSONRenderer().render(data, "application/json", renderer_context)


def endpoint(*methods: str, download: bool = False):  # type: ignore[no-untyped-def]
    def wrap(view):  # type: ignore[no-untyped-def]
        renderers = [VersionedJSONRenderer, AnyRenderer] if download else [VersionedJSONRenderer]
        view = renderer_classes(renderers)(view)
        view = permission_classes([HasTeamToken])(view)
        view = authentication_classes([ApiTokenAuthentication])(view)
        return api_view(list(methods))(view)

    return wrap


def _team_object(model: type[Plan] | type[Run], request: Request, pk: int) -> Any:
    return team_object_get(model, team=request.auth.team, pk=pk)


def _plan(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.pk,
        "name": plan.name,
        "endpoint": plan.endpoint.name,
        "dataset": plan.dataset.name,
        "profile": plan.profile.name,
        "variant": plan.variant(),
        "start_url": reverse("api_run_start", args=[plan.pk]),
    }


def _run(run: Run) -> dict[str, Any]:
    done, eta = progress(run, run.snapshot or {})
    return {
        "id": run.pk,
        "plan": run.plan_id,
        "plan_name": run.plan_name,
        "status": run.status,
        "active": run.is_active,
        "reason": run.reason,  # a queued run: what it waits for
        "queue_place": queue_place(run),  # a queued run's place in line (1 = next), else null
        "variant": run.variant,
        "progress": round(done, 4),
        "eta_s": None if eta is None else round(eta, 1),
        "requests": run.requests_total,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "url": reverse("api_run", args=[run.pk]),
        "summary_url": reverse("api_run_summary", args=[run.pk]),
        "records_url": reverse("api_run_records_jsonl", args=[run.pk]),
        "requests_csv_url": reverse("api_run_requests_csv", args=[run.pk]),
        "page": reverse("run_detail", args=[run.pk]),
    }


@endpoint("GET")
def plan_list(request: Request) -> Response:
    plans = plans_for_team(team=request.auth.team)
    return Response({"plans": [_plan(p) for p in plans]})


@endpoint("POST")
def run_start_view(request: Request, pk: int) -> Response:
    plan = _team_object(Plan, request, pk)
    try:
        run = run_start(plan=plan, by=request.user)
    except ValueError as exc:  # bridge.RunRefused: nothing to send, or past the limits
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(_run(run), status=status.HTTP_201_CREATED)


@endpoint("GET")
def run_list(request: Request) -> Response:
    """Newest first, ``per_page`` (≤ 200, default 50) at a time; ``next`` links the following page."""
    query = request.query_params
    plan, tag = query.get("plan", ""), query.get("tag", "")
    runs = runs_filtered(team=request.auth.team, plan_id=int(plan) if plan.isdigit() else None, tag=tag)
    per_page = min(200, max(1, int(query["per_page"]))) if query.get("per_page", "").isdigit() else 50
    page = Paginator(runs, per_page).get_page(query.get("page"))
    following = None
    if page.has_next():
        rest = query.copy()
        rest["page"] = str(page.next_page_number())
        following = request.build_absolute_uri(f"{request.path}?{rest.urlencode()}")
    return Response(
        {"runs": [_run(r) for r in page.object_list], "count": page.paginator.count, "next": following}
    )


@endpoint("GET")
def run_detail(request: Request, pk: int) -> Response:
    return Response(_run(_team_object(Run, request, pk)))


@endpoint("GET")
def run_summary(request: Request, pk: int) -> Response:
    run = _team_object(Run, request, pk)
    if run.is_active:
        return Response(
            {"detail": f"Run {pk} is {run.status}; poll {reverse('api_run', args=[pk])}."}, status=409
        )
    summary = summary_current(run.summary)
    return Response({"id": run.pk, "status": run.status, "variant": run.variant, "summary": summary})


@endpoint("GET", download=True)
def run_records_jsonl(request: Request, pk: int) -> StreamingHttpResponse:
    """Every raw record of the run, one JSON object a line, streamed (the run page's JSONL)."""
    return records_jsonl_response(_team_object(Run, request, pk))


@endpoint("GET", download=True)
def run_requests_csv(request: Request, pk: int) -> StreamingHttpResponse:
    """The per-request CSV, streamed (the run page's download)."""
    return requests_csv_response(_team_object(Run, request, pk))


@endpoint("GET")
def compare(request: Request) -> Response:
    """The engine's comparison (first run = baseline) of the given runs: ``?runs=3,5``."""
    ids = parse_run_ids(request.query_params.getlist("runs"))
    if runs_outside_team(run_ids=ids, team=request.auth.team):
        raise Http404("No such run")
    try:
        runs = runs_to_compare(user=request.user, run_ids=ids)
    except NotComparable as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    built = comparison_build(runs=runs, charts=False)
    return Response({"comparison": built["comparison"], "paired": built["paired"]})
