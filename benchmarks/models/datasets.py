from __future__ import annotations

from django.db import models

from benchmarks.models.teams import TeamOwned


class Dataset(TeamOwned):
    """Prompts to send. ``items`` holds ``{"id","text","messages","input_tokens","max_tokens","expected"}``
    dicts (runner.spec.Prompt fields); issue 4 grows this into versioned datasets."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    items = models.JSONField(default=list)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def item_count(self) -> int:
        return len(self.items)
