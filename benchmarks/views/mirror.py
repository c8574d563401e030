"""Bypass testing: start and stop a mirror session (its page is the run page), and upload captured
traffic as a timed dataset for replay profiles."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from benchmarks.decorators import team_required, writer_required
from benchmarks.forms.mirror import CaptureForm, MirrorForm
from benchmarks.http import TeamRequest
from benchmarks.models import Run
from benchmarks.selectors.objects import object_get
from benchmarks.services.datasets import dataset_create
from benchmarks.services.mirrors import mirror_start, mirror_stop
from benchmarks.views.helpers import ensure_can_write


@writer_required
def mirror_new(request: TeamRequest) -> HttpResponse:
    form = MirrorForm(request.POST or None, team=request.team)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        run = mirror_start(
            team=request.team,
            shadow=data["shadow"],
            upstream=data["upstream"],
            listen=data["listen"],
            sample=data["sample"],
            capture_prompts=data["capture_prompts"],
            capture_dataset=data["capture_dataset"],
            ws_format=data["ws_format"],
            by=request.user,
        )
        messages.success(request, "Mirror session queued: a load worker will listen within seconds.")
        return redirect("run_detail", pk=run.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "benchmarks/mirror/new.html", {"form": form}, status=status)


@team_required
@require_POST
def mirror_stop_view(request: TeamRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    ensure_can_write(request, run)
    if mirror_stop(run=run, by=request.user):
        messages.success(
            request, "Stopping: the mirror stops listening, the shadow drains, then it is recorded."
        )
    else:
        messages.info(request, "The session had already ended.")
    return redirect("run_detail", pk=pk)


@writer_required
def capture_upload(request: TeamRequest) -> HttpResponse:
    form = CaptureForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        new = data["parsed"]
        new.filename = data["file"].name[:255]
        dataset = dataset_create(
            team=request.team,
            name=data["name"],
            description=data["description"],
            tokenizer="",
            new=new,
            by=request.user,
        )
        messages.success(request, f"Timed dataset “{dataset}” saved ({len(new.items)} requests): {new.note}.")
        return redirect("dataset_detail", pk=dataset.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "benchmarks/mirror/capture.html", {"form": form}, status=status)
