"""A mirror session seen live: both sides' finished records and per-second stats deltas, handed to a
sink while the session runs, the way the engine hands a shard's (``Sink.on_records``/``on_tick``).

Records are rows as :func:`runner.mirror.report.mirror_records` gives them at the end (production is
variant 0, the shadow variant 1, the mirror's request id as the pair's prompt id), so a host that
stores them as they come and again at the end stores each once. The windows count both sides, as a
paired A/B run's do, on the session's own clock (second 0 is when the proxy started).
"""

from __future__ import annotations

from typing import Any

from runner.records import RequestRecord
from runner.stats import ShardStats

SIDES = ("prod", "shadow")
FLUSH_S = 1.0


def record_row(variant: int, rid: str, rec: RequestRecord) -> dict[str, Any]:
    row = rec.to_dict()
    row.update(request_id=f"{SIDES[variant]}-{rid}", prompt_id=rid, variant=variant)
    return row


class LiveFeed:
    """Filled on the mirror's event loop; emptied by its flusher, every second and at the stop."""

    def __init__(self, t0_ns: int) -> None:
        self.t0 = t0_ns
        self.stats = ShardStats(0)
        self.rows: list[dict[str, Any]] = []
        self.in_flight = 0  # both sides' requests under way: the live view's "active" gauge

    def _second(self, t_ns: int) -> int:
        return max(0, (t_ns - self.t0) // 1_000_000_000)

    def started(self, t_ns: int) -> None:
        self.stats.started(self._second(t_ns))
        self.in_flight += 1

    def finished(self, variant: int, rid: str, rec: RequestRecord, end_ns: int) -> None:
        rec.variant = variant
        self.in_flight = max(0, self.in_flight - 1)
        self.stats.finished(self._second(end_ns), rec)
        self.rows.append(record_row(variant, rid, rec))

    def flush(
        self, now_ns: int, *, final: bool = False, extra: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The records since the last flush, and the delta; the gauge marks the second in progress,
        so a viewer draws only the seconds before it."""
        rows, self.rows = self.rows, []
        self.stats.gauge(self._second(now_ns), 0 if final else self.in_flight)
        return rows, self.stats.delta(final=final, extra=extra)
