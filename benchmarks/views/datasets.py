"""Datasets: upload and validate, synthesise, versions, token counts with live progress, the
length/bucket/cost analysis page, and downloads."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from benchmarks.decorators import team_required, writer_required
from benchmarks.forms.datasets import DatasetForm, EdgesForm, SyntheticForm
from benchmarks.http import TeamRequest, int_param
from benchmarks.models import Dataset, DatasetVersion
from benchmarks.models.datasets import tokenizer_ref
from benchmarks.presenters.datasets import version_page
from benchmarks.selectors.datasets import (
    datasets_for_team,
    default_tokenizer,
    progress,
    team_edges,
    tokenizer_choices,
    version_get,
    version_jsonl,
    version_latest,
)
from benchmarks.selectors.objects import can_write, object_get
from benchmarks.services.datasets import (
    NewItems,
    dataset_add_builtin,
    dataset_clone,
    dataset_create,
    dataset_update,
    team_buckets_set,
    token_count_request,
)
from benchmarks.services.datasets import synthetic_create as synthetic_dataset_create
from benchmarks.views import crud
from benchmarks.views.helpers import ensure_can_write
from runner import BUILTIN_DATASETS

ENTITY = crud.Entity(Dataset, "dataset", "dataset", lambda request, obj: None)


@team_required
def dataset_list(request: TeamRequest) -> HttpResponse:
    team = request.team
    rows = [(d, d.current_version()) for d in datasets_for_team(team=team)]
    edges = team_edges(team)
    context = {
        "rows": rows,
        "edges_form": EdgesForm(initial={"edges": edges}),
        "edges": edges,
        "builtins": [BUILTIN_DATASETS[name] for name in BUILTIN_DATASETS],
    }
    return render(request, "benchmarks/datasets/list.html", context)


@writer_required
def team_buckets_edit(request: TeamRequest) -> HttpResponse:
    form = EdgesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team_buckets_set(team=request.team, edges=form.cleaned_data["edges"])
        messages.success(request, "Bucket edges saved.")
        return redirect("dataset_list")
    if request.method == "POST":
        messages.error(request, "; ".join(form.errors.get("edges", ["Invalid edges."])))
    return redirect("dataset_list")


@writer_required
def dataset_upload(request: TeamRequest) -> HttpResponse:
    team = request.team
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
@require_POST
def dataset_builtin_add(request: TeamRequest, name: str) -> HttpResponse:
    if name not in BUILTIN_DATASETS:
        raise Http404("No such built-in dataset.")
    dataset, created = dataset_add_builtin(team=request.team, name=name, by=request.user)
    if created:
        messages.success(request, f"Added “{dataset}” ({dataset.item_count} prompts); counting tokens.")
    else:
        messages.info(request, f"This team already has “{dataset}”.")
    return redirect("dataset_detail", pk=dataset.pk)


@writer_required
def dataset_generate(request: TeamRequest) -> HttpResponse:
    team = request.team
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
def dataset_edit(request: TeamRequest, pk: int) -> HttpResponse:
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
def dataset_clone_view(request: TeamRequest, pk: int) -> HttpResponse:
    dataset = object_get(Dataset, user=request.user, pk=pk)
    ensure_can_write(request, dataset)
    copy = dataset_clone(dataset=dataset, by=request.user)
    messages.success(request, f"Cloned as “{copy}”.")
    return redirect("dataset_detail", pk=copy.pk)


@team_required
def dataset_delete(request: TeamRequest, pk: int) -> HttpResponse:
    return crud.delete_view(request, ENTITY, pk)


@team_required
def dataset_detail(request: TeamRequest, pk: int) -> HttpResponse:
    dataset = object_get(Dataset, user=request.user, pk=pk)
    return _version_page(request, dataset, version_latest(dataset=dataset))


@team_required
def version_detail(request: TeamRequest, pk: int, number: int) -> HttpResponse:
    dataset = object_get(Dataset, user=request.user, pk=pk)
    return _version_page(request, dataset, version_get(dataset=dataset, number=number))


def _version_page(request: TeamRequest, dataset: Dataset, version: DatasetVersion | None) -> HttpResponse:
    query = request.GET
    context = version_page(
        dataset,
        version,
        plan_id=int_param(query.get("plan")),
        endpoint_id=int_param(query.get("endpoint")),
        tokenizer=query.get("tokenizer"),
    ) | {"entity": ENTITY, "can_edit": can_write(dataset, user=request.user)}
    return render(request, "benchmarks/datasets/detail.html", context)


@team_required
def version_progress(request: TeamRequest, pk: int, number: int) -> JsonResponse:
    """Polled by the dataset page while counts or a synthetic version are being made."""
    dataset = object_get(Dataset, user=request.user, pk=pk)
    return JsonResponse(progress(version_get(dataset=dataset, number=number)))


@team_required
@require_POST
def version_count(request: TeamRequest, pk: int, number: int) -> HttpResponse:
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
def version_download(request: TeamRequest, pk: int, number: int) -> StreamingHttpResponse:
    """The version's items as JSONL (the upload format), with every finished token count."""
    dataset = object_get(Dataset, user=request.user, pk=pk)
    version = version_get(dataset=dataset, number=number)
    response = StreamingHttpResponse(version_jsonl(version), content_type="application/jsonl")
    name = f"dataset-{dataset.pk}-v{version.number}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- helpers -------------------------------------------------------------------------------------


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
    request: TeamRequest,
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
