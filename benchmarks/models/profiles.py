from __future__ import annotations

from django.db import models

from benchmarks.models.teams import TeamOwned


class LoadProfile(TeamOwned):
    """A load shape: ``spec`` holds runner.spec.ProfileSpec fields (kind included); a "capacity"
    profile also holds runner.CAPACITY_KEYS and ``per_bucket`` (the search replaces its load); a
    "kv_reuse" profile's users send every prompt once cold, then once warm (runner.kv_reuse)."""

    KINDS = [
        ("users", "Users with spawn rate"),
        ("stages", "Stages"),
        ("rate", "Request rate"),
        ("sweep", "Sweep"),
        ("replay", "Replay"),
        ("capacity", "Capacity at SLO"),
        ("kv_reuse", "KV-cache reuse (cold, then warm)"),
    ]
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=KINDS, default="users")
    spec = models.JSONField(default=dict)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
