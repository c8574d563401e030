from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from benchmarks.models import Membership, Team

User = get_user_model()


@transaction.atomic
def team_create(*, name: str, owner: AbstractBaseUser) -> Team:
    team = Team.objects.create(name=name)
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


@transaction.atomic
def user_signup(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """A new user with a personal team they own."""
    user = User.objects.create_user(username=username, email=email, password=password)
    team_create(name=f"{username}'s team", owner=user)
    return user


def membership_add(*, team: Team, identifier: str, role: str) -> Membership:
    """Add a user found by username or email; raises ValidationError with a message for the form."""
    identifier = identifier.strip()
    users = list(User.objects.filter(Q(username__iexact=identifier) | Q(email__iexact=identifier))[:2])
    if not users:
        raise ValidationError(f"No user with username or email “{identifier}”.")
    if len(users) > 1:
        raise ValidationError("That email belongs to several users; use the username.")
    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role “{role}”.")
    membership, created = Membership.objects.get_or_create(team=team, user=users[0], defaults={"role": role})
    if not created:
        raise ValidationError(f"{users[0].username} is already in this team.")
    return membership


def membership_remove(*, membership: Membership) -> None:
    owners = Membership.objects.filter(team=membership.team, role=Membership.Role.OWNER)
    if membership.role == Membership.Role.OWNER and owners.count() <= 1:
        raise ValidationError("A team needs at least one owner.")
    membership.delete()
