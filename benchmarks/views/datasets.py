"""Datasets: upload and validate, synthesise, versions, token counts with live progress, the
length/bucket/cost analysis page, and downloads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from benchmarks import charts
from benchmarks.dataset_forms import DatasetForm, EdgesForm, SyntheticForm
from benchmarks.decorators import team_required, writer_required
from benchmarks.models import Dataset, DatasetVersion, Endpoint, Plan, Run, TokenCount
from benchmarks.models.datasets import tokenizer_ref
from benchmarks.selectors.datasets import (
    counts_done,
    counts_for_sending,
    default_tokenizer,
    item_rows,
    length_summary,
    over_context,
    plan_estimate,
    progress,
    team_edges,
    tokenizer_choices,
    version_get,
    versions_of,
)
from benchmarks.selectors.objects import can_write, in_team, object_get
from benchmarks.services.datasets import (
    NewItems,
    dataset_clone,
    dataset_create,
    dataset_update,
    team_buckets_set,
    token_count_request,
)
from benchmarks.services.datasets import synthetic_create as synthetic_dataset_create
from benchmarks.views import crud
from benchmarks.views.helpers import ensure_can_write

ENTITY = crud.Entity(Dataset, "dataset", "dataset", lambda request, obj: None)
SAMPLE_ROWS = 50


@team_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    datasets = in_team(Dataset, team=team).prefetch_related("versions")
    rows = [(d, d.current_version()) for d in datasets]
    edges = team_edges(team)
    context = {"rows": rows, "edges_form": EdgesForm(initial={"edges": edges}), "edges": edges}
    return render(request, "benchmarks/datasets/list.html", context)


@writer_required
def team_buckets_edit(request: HttpRequest) -> HttpResponse:
    form = EdgesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team_buckets_set(team=request.team, edges=form.cleaned_data["edges"])  # type: ignore[attr-defined]
        messages.success(request, "Bucket edges saved.")
        return redirect("dataset_list")
    if request.method == "POST":
        messages.error(request, "; ".join(form.errors.get("edges", ["Invalid edges."])))
    return redirect("dataset_list")


@writer_required
def dataset_upload(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    form = DatasetForm(
        request.POST or None, request.FILES or None, team=team, initial={"tokenizer": default_tokenizer(team)}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        dataset = dataset_create(
            team=team,
            name=data["name"],
            description=data["description"],
            tokenizer=data["tokenizer"],
            new=_new_items(data),
            by=request.user,
        )
        messages.success(
            request, f"Dataset “{dataset}” saved ({dataset.item_count} prompts); counting tokens."
        )
        return redirect("dataset_detail", pk=dataset.pk)
    return _form_page(request, form, "New dataset")


@writer_required
def dataset_generate(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    form = SyntheticForm(request.POST or None, team=team, initial={"tokenizer": default_tokenizer(team)})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        dataset = synthetic_dataset_create(
            team=team,
            name=data["name"],
            description=data["description"],
            tokenizer=data["tokenizer"],
            params=data["params"],
            by=request.user,
        )
        messages.success(request, f"Generating “{dataset}” in the background.")
        return redirect("dataset_detail", pk=dataset.pk)
    return _form_page(request, form, "New synthetic dataset", template="benchmarks/datasets/synthetic.html")


@team_required
def dataset_edit(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = object_get(Dataset, user=request.user, pk=pk)
    ensure_can_write(request, dataset)
    initial = {"name": dataset.name, "description": dataset.description, "tokenizer": dataset.tokenizer}
    form = DatasetForm(
        request.POST or None,
        request.FILES or None,
        team=dataset.team,
        require_items=False,
        tokenizer=dataset.tokenizer,
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        version = dataset_update(
            dataset=dataset,
            name=data["name"],
            description=data["description"],
            tokenizer=data["tokenizer"],
            new=_new_items(data, source=DatasetVersion.Source.EDIT) if data.get("parsed") else None,
            by=request.user,
        )
        if version is not None:
            messages.success(request, f"Saved as version {version.number}; earlier runs keep theirs.")
        else:
            messages.info(request, "No new version: the prompts, name and description are unchanged.")
        return redirect("dataset_detail", pk=pk)
    return _form_page(request, form, f"Edit dataset “{dataset}”", dataset=dataset)


@team_required
@require_POST
def dataset_clone_view(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = object_get(Dataset, user=request.user, pk=pk)
    ensure_can_write(request, dataset)
    copy = dataset_clone(dataset=dataset, by=request.user)
    messages.success(request, f"Cloned as “{copy}”.")
    return redirect("dataset_detail", pk=copy.pk)


@team_required
def dataset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    return crud.delete_view(request, ENTITY, pk)


@team_required
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = object_get(Dataset, user=request.user, pk=pk)
    version = dataset.current_version() or dataset.versions.order_by("-number").first()
    return _version_page(request, dataset, version)


@team_required
def version_detail(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    dataset = object_get(Dataset, user=request.user, pk=pk)
    return _version_page(request, dataset, version_get(dataset=dataset, number=number))


@team_required
def version_progress(request: HttpRequest, pk: int, number: int) -> JsonResponse:
    """Polled by the dataset page while counts or a synthetic version are being made."""
    dataset = object_get(Dataset, user=request.user, pk=pk)
    return JsonResponse(progress(version_get(dataset=dataset, number=number)))


@team_required
@require_POST
def version_count(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    dataset = object_get(Dataset, user=request.user, pk=pk)
    ensure_can_write(request, dataset)
    version = version_get(dataset=dataset, number=number)
    ref = tokenizer_ref(request.POST.get("tokenizer"))
    if ref not in dict(tokenizer_choices(dataset.team)):
        messages.error(request, f"Unknown tokenizer {ref!r}.")
    elif version.state == DatasetVersion.State.READY:
        count = token_count_request(version=version, tokenizer=ref)
        messages.info(request, f"Counting with {ref}." if count.is_active else f"Already counted with {ref}.")
    return redirect("dataset_version", pk=pk, number=number)


@team_required
def version_download(request: HttpRequest, pk: int, number: int) -> StreamingHttpResponse:
    """The version's items as JSONL (the upload format), with every finished token count."""
    dataset = object_get(Dataset, user=request.user, pk=pk)
    version = version_get(dataset=dataset, number=number)
    response = StreamingHttpResponse(_jsonl(version), content_type="application/jsonl")
    name = f"dataset-{dataset.pk}-v{version.number}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _jsonl(version: DatasetVersion) -> Iterator[str]:
    counts = list(version.token_counts.filter(status=TokenCount.Status.DONE))
    for item in version.items.order_by("index").iterator(chunk_size=1000):
        row: dict[str, Any] = {"id": item.key}
        row["messages" if item.messages else "prompt"] = item.messages or item.prompt
        for name in ("expected", "max_tokens"):
            if getattr(item, name) is not None:
                row[name] = getattr(item, name)
        if item.metadata:
            row["metadata"] = item.metadata
        row["input_tokens"] = {
            c.tokenizer: c.counts[item.index] for c in counts if item.index < len(c.counts)
        }
        yield json.dumps(row, ensure_ascii=False) + "\n"


# --- helpers -------------------------------------------------------------------------------------


def _version_page(request: HttpRequest, dataset: Dataset, version: DatasetVersion | None) -> HttpResponse:
    team = dataset.team
    plans = Plan.objects.filter(team=team, dataset=dataset).select_related("endpoint", "profile")
    plan = _pick(plans, request.GET.get("plan"))
    endpoint = _pick(Endpoint.objects.filter(team=team), request.GET.get("endpoint")) or (
        plan.endpoint if plan else None
    )
    context: dict[str, Any] = {
        "dataset": dataset,
        "object": dataset,
        "entity": ENTITY,
        "version": version,
        "versions": versions_of(dataset)[:50],
        "can_edit": can_write(dataset, user=request.user),
        "plans": plans,
        "plan": plan,
        "endpoints": Endpoint.objects.filter(team=team),
        "endpoint": endpoint,
        "tokenizers": tokenizer_choices(team),
    }
    if version is not None:
        context |= _analysis(request, dataset, version, plan=plan, endpoint=endpoint)
    return render(request, "benchmarks/datasets/detail.html", context)


def _analysis(
    request: HttpRequest,
    dataset: Dataset,
    version: DatasetVersion,
    *,
    plan: Plan | None,
    endpoint: Endpoint | None,
) -> dict[str, Any]:
    wanted = tokenizer_ref(
        request.GET.get("tokenizer") or (endpoint.tokenizer if endpoint else dataset.tokenizer)
    )
    counts = counts_done(version, wanted) or counts_for_sending(version, dataset.tokenizer)
    max_input = endpoint.max_input_tokens if endpoint else None
    context: dict[str, Any] = {
        "is_current": dataset.current_version() == version,
        "progress": progress(version),
        "wanted": wanted,
        "counts": counts,
        "counts_stand_in": counts is not None and counts.tokenizer != wanted,
        "rows": item_rows(version, counts, limit=SAMPLE_ROWS, max_input=max_input),
        "runs": Run.objects.filter(dataset_version=version).order_by("-created_at")[:20],
    }
    if counts is not None:
        edges = team_edges(dataset.team)
        context["lengths"] = length_summary(counts, edges)
        context["histogram"] = charts.token_histogram(
            list(counts.counts), estimated=counts.estimated, tokenizer=counts.tokenizer_name, limit=max_input
        )
        if endpoint is not None:
            context["over"] = over_context(version, counts, endpoint.max_input_tokens)
    if plan is not None and version.state == DatasetVersion.State.READY:
        context["estimate"] = plan_estimate(plan=plan, version=version)
    return context


def _pick(queryset: Any, raw: str | None) -> Any:
    return queryset.filter(pk=int(raw)).first() if raw and raw.isdigit() else None


def _new_items(data: dict[str, Any], source: str | None = None) -> NewItems:
    parsed = data["parsed"]
    filename = data.get("filename", "")
    pasted = filename == "pasted"
    how = "pasted" if pasted else filename
    return NewItems(
        items=parsed.items,
        source=source or (DatasetVersion.Source.PASTE if pasted else DatasetVersion.Source.UPLOAD),
        note=f"{how} ({parsed.format}, {len(parsed.items):,} prompts)",
        filename="" if pasted else filename,
        format=parsed.format,
        multi_turn=bool(data.get("multi_turn")),
    )


def _form_page(
    request: HttpRequest,
    form: Any,
    title: str,
    *,
    dataset: Dataset | None = None,
    template: str = "benchmarks/datasets/form.html",
) -> HttpResponse:
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "title": title,
        "dataset": dataset,
        "row_errors": getattr(form, "row_errors", []),
    }
    return render(request, template, context, status=status)


def run_dataset_context(request: HttpRequest, run: Run, metrics: list[tuple[str, str]]) -> dict[str, Any]:
    """The finished run page's per-bucket blocks (every metric) and its token audit."""
    from benchmarks.selectors.token_audit import run_token_audit

    raw = request.GET.get("audit_threshold", "")
    threshold = float(raw) / 100 if raw.replace(".", "", 1).isdigit() else 0.05
    blocks = [
        {
            "label": b.get("label"),
            "block": b,
            "metrics": [(label, b.get(key) or {}) for key, label in metrics],
        }
        for b in (run.summary or {}).get("buckets") or []
    ]
    return {"bucket_blocks": blocks, "audit": run_token_audit(run, threshold=threshold)}
