from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from benchmarks.forms.accounts import MemberAddForm, RetentionForm, SignupForm, TeamForm
from benchmarks.http import int_param
from benchmarks.middleware import SESSION_KEY
from benchmarks.models import Membership
from benchmarks.selectors.teams import membership_get, team_disk_usage, team_members, teams_for_user
from benchmarks.services.runs.retention import team_retention_set
from benchmarks.services.teams import membership_add, membership_remove, team_create, user_signup


def signup(request: HttpRequest) -> HttpResponse:
    if not settings.ALLOW_SIGNUP:
        return render(request, "registration/signup_closed.html", status=403)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = user_signup(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}. Your team is ready.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    return render(request, "benchmarks/team_list.html", {"teams": teams_for_user(user=request.user)})


@login_required
def team_create_view(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = team_create(name=form.cleaned_data["name"], owner=request.user)
        request.session[SESSION_KEY] = team.pk
        messages.success(request, f"Team “{team.name}” created.")
        return redirect("team_detail", pk=team.pk)
    return render(request, "benchmarks/object_form.html", {"form": form, "title": "New team"})


@login_required
def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _membership_or_404(request, pk)
    form = MemberAddForm()
    return render(request, "benchmarks/team_detail.html", _team_context(membership, form))


@login_required
@require_POST
def team_member_add(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _owner_or_403(request, pk)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            added = membership_add(
                team=membership.team,
                identifier=form.cleaned_data["identifier"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            form.add_error("identifier", exc)
        else:
            messages.success(request, f"{added.user.username} added as {added.role}.")
            return redirect("team_detail", pk=pk)
    return render(request, "benchmarks/team_detail.html", _team_context(membership, form), status=400)


@login_required
@require_POST
def team_member_remove(request: HttpRequest, pk: int, member_pk: int) -> HttpResponse:
    membership = _owner_or_403(request, pk)
    target = get_object_or_404(Membership, pk=member_pk, team=membership.team)
    try:
        membership_remove(membership=target)
        messages.success(request, f"{target.user.username} removed.")
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("team_detail", pk=pk)


@login_required
@require_POST
def team_switch(request: HttpRequest) -> HttpResponse:
    membership = _membership_or_404(request, int_param(request.POST.get("team"), 0) or 0)
    request.session[SESSION_KEY] = membership.team_id
    target = request.POST.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(target if target and safe else "home")  # never off to another site


def _membership_or_404(request: HttpRequest, team_id: int) -> Membership:
    membership = membership_get(user=request.user, team_id=team_id)
    if membership is None:
        from django.http import Http404

        raise Http404("No such team")
    return membership


def _owner_or_403(request: HttpRequest, team_id: int) -> Membership:
    membership = _membership_or_404(request, team_id)
    if not membership.is_owner:
        raise PermissionDenied("Only team owners manage members.")
    return membership


def _team_context(
    membership: Membership, form: MemberAddForm, retention: RetentionForm | None = None
) -> dict[str, object]:
    team = membership.team
    return {
        "team": team,
        "membership": membership,
        "members": team_members(team=team),
        "form": form,
        "retention": retention or RetentionForm(initial={"raw_records_days": team.raw_records_days}),
        "disk": team_disk_usage(team=team),
    }


@login_required
@require_POST
def team_retention(request: HttpRequest, pk: int) -> HttpResponse:
    membership = _owner_or_403(request, pk)
    form = RetentionForm(request.POST)
    if not form.is_valid():
        context = _team_context(membership, MemberAddForm(), retention=form)
        return render(request, "benchmarks/team_detail.html", context, status=400)
    days = form.cleaned_data["raw_records_days"]
    team_retention_set(team=membership.team, days=days)
    messages.success(request, f"Raw request records kept {f'{days} days' if days else 'forever'}.")
    return redirect("team_detail", pk=pk)
