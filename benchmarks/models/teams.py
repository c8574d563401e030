from __future__ import annotations

from django.conf import settings
from django.db import models


class Team(models.Model):
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")
    # Quotas: blank = the deployment's TEAM_MAX_RUNS / TEAM_MAX_LOAD_SLOTS. Set by an administrator
    # (Django admin or the shell), never by the team itself.
    max_concurrent_runs = models.PositiveIntegerField(
        null=True, blank=True, help_text="runs at once; blank = the TEAM_MAX_RUNS setting"
    )
    max_load_slots = models.PositiveIntegerField(
        null=True, blank=True, help_text="shards at once over all its runs; blank = TEAM_MAX_LOAD_SLOTS"
    )
    # Raw request records of finished runs are deleted this many days after the run ended (summaries,
    # samples and per-second rows stay); None keeps them forever.
    raw_records_days = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"
        VIEWER = "viewer", "Viewer"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]

    @property
    def can_write(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.MEMBER)

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


class TeamOwned(models.Model):
    """Base for everything that belongs to a team; selectors filter on ``team``."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
