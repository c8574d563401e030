"""Dataset reads: versions, token counts, bucket tables, context flags and plan cost estimates.

Every count shown comes with the tokenizer that made it and whether it is an estimate, so pages can
label estimated numbers as such.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from benchmarks.models import Dataset, DatasetVersion, Endpoint, Plan, Run, Team, TeamBuckets, TokenCount
from benchmarks.models.datasets import ESTIMATE, tokenizer_ref
from runner import DEFAULT_EDGES, bucket_histogram, bucket_index, bucket_labels


def team_edges(team: Team) -> list[int]:
    row = TeamBuckets.objects.filter(team=team).first()
    return [int(e) for e in row.edges] if row and row.edges else list(DEFAULT_EDGES)


def tokenizer_choices(team: Team) -> list[tuple[str, str]]:
    """Tokenizers to count with: those the team's endpoints use, the installed packaged ones, and
    the estimate (always last, always labelled)."""
    from runner import available_tokenizers

    used: dict[str, list[str]] = {}
    for name, ref in Endpoint.objects.filter(team=team).values_list("name", "tokenizer"):
        used.setdefault(tokenizer_ref(ref), []).append(name)
    choices: dict[str, str] = {}
    for ref, names in used.items():
        if ref != ESTIMATE:
            choices[ref] = f"{ref} (endpoint {', '.join(names)})"
    for t in available_tokenizers():
        if t["ref"] != ESTIMATE:
            choices.setdefault(t["ref"], t["name"])
    estimate_users = f" (endpoint {', '.join(used[ESTIMATE])})" if ESTIMATE in used else ""
    choices[ESTIMATE] = f"estimate: characters / 4, labelled estimated{estimate_users}"
    return list(choices.items())


def default_tokenizer(team: Team) -> str:
    """The first choice: an endpoint's tokenizer, else an installed one, else the estimate."""
    return tokenizer_choices(team)[0][0]


def datasets_for_team(*, team: Team) -> QuerySet[Dataset]:
    return Dataset.objects.filter(team=team).prefetch_related("versions")


def versions_of(dataset: Dataset) -> QuerySet[DatasetVersion]:
    return dataset.versions.select_related("created_by").order_by("-number")


def version_latest(*, dataset: Dataset) -> DatasetVersion | None:
    """The current version, else the newest (one still being generated, say)."""
    return dataset.current_version() or dataset.versions.order_by("-number").first()


def version_get(*, dataset: Dataset, number: int) -> DatasetVersion:
    version = dataset.versions.filter(number=number).first()
    if version is None:
        raise Http404(f"No version {number} of this dataset")
    return version


def counts_done(version: DatasetVersion, tokenizer: str | None) -> TokenCount | None:
    return version.token_counts.filter(
        tokenizer=tokenizer_ref(tokenizer), status=TokenCount.Status.DONE
    ).first()


def counts_for_sending(version: DatasetVersion, endpoint_tokenizer: str | None) -> TokenCount | None:
    """The counts a run sends as ``input_tokens``: the endpoint's own tokenizer when counted, else
    the dataset's tokenizer, else any finished count; None when nothing is counted yet."""
    for ref in (endpoint_tokenizer, version.dataset.tokenizer):
        found = counts_done(version, ref)
        if found is not None:
            return found
    return version.token_counts.filter(status=TokenCount.Status.DONE).order_by("created_at").first()


def progress(version: DatasetVersion) -> dict[str, Any]:
    """The progress endpoint's body: the version's state and each count's progress."""
    counts = [
        {
            "tokenizer": c.tokenizer,
            "name": c.tokenizer_name or c.tokenizer,
            "estimated": c.estimated,
            "status": c.status,
            "done": c.done,
            "total": c.total,
            "percent": c.percent,
            "error": c.error,
        }
        for c in version.token_counts.order_by("created_at")
    ]
    return {
        "version": version.number,
        "state": version.state,
        "error": version.error,
        "items": version.item_count,
        "counts": counts,
        "active": version.state == DatasetVersion.State.GENERATING
        or any(c["status"] in ("queued", "running") for c in counts),
    }


def length_summary(counts: TokenCount, edges: list[int]) -> dict[str, Any]:
    """Totals, spread and the per-bucket table (empty buckets included)."""
    values = list(counts.counts)
    tokens = [0] * (len(edges))
    for n in values:
        tokens[bucket_index(n, edges)] += n
    buckets = bucket_histogram(values, edges)
    for row, total in zip(buckets, tokens, strict=True):
        row["tokens"] = total
        row["share"] = row["count"] / len(values) if values else 0.0
    return {
        "items": len(values),
        "total": sum(values),
        "min": min(values, default=0),
        "median": statistics.median(values) if values else 0,
        "mean": statistics.fmean(values) if values else 0.0,
        "max": max(values, default=0),
        "buckets": buckets,
        "estimated": counts.estimated,
        "tokenizer": counts.tokenizer_name or counts.tokenizer,
    }


def over_context(version: DatasetVersion, counts: TokenCount, limit: int, show: int = 100) -> dict[str, Any]:
    """Items longer than an endpoint's input context: the server would truncate or reject them."""
    over = [(i, n) for i, n in enumerate(counts.counts) if n > limit]
    keys = dict(version.items.filter(index__in=[i for i, _ in over[:show]]).values_list("index", "key"))
    return {
        "limit": limit,
        "count": len(over),
        "items": [{"index": i, "key": keys.get(i, str(i)), "tokens": n} for i, n in over[:show]],
    }


def item_rows(
    version: DatasetVersion, counts: TokenCount | None, *, limit: int, max_input: int | None
) -> list[dict[str, Any]]:
    values = counts.counts if counts else []
    rows = []
    for item in version.items.order_by("index")[:limit]:
        tokens = values[item.index] if item.index < len(values) else None
        rows.append(
            {
                "item": item,
                "tokens": tokens,
                "over": tokens is not None and max_input is not None and tokens > max_input,
            }
        )
    return rows


def bucket_label_choices(team: Team, current: list[str] | None = None) -> list[tuple[str, str]]:
    labels = bucket_labels(team_edges(team))
    extra = [label for label in current or [] if label not in labels]
    return [(label, label) for label in [*labels, *extra]]


def version_jsonl(version: DatasetVersion) -> Iterator[str]:
    """The version's items as JSONL lines (the upload format), with every finished token count."""
    counts = list(version.token_counts.filter(status=TokenCount.Status.DONE))
    for item in version.items.order_by("index").iterator(chunk_size=1000):
        row: dict[str, Any] = {"id": item.key}
        row["messages" if item.messages else "prompt"] = item.messages or item.prompt
        for name in ("expected", "max_tokens"):
            if getattr(item, name) is not None:
                row[name] = getattr(item, name)
        if item.metadata:
            row["metadata"] = item.metadata
        row["input_tokens"] = {
            c.tokenizer: c.counts[item.index] for c in counts if item.index < len(c.counts)
        }
        yield json.dumps(row, ensure_ascii=False) + "\n"


def plans_using(*, dataset: Dataset) -> QuerySet[Plan]:
    return Plan.objects.filter(team=dataset.team, dataset=dataset).select_related("endpoint", "profile")


def runs_of_version(*, version: DatasetVersion, limit: int = 20) -> QuerySet[Run]:
    return Run.objects.filter(dataset_version=version).order_by("-created_at")[:limit]


def plan_over_context(plan: Plan) -> dict[str, Any] | None:
    """How many of the prompts a plan draws from (its dataset's current version) are longer than its
    endpoint's input context (``max_input_tokens``), counted in the tokens the run would send; None
    until the version is counted."""
    version = plan.dataset.current_version()
    if version is None:
        return None
    counts = counts_for_sending(version, plan.endpoint.tokenizer)
    if counts is None or len(counts.counts) != version.item_count:
        return None
    over = over_context(version, counts, plan.endpoint.max_input_tokens, show=10)
    return over | {
        "prompts": version.item_count,
        "counted_with": counts.tokenizer_name or counts.tokenizer,
        "estimated": counts.estimated,
    }
