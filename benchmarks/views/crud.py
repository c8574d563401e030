"""List / create / edit / clone / delete for team-owned objects, shared by every entity's views."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from benchmarks.http import TeamRequest
from benchmarks.selectors.objects import in_team, object_get
from benchmarks.services.objects import object_clone, object_delete, object_save
from benchmarks.views.helpers import ensure_can_write


@dataclass(frozen=True)
class Entity:
    model: type[Model]
    prefix: str  # URL name prefix, e.g. "endpoint"
    title: str  # "endpoint"
    make_form: Callable[..., BaseForm]
    columns: list[tuple[str, str]] = field(default_factory=list)  # (attribute, heading)
    # (form, team on create, object on edit) -> saved object; default saves a ModelForm
    save: Callable[[Any, Any, Any], Model] | None = None
    template_form: str = "benchmarks/object_form.html"


def list_view(request: TeamRequest, entity: Entity) -> HttpResponse:
    objects = in_team(entity.model, team=request.team)
    rows = [(obj, [getattr(obj, attr) for attr, _ in entity.columns]) for obj in objects]
    return render(request, "benchmarks/object_list.html", {"entity": entity, "rows": rows})


def create_view(request: TeamRequest, entity: Entity) -> HttpResponse:
    form = entity.make_form(request, None)
    if request.method == "POST" and form.is_valid():
        obj = _save(entity, form, team=request.team, obj=None)
        messages.success(request, f"{entity.title.capitalize()} “{obj}” created.")
        return redirect(f"{entity.prefix}_detail", pk=obj.pk)
    return _form_page(request, entity, form, f"New {entity.title}")


def edit_view(request: HttpRequest, entity: Entity, pk: int) -> HttpResponse:
    obj = object_get(entity.model, user=request.user, pk=pk)
    ensure_can_write(request, obj)
    form = entity.make_form(request, obj)
    if request.method == "POST" and form.is_valid():
        obj = _save(entity, form, team=None, obj=obj)
        messages.success(request, f"{entity.title.capitalize()} “{obj}” saved.")
        return redirect(f"{entity.prefix}_detail", pk=obj.pk)
    return _form_page(request, entity, form, f"Edit {entity.title} “{obj}”", obj)


def clone_view(request: HttpRequest, entity: Entity, pk: int) -> HttpResponse:
    obj = object_get(entity.model, user=request.user, pk=pk)
    ensure_can_write(request, obj)
    copy = object_clone(obj=obj)
    messages.success(request, f"Cloned as “{copy}”.")
    return redirect(f"{entity.prefix}_edit", pk=copy.pk)


def delete_view(request: HttpRequest, entity: Entity, pk: int) -> HttpResponse:
    obj = object_get(entity.model, user=request.user, pk=pk)
    ensure_can_write(request, obj)
    if request.method == "POST":
        try:
            object_delete(obj=obj)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
            return redirect(f"{entity.prefix}_detail", pk=pk)
        messages.success(request, f"{entity.title.capitalize()} “{obj}” deleted.")
        return redirect(f"{entity.prefix}_list")
    return render(request, "benchmarks/object_confirm_delete.html", {"entity": entity, "object": obj})


def _save(entity: Entity, form: Any, *, team: Any, obj: Model | None) -> Model:
    if entity.save is not None:
        return entity.save(form, team, obj)
    return object_save(form=form, team=team)


def _form_page(
    request: HttpRequest, entity: Entity, form: BaseForm, title: str, obj: Model | None = None
) -> HttpResponse:
    status = 400 if request.method == "POST" else 200
    context = {"entity": entity, "form": form, "title": title, "object": obj}
    return render(request, entity.template_form, context, status=status)
