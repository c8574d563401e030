"""What a mirror keeps of its finished records over a session of days: almost nothing in memory.

Each side's records go to a spill file as they are made (one JSONL line each, the record's own
fields), and the summary is computed from that file at the stop, as columns
(:func:`runner.columns.summarize_columns`: the numbers :func:`runner.summary.summarize` gives over
the same records). In memory a side keeps only counts; the pairing keeps one :data:`PairRow` per
pair (a tuple of numbers, the answers already scored) and, while a pair is half done, the first
side's five fields. The memory a request leaves behind does not grow with its answer's length, and
the garbage collector has no record objects, packet lists or answer texts to trace.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import orjson

from runner.columns import Columns, columns_from
from runner.pairing import PairRow, pair_row
from runner.records import Outcome, RequestRecord

CHUNK = 5000  # rows read back per columns chunk at the stop


def _side(rec: RequestRecord) -> dict[str, Any]:
    return {
        "outcome": rec.outcome,
        "ttft_ms": rec.ttft_ms,
        "e2e_ms": rec.e2e_ms,
        "tokens_per_s": rec.tokens_per_s,
        "answer_text": rec.answer_text,
    }


class Pairing:
    """Production (side 0) and shadow (side 1) records of the same request, reduced to a
    :data:`PairRow` when the second arrives, in the order the shadow's records came (as a dict of
    the shadow's records would give them). A production record waits for its shadow only when a
    copy was queued (:meth:`expect`)."""

    def __init__(self) -> None:
        self.rows: list[PairRow | None] = []  # None: the shadow's record came, production's not yet
        self._expected: set[str] = set()
        self._half: dict[str, dict[str, Any]] = {}  # the first side's fields, until the second comes
        self._slot: dict[str, int] = {}  # shadow came first: where its pair goes in ``rows``

    def expect(self, rid: str) -> None:
        self._expected.add(rid)

    def add(self, side: int, rid: str, rec: RequestRecord) -> None:
        row = _side(rec)
        if side == 0:
            if rid in self._slot:
                self.rows[self._slot.pop(rid)] = pair_row(row, self._half.pop(rid))
            elif rid in self._expected:
                self._expected.discard(rid)
                self._half[rid] = row
            return
        self._expected.discard(rid)
        if rid in self._half:
            self.rows.append(pair_row(self._half.pop(rid), row))
        else:
            self._slot[rid] = len(self.rows)
            self.rows.append(None)
            self._half[rid] = row

    def pairs(self) -> list[PairRow]:
        return [r for r in self.rows if r is not None]

    @property
    def waiting(self) -> int:
        """Requests held half-paired or expected (bounded by the shadow's queue and workers)."""
        return len(self._half) + len(self._expected)


class RecordStore:
    """One side's finished records: spilled to an unnamed temporary file (gone when closed or when
    the process ends), counted in memory."""

    def __init__(self, variant: int, pairing: Pairing | None = None) -> None:
        self.variant = variant
        self.pairing = pairing
        self.count = 0
        self.succeeded = 0  # plain ints: a host's thread may read them while the loop runs
        self._file = tempfile.TemporaryFile(prefix="llmperf-mirror-")  # noqa: SIM115

    def add(self, rid: str, rec: RequestRecord) -> None:
        rec.variant = self.variant
        self._file.write(orjson.dumps(rec.to_dict()) + b"\n")
        self.count += 1
        self.succeeded += rec.outcome == Outcome.SUCCESS.value
        if self.pairing is not None:
            self.pairing.add(self.variant, rid, rec)

    def __len__(self) -> int:
        return self.count

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every record as a dict, in the order they came (read from the file, one at a time)."""
        self._file.flush()
        self._file.seek(0)
        try:
            for line in self._file:
                yield orjson.loads(line)
        finally:
            self._file.seek(0, 2)  # appends go on at the end

    def records(self) -> list[RequestRecord]:
        return [RequestRecord.from_dict(r) for r in self.rows()]

    def columns(self) -> Columns:
        """Every record as columns, built :data:`CHUNK` rows at a time."""
        parts: list[Columns] = []
        chunk: list[dict[str, Any]] = []
        for row in self.rows():
            chunk.append(row)
            if len(chunk) >= CHUNK:
                parts.append(columns_from(chunk))
                chunk = []
        if chunk or not parts:
            parts.append(columns_from(chunk))
        return Columns.concat(parts)

    def close(self) -> None:
        self._file.close()
