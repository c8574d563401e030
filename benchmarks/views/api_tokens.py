"""API tokens of the current team: create (shown once), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from benchmarks.decorators import team_required, writer_required
from benchmarks.forms.api_tokens import ApiTokenForm
from benchmarks.http import TeamRequest
from benchmarks.models import ApiToken
from benchmarks.selectors.api_tokens import api_tokens_for_team
from benchmarks.selectors.objects import object_get
from benchmarks.services.api_tokens import api_token_create, api_token_revoke
from benchmarks.views.helpers import ensure_can_write


@team_required
def api_token_list(request: TeamRequest) -> HttpResponse:
    return _page(request, ApiTokenForm())


@writer_required
@require_POST
def api_token_new(request: TeamRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    row, token = api_token_create(team=request.team, by=request.user, name=form.cleaned_data["name"])
    # Rendered, not redirected: the token must not sit in a session or a message queue.
    response = _page(request, ApiTokenForm(), new_token=token, new_row=row)
    response["Cache-Control"] = "no-store"
    return response


@team_required
@require_POST
def api_token_revoke_view(request: TeamRequest, pk: int) -> HttpResponse:
    token = object_get(ApiToken, user=request.user, pk=pk)
    ensure_can_write(request, token)
    api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("api_token_list")


def _page(request: TeamRequest, form: ApiTokenForm, status: int = 200, **extra: object) -> HttpResponse:
    context = {"tokens": api_tokens_for_team(team=request.team), "form": form, **extra}
    return render(request, "benchmarks/api_tokens/list.html", context, status=status)
