"""Datasets: versioned prompt sets, their items, and token counts per tokenizer.

A dataset's content lives in immutable versions: every edit (re-upload, pasted prompts, a rename)
adds a version, and a run points at the exact version it sent, so later edits never change what an
old run measured. Counts are kept apart from items, one row per (version, tokenizer): a list of
input-token counts in item order, written once by a background task that reports progress as it goes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from benchmarks.models.teams import Team, TeamOwned

ESTIMATE = "estimate"  # runner.tokenizers' reference for the characters/4 estimate


def tokenizer_ref(ref: str | None) -> str:
    """One spelling per tokenizer reference: blank means the characters/4 estimate."""
    return (ref or "").strip() or ESTIMATE


def default_edges() -> list[int]:
    return [0, 1024, 4096, 16384, 32768, 49152]  # runner.datasets.DEFAULT_EDGES


class Dataset(TeamOwned):
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # runner.tokenizers reference new versions are counted with ("estimate" = characters / 4).
    tokenizer = models.CharField(max_length=200, default=ESTIMATE)
    # The prompt template plans of this dataset use unless they set their own ({prompt} placeholder);
    # a built-in dataset brings its own (MATH-500 asks for the answer in \boxed{}).
    prompt_template = models.TextField(blank=True)
    builtin = models.CharField(max_length=50, blank=True)  # "builtin:math500" when added from the shipped set

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def current_version(self) -> DatasetVersion | None:
        """The newest version that is ready to send (a synthetic one may still be generating)."""
        return self.versions.filter(state=DatasetVersion.State.READY).order_by("-number").first()

    @property
    def item_count(self) -> int:
        version = self.current_version()
        return version.item_count if version else 0

    @property
    def items(self) -> list[dict[str, Any]]:
        """The current version's items as runner.spec.Prompt-like dicts (read-only convenience)."""
        version = self.current_version()
        return [item.as_dict() for item in version.items.all()] if version else []


class DatasetVersion(models.Model):
    class State(models.TextChoices):
        READY = "ready"
        GENERATING = "generating"  # a synthetic version whose items a task is still writing
        FAILED = "failed"

    class Source(models.TextChoices):
        UPLOAD = "upload"
        PASTE = "paste"
        EDIT = "edit"
        SYNTHETIC = "synthetic"
        CLONE = "clone"
        MIGRATED = "migrated"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    note = models.CharField(max_length=300, blank=True)  # what changed, in words
    filename = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=10, blank=True)  # runner.datasets.parse FORMATS
    multi_turn = models.BooleanField(default=False)
    item_count = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.READY)
    error = models.TextField(blank=True)
    synthetic = models.JSONField(default=dict, blank=True)  # the generator's parameters

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="one_version_number")]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"


class DatasetItem(models.Model):
    """One prompt of one version (runner.datasets.DatasetItem plus its position and id)."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")
    index = models.PositiveIntegerField()
    key = models.CharField(max_length=200)  # the prompt id records carry
    prompt = models.TextField(blank=True)
    messages = models.JSONField(null=True, blank=True)
    expected = models.TextField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # A timed item (from a capture, access log or trace): its arrival offset in seconds, its own
    # request parameters (temperature, tools…) and what production recorded for it, when known.
    arrival_s = models.FloatField(null=True, blank=True)
    params = models.JSONField(null=True, blank=True)
    recorded = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["version", "index"]
        constraints = [models.UniqueConstraint(fields=["version", "index"], name="one_item_per_index")]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "text": self.prompt,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "expected": self.expected,
        }


class TokenCount(models.Model):
    """Input tokens of every item of a version in one tokenizer; ``counts[i]`` is item ``i``'s."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="token_counts")
    tokenizer = models.CharField(max_length=200)  # runner.tokenizers reference
    tokenizer_name = models.CharField(max_length=200, blank=True)  # as the tokenizer names itself
    estimated = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)  # doubles as the counting task's heartbeat

    class Meta:
        ordering = ["version", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["version", "tokenizer"], name="one_count_per_tokenizer")
        ]

    @property
    def percent(self) -> float:
        if self.status == self.Status.DONE:
            return 100.0
        return round(100.0 * self.done / self.total, 1) if self.total else 0.0

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class TeamBuckets(models.Model):
    """A team's input-token bucket edges for dataset pages and new plans (defaults when absent)."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="buckets")
    edges = models.JSONField(default=default_edges)
