"""Dataset writes: versions from uploads, edits, clones and the synthesiser, and token counting.

Parsing and validation happen in the request (a bad file must say why at once and save nothing);
counting and synthesis run in Celery tasks that report progress in ``TokenCount`` rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from benchmarks.models import Dataset, DatasetItem, DatasetVersion, Team, TeamBuckets, TokenCount
from benchmarks.models.datasets import ESTIMATE, tokenizer_ref
from benchmarks.services.dispatch import TaskName, enqueue_on_commit
from runner import BUILTIN_DATASETS, DatasetBounds, ParseResult, load_builtin, parse_dataset
from runner import DatasetItem as ParsedItem

log = logging.getLogger(__name__)
MiB = 1024 * 1024
COUNT_CHUNK = 256  # items per progress update while counting
STALE_AFTER = timedelta(minutes=2)  # a running count silent this long lost its worker


@dataclass(slots=True)
class NewItems:
    """Items for a new version and where they came from."""

    items: list[ParsedItem]
    source: str
    note: str = ""
    filename: str = ""
    format: str = ""
    multi_turn: bool = False
    counts: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # ref -> (name, counts)
    # A timed dataset (a capture, an access log, a trace): per item (arrival_s, params, recorded)
    timed: list[tuple[float | None, dict[str, Any] | None, dict[str, Any] | None]] = field(
        default_factory=list
    )


def upload_limits() -> tuple[int, int]:
    """(bytes, items) a dataset may hold."""
    return settings.DATASET_MAX_MB * MiB, settings.DATASET_MAX_ITEMS


def row_bounds() -> DatasetBounds:
    """How large one row may be (nesting, line, prompt), from settings."""
    return DatasetBounds(
        max_depth=settings.DATASET_MAX_DEPTH,
        max_line_bytes=settings.DATASET_MAX_LINE_KB * 1024,
        max_prompt_chars=settings.DATASET_MAX_PROMPT_CHARS,
    )


def dataset_parse(*, data: bytes, filename: str, fmt: str | None, multi_turn: bool) -> ParseResult:
    max_bytes, max_items = upload_limits()
    return parse_dataset(
        data,
        filename=filename,
        fmt=fmt,
        max_items=max_items,
        max_bytes=max_bytes,
        multi_turn=multi_turn,
        bounds=row_bounds(),
    )


# --- versions ------------------------------------------------------------------------------------


@transaction.atomic
def dataset_create(
    *, team: Team, name: str, description: str, tokenizer: str, new: NewItems, by: AbstractBaseUser | None
) -> Dataset:
    dataset = Dataset.objects.create(
        team=team, name=name, description=description, tokenizer=tokenizer_ref(tokenizer)
    )
    version_add(dataset=dataset, new=new, by=by)
    return dataset


@transaction.atomic
def dataset_add_builtin(*, team: Team, name: str, by: AbstractBaseUser | None) -> tuple[Dataset, bool]:
    """A team copy of a dataset shipped with llmperf (``BUILTIN_DATASETS[name]``) with its default
    prompt template; item metadata (MATH-500's subject, level, unique_id) is kept and ``unique_id``
    is each prompt's id, so runs pair by item. Returns (dataset, created); a team that already added it
    gets the one it has."""
    entry = BUILTIN_DATASETS[name]
    ref = f"builtin:{name}"
    existing = Dataset.objects.filter(team=team, builtin=ref).order_by("pk").first()
    if existing is not None:
        return existing, False
    dataset = Dataset.objects.create(
        team=team,
        name=entry.title[:100],
        description=f"Shipped with llmperf: {entry.source} ({entry.license}).",
        tokenizer=ESTIMATE,
        prompt_template=entry.template,
        builtin=ref,
    )
    new = NewItems(
        items=load_builtin(ref),
        source=DatasetVersion.Source.UPLOAD,
        note=f"built-in {ref}",
        filename=entry.filename,
        format="jsonl",
    )
    version_add(dataset=dataset, new=new, by=by)
    return dataset, True


@transaction.atomic
def dataset_update(
    *,
    dataset: Dataset,
    name: str,
    description: str,
    tokenizer: str,
    new: NewItems | None,
    by: AbstractBaseUser | None,
) -> DatasetVersion | None:
    """A new version when anything a run could show changed (items, name, description); a new
    tokenizer only adds counts. Returns the new version, or None when nothing changed."""
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    changes = _describe_changes(dataset, name=name, description=description)
    ref = tokenizer_ref(tokenizer)
    retokenize = ref != dataset.tokenizer
    dataset.name, dataset.description, dataset.tokenizer = name, description, ref
    dataset.save()
    current = dataset.current_version()
    if new is None and changes and current is not None:
        new = _copy_of(current, source=DatasetVersion.Source.EDIT, note="; ".join(changes))
    if new is None:
        if retokenize and current is not None:
            token_count_request(version=current, tokenizer=ref)
        return None
    if changes and new.note:
        new.note = "; ".join([new.note, *changes])
    return version_add(dataset=dataset, new=new, by=by)


def _describe_changes(dataset: Dataset, *, name: str, description: str) -> list[str]:
    changes = []
    if name != dataset.name:
        changes.append(f"renamed from “{dataset.name}”")
    if description != dataset.description:
        changes.append("description edited")
    return changes


@transaction.atomic
def dataset_clone(*, dataset: Dataset, by: AbstractBaseUser | None) -> Dataset:
    name = dataset.name[:93] + " (copy)"
    copy = Dataset.objects.create(
        team=dataset.team,
        name=name,
        description=dataset.description,
        tokenizer=dataset.tokenizer,
        prompt_template=dataset.prompt_template,
    )
    current = dataset.current_version()
    if current is not None:
        note = f"copy of {dataset.name} v{current.number}"
        version_add(dataset=copy, new=_copy_of(current, source=DatasetVersion.Source.CLONE, note=note), by=by)
    return copy


def _copy_of(version: DatasetVersion, *, source: str, note: str) -> NewItems:
    rows = version.items.order_by("index")
    items = [
        ParsedItem(
            prompt=r.prompt or None,
            messages=r.messages,
            expected=r.expected,
            max_tokens=r.max_tokens,
            metadata={**r.metadata, "id": r.key},
        )
        for r in rows.iterator(chunk_size=2000)
    ]
    done = version.token_counts.filter(status=TokenCount.Status.DONE)
    counts = {c.tokenizer: (c.tokenizer_name, list(c.counts)) for c in done}
    timed = [(r.arrival_s, r.params, r.recorded) for r in rows.iterator(chunk_size=2000)]
    return NewItems(
        items=items,
        timed=timed if any(t[0] is not None for t in timed) else [],
        source=source,
        note=note,
        filename=version.filename,
        format=version.format,
        multi_turn=version.multi_turn,
        counts=counts,
    )


@transaction.atomic
def version_add(
    *,
    dataset: Dataset,
    new: NewItems,
    by: AbstractBaseUser | None,
    state: str = DatasetVersion.State.READY,
    synthetic: dict[str, Any] | None = None,
) -> DatasetVersion:
    """The next version with ``new``'s items; counts are carried over or queued for every tokenizer
    the dataset and the endpoints of its plans use."""
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()  # numbers stay unique and gapless
    last = dataset.versions.aggregate(n=Max("number"))["n"] or 0
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=last + 1,
        created_by=by if by is not None and by.is_authenticated else None,
        source=new.source,
        note=new.note[:300],
        filename=new.filename[:255],
        format=new.format,
        multi_turn=new.multi_turn,
        item_count=len(new.items),
        state=state,
        synthetic=synthetic or {},
    )
    items_write(version=version, items=new.items, timed=new.timed)
    if state == DatasetVersion.State.READY:
        _counts_for_new_version(version, new.counts)
    return version


def items_write(
    *,
    version: DatasetVersion,
    items: Sequence[ParsedItem],
    timed: Sequence[tuple[float | None, dict[str, Any] | None, dict[str, Any] | None]] = (),
) -> None:
    untimed = (None, None, None)
    rows = (
        DatasetItem(
            version=version,
            index=i,
            key=_key(item, i),
            prompt=item.prompt or "",
            messages=item.messages,
            expected=item.expected,
            max_tokens=item.max_tokens,
            metadata={k: v for k, v in item.metadata.items() if k != "id"},
            arrival_s=(timed[i] if i < len(timed) else untimed)[0],
            params=(timed[i] if i < len(timed) else untimed)[1],
            recorded=(timed[i] if i < len(timed) else untimed)[2],
        )
        for i, item in enumerate(items)
    )
    batch: list[DatasetItem] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 1000:
            DatasetItem.objects.bulk_create(batch)
            batch = []
    DatasetItem.objects.bulk_create(batch)


def _key(item: ParsedItem, index: int) -> str:
    meta = item.metadata
    key = meta.get("id", meta.get("unique_id"))
    return str(key)[:200] if key not in (None, "") else str(index + 1)


def _counts_for_new_version(version: DatasetVersion, known: dict[str, tuple[str, list[int]]]) -> None:
    for ref, (name, counts) in known.items():
        if len(counts) == version.item_count:
            TokenCount.objects.create(
                version=version,
                tokenizer=ref,
                tokenizer_name=name,
                estimated=ref == ESTIMATE,
                status=TokenCount.Status.DONE,
                done=len(counts),
                total=len(counts),
                counts=counts,
            )
    for ref in tokenizers_wanted(version.dataset):
        token_count_request(version=version, tokenizer=ref)


def tokenizers_wanted(dataset: Dataset) -> list[str]:
    """The dataset's own tokenizer, then those of the endpoints its plans send to."""
    refs = [dataset.tokenizer]
    for ref in dataset.plans.values_list("endpoint__tokenizer", flat=True):
        if tokenizer_ref(ref) not in refs:
            refs.append(tokenizer_ref(ref))
    return refs


# --- counting ------------------------------------------------------------------------------------


def token_count_request(*, version: DatasetVersion, tokenizer: str) -> TokenCount:
    """Counts of ``version`` in ``tokenizer``: the existing row, or a queued one with its task
    enqueued after commit. A failed or stalled count is queued again."""
    ref = tokenizer_ref(tokenizer)
    count, created = TokenCount.objects.get_or_create(
        version=version,
        tokenizer=ref,
        defaults={"total": version.item_count, "estimated": ref == ESTIMATE},
    )
    if not created and not _needs_retry(count):
        return count
    if not created:
        TokenCount.objects.filter(pk=count.pk).update(
            status=TokenCount.Status.QUEUED, done=0, error="", updated_at=timezone.now()
        )
        count.refresh_from_db()
    enqueue_on_commit(TaskName.COUNT_TOKENS, count.pk)
    return count


def _needs_retry(count: TokenCount) -> bool:
    if count.status == TokenCount.Status.FAILED:
        return True
    return count.is_active and timezone.now() - count.updated_at > STALE_AFTER


def token_count_execute(*, count_id: int) -> None:
    """Count every item of the version, reporting progress every COUNT_CHUNK items."""
    from runner import load_tokenizer

    if not TokenCount.objects.filter(pk=count_id, status=TokenCount.Status.QUEUED).update(
        status=TokenCount.Status.RUNNING, done=0
    ):
        return  # already counted, or another worker has it
    count = TokenCount.objects.select_related("version").get(pk=count_id)
    try:
        tok = load_tokenizer(count.tokenizer)
        TokenCount.objects.filter(pk=count_id).update(tokenizer_name=tok.name, estimated=tok.estimated)
        counts = _count_version(count, tok)
    except Exception as exc:  # the page shows why (a tokenizer that will not load, say), never a stall
        log.exception("counting tokens of %s failed", count.version)
        TokenCount.objects.filter(pk=count_id).update(
            status=TokenCount.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        return
    if counts is not None:
        TokenCount.objects.filter(pk=count_id, status=TokenCount.Status.RUNNING).update(
            status=TokenCount.Status.DONE, counts=counts, done=len(counts), total=len(counts)
        )


def _count_version(count: TokenCount, tok: Any) -> list[int] | None:
    total = count.version.item_count
    counts: list[int] = []
    items = DatasetItem.objects.filter(version_id=count.version_id)
    for start in range(0, total, COUNT_CHUNK):
        chunk = items.filter(index__gte=start, index__lt=start + COUNT_CHUNK).order_by("index")
        counts.extend(count_items(tok, list(chunk.values_list("prompt", "messages"))))
        moved = TokenCount.objects.filter(pk=count.pk, status=TokenCount.Status.RUNNING).update(
            done=len(counts), updated_at=timezone.now()
        )
        if not moved:
            return None  # re-queued or deleted meanwhile: that request wins
    return counts


def count_items(tok: Any, rows: Iterable[tuple[str, list[dict[str, Any]] | None]]) -> list[int]:
    """Input tokens per (prompt, messages): the chat template for messages, the text otherwise."""
    rows = list(rows)
    counts = [0] * len(rows)
    plain = [(i, prompt) for i, (prompt, messages) in enumerate(rows) if not messages]
    for i, (_, messages) in enumerate(rows):
        if messages:
            counts[i] = tok.count_messages(messages)
    batch = getattr(tok, "count_batch", None)  # the Rust backend's batch encode, GIL released
    texts = [prompt for _, prompt in plain]
    plain_counts = batch(texts) if batch else [tok.count(t) for t in texts]
    for (i, _), n in zip(plain, plain_counts, strict=True):
        counts[i] = n
    return counts


# --- synthetic datasets --------------------------------------------------------------------------


@transaction.atomic
def synthetic_create(
    *,
    team: Team,
    name: str,
    description: str,
    tokenizer: str,
    params: dict[str, Any],
    by: AbstractBaseUser | None,
) -> Dataset:
    """A dataset whose first version a task generates; its counts row doubles as the progress row."""
    ref = tokenizer_ref(tokenizer)
    dataset = Dataset.objects.create(team=team, name=name, description=description, tokenizer=ref)
    note = f"synthetic: {params['n']} prompts, {_describe_distribution(params['distribution'])}"
    new = NewItems(items=[], source=DatasetVersion.Source.SYNTHETIC, note=note)
    version = version_add(
        dataset=dataset, new=new, by=by, state=DatasetVersion.State.GENERATING, synthetic=params
    )
    TokenCount.objects.create(version=version, tokenizer=ref, estimated=ref == ESTIMATE, total=params["n"])
    enqueue_on_commit(TaskName.SYNTHESIZE_DATASET, version.pk)
    return dataset


def _describe_distribution(dist: dict[str, Any]) -> str:
    kind = dist.get("kind")
    if kind == "fixed":
        return f"{dist['tokens']} tokens each"
    if kind == "uniform":
        return f"uniform {dist['min']}–{dist['max']} tokens"
    if kind == "normal":
        return f"normal mean {dist['mean']} std {dist['std']}"
    return "per bucket " + ", ".join(f"{k}: {v}" for k, v in (dist.get("counts") or {}).items())


def synthetic_execute(*, version_id: int) -> None:
    """Generate the items with runner.datasets.synthesize; lengths are exact in the tokenizer, so
    its counts are stored as the version's counts."""
    from runner import load_tokenizer, synthesize

    version = DatasetVersion.objects.select_related("dataset").get(pk=version_id)
    count = TokenCount.objects.filter(version=version, tokenizer=version.dataset.tokenizer).first()
    if count is None or not TokenCount.objects.filter(pk=count.pk, status=TokenCount.Status.QUEUED).update(
        status=TokenCount.Status.RUNNING
    ):
        return
    p = version.synthetic
    try:
        tok = load_tokenizer(count.tokenizer)
        made = synthesize(
            tok,
            n=p["n"],
            distribution=p["distribution"],
            seed=p["seed"],
            shared_prefix_tokens=p.get("shared_prefix_tokens", 0),
            prefix_groups=p.get("prefix_groups", 1),
            output_tokens=p.get("output_tokens"),
        )
    except Exception as exc:
        log.exception("synthesising %s failed", version)
        _synthetic_failed(version, count, f"{type(exc).__name__}: {exc}")
        return
    _synthetic_store(version, count, tok, made)


@transaction.atomic
def _synthetic_store(version: DatasetVersion, count: TokenCount, tok: Any, made: list[Any]) -> None:
    items = [
        ParsedItem(
            prompt=m.prompt,
            max_tokens=m.max_tokens,
            metadata={"id": f"syn-{i}"}
            | ({"prefix_group": m.prefix_group} if m.prefix_group is not None else {}),
        )
        for i, m in enumerate(made)
    ]
    items_write(version=version, items=items)
    counts = [m.input_tokens for m in made]
    DatasetVersion.objects.filter(pk=version.pk).update(
        state=DatasetVersion.State.READY, item_count=len(items)
    )
    TokenCount.objects.filter(pk=count.pk).update(
        status=TokenCount.Status.DONE,
        tokenizer_name=tok.name,
        estimated=tok.estimated,
        counts=counts,
        done=len(counts),
        total=len(counts),
    )
    version.item_count = len(items)
    for ref in tokenizers_wanted(version.dataset):
        if ref != count.tokenizer:
            token_count_request(version=version, tokenizer=ref)


def _synthetic_failed(version: DatasetVersion, count: TokenCount, error: str) -> None:
    DatasetVersion.objects.filter(pk=version.pk).update(state=DatasetVersion.State.FAILED, error=error[:2000])
    TokenCount.objects.filter(pk=count.pk).update(status=TokenCount.Status.FAILED, error=error[:2000])


# --- team bucket edges ---------------------------------------------------------------------------


def team_buckets_set(*, team: Team, edges: list[int]) -> TeamBuckets:
    buckets, _ = TeamBuckets.objects.update_or_create(team=team, defaults={"edges": edges})
    return buckets
