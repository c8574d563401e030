"""A shard's final verdicts onto its stored records.

The engine streams records to Postgres while it measures, with the live (textual) verdict at best; it
grades symbolically only after the measuring, so the rows it already streamed are patched here once
``run_blocking`` returns, before the shard ends and the run's exact summary reads them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from django.db import connection

from benchmarks.models import RequestRecord

log = logging.getLogger(__name__)
GRADE_FIELDS = ("correct", "extracted_answer", "grade_reason")
CHUNK = 500


def records_grades_store(*, run_id: int, shard_index: int, records: Iterable[Any]) -> int:
    """Writes each graded record's verdict into its row's ``data``; returns how many rows changed.
    Never fails the shard: the load was measured, and the rows keep the verdicts they streamed with."""
    try:
        return _store(run_id, shard_index, records)
    except Exception:
        log.exception("storing the verdicts of run %s shard %s failed", run_id, shard_index)
        return 0


def _store(run_id: int, shard_index: int, records: Iterable[Any]) -> int:
    patches = [
        (str(r.request_id), json.dumps({k: getattr(r, k, None) for k in GRADE_FIELDS}))
        for r in records
        if getattr(r, "correct", None) is not None
    ]
    table = RequestRecord._meta.db_table
    changed = 0
    if connection.vendor != "postgresql":  # embedded mode's SQLite: no ::jsonb, JSON1's merge patch
        with connection.cursor() as cursor:
            for request_id, patch in patches:
                cursor.execute(
                    f"UPDATE {table} SET data = json_patch(data, %s) "
                    "WHERE run_id = %s AND shard_index = %s AND request_id = %s",
                    [patch, run_id, shard_index, request_id],
                )
                changed += cursor.rowcount
        return changed
    with connection.cursor() as cursor:
        for start in range(0, len(patches), CHUNK):
            chunk = patches[start : start + CHUNK]
            values = ", ".join(["(%s, %s::jsonb)"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} AS r SET data = r.data || v.patch FROM (VALUES {values}) AS v(request_id, patch) "
                "WHERE r.run_id = %s AND r.shard_index = %s AND r.request_id = v.request_id",
                [x for pair in chunk for x in pair] + [run_id, shard_index],
            )
            changed += cursor.rowcount
    return changed
