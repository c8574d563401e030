"""The local spool: records a shard measured but could not store because the database was
unreachable. One JSONL file per run and shard under ``SHARD_SPOOL_DIR``; the writer process loads it
back itself once the database answers again, and finalize (or the reaper) loads whatever a writer
that ended meanwhile left behind. Loading is idempotent (one row per run, shard and request id).

Appending and loading hold an exclusive lock on the run's ``.lock`` file (never deleted), so a
record appended while a load runs is either in the loaded file or in the next one, never dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db.models import Count

from benchmarks import bridge
from benchmarks.models import RequestRecord, Shard

log = logging.getLogger(__name__)
INSERT_BATCH = 500


def spool_dir(run_id: int) -> Path:
    return Path(settings.SHARD_SPOOL_DIR) / f"run-{run_id}"


def spool_path(*, run_id: int, shard_index: int) -> Path:
    return spool_dir(run_id) / f"shard-{shard_index}.jsonl"


@contextlib.contextmanager
def _locked(run_id: int) -> Iterator[Path]:
    folder = spool_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def spool_append(*, run_id: int, shard_index: int, records: list[dict[str, Any]]) -> None:
    """Keep ``records`` on local disk (flushed and fsynced) until the database takes them."""
    if not records:
        return
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    with _locked(run_id), open(spool_path(run_id=run_id, shard_index=shard_index), "ab+") as f:
        if f.tell():  # a line torn by a crash mid-write must not swallow the next record
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                data = b"\n" + data
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def spool_pending(*, run_id: int, shard_index: int | None = None) -> bool:
    folder = spool_dir(run_id)
    if shard_index is not None:
        return spool_path(run_id=run_id, shard_index=shard_index).exists()
    return folder.is_dir() and any(folder.glob("shard-*.jsonl"))


def spool_load(*, run_id: int, shard_index: int | None = None) -> int:
    """Insert the spooled records of one shard (or of every shard of the run) and drop their files;
    a database error propagates and the files stay for the next try. Returns the records read."""
    if not spool_pending(run_id=run_id, shard_index=shard_index):
        return 0
    loaded = 0
    with _locked(run_id) as folder:
        paths = (
            [spool_path(run_id=run_id, shard_index=shard_index)]
            if shard_index is not None
            else sorted(folder.glob("shard-*.jsonl"))
        )
        for path in paths:
            if path.exists():
                loaded += _load_file(run_id, int(path.stem.removeprefix("shard-")), path)
                path.unlink()
    return loaded


def _load_file(run_id: int, shard_index: int, path: Path) -> int:
    """Inserts the file's records ``INSERT_BATCH`` at a time, so a spool of any size loads in
    bounded memory (a run of a million requests may have spooled most of them)."""
    loaded = 0
    rows: list[RequestRecord] = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:  # only a line cut by a crash mid-write can be torn
                log.error("spool %s line %d is torn; skipped", path, number)
                continue
            record.setdefault("shard", shard_index)
            rows.append(bridge.record_row(run_id, record))
            if len(rows) >= INSERT_BATCH:
                loaded += _insert(rows)
                rows = []
    loaded += _insert(rows)
    shard_count_records(run_id=run_id, shard_index=shard_index)
    log.info("run %s shard %s: %d spooled records loaded", run_id, shard_index, loaded)
    return loaded


def _insert(rows: list[RequestRecord]) -> int:
    # idempotent (one row per run, shard and request id): a load cut short is simply loaded again
    RequestRecord.objects.bulk_create(rows, batch_size=INSERT_BATCH, ignore_conflicts=True)
    return len(rows)


def shard_count_records(*, run_id: int, shard_index: int) -> None:
    """The shard's records_count from its rows (a spooled batch may have been half stored before)."""
    count = (
        RequestRecord.objects.filter(run_id=run_id, shard_index=shard_index)
        .aggregate(n=Count("id"))
        .get("n", 0)
    )
    Shard.objects.filter(run_id=run_id, index=shard_index).update(records_count=count)


def spool_runs() -> list[int]:
    """Runs with spooled records on this machine (for the periodic reaper)."""
    root = Path(settings.SHARD_SPOOL_DIR)
    if not root.is_dir():
        return []
    out = []
    for folder in root.glob("run-*"):
        with contextlib.suppress(ValueError):
            if any(folder.glob("shard-*.jsonl")):
                out.append(int(folder.name.removeprefix("run-")))
    return sorted(out)


def spool_discard(*, run_id: int) -> None:
    """Remove the run's spool folder once nothing is left in it (after finalize)."""
    if not spool_pending(run_id=run_id):
        shutil.rmtree(spool_dir(run_id), ignore_errors=True)
