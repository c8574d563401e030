"""Live statistics that merge across shards and machines.

Each shard keeps one :class:`Window` per second of the run (aligned on the run's start, so shards
on different machines add up), and ships the windows it touched as a JSON delta every second, then
forgets them, like Locust's workers. Latency distributions are HdrHistograms (3 significant digits,
1 µs to 1 h), which merge exactly and serialise compactly. Exact percentiles are computed at the end
from raw records (:mod:`runner.summary`); these sketches only feed the live view.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from runner.quality import MONITORS, flags

_LOW, _HIGH, _DIGITS = 1, 3_600_000_000, 3  # microseconds


def _hist() -> HdrHistogram:
    return HdrHistogram(_LOW, _HIGH, _DIGITS)


def _enc(h: HdrHistogram) -> str | None:
    return h.encode().decode("ascii") if h.get_total_count() else None


def _dec(s: str | None) -> HdrHistogram:
    h = _hist()
    if s:
        h.add(HdrHistogram.decode(s.encode("ascii")))
    return h


CONTENT = frozenset({"thinking", "answer", "tool_call"})  # packet kinds that carry output tokens


@dataclass(slots=True)
class Window:
    """What happened in one second. Requests (completed, failed, QPM) count in the second they
    finished; output tokens count in the second they arrived (see :meth:`ShardStats.finished`)."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    output_tokens: int = 0
    input_tokens: int = 0
    active_users: int = 0  # sampled; summed across shards
    late_sends: int = 0
    quality: dict[str, int] = field(default_factory=dict)  # runner.quality monitor → count
    graded: int = 0  # answers graded against an expected one (textual pass, live)
    correct: int = 0
    ttft: HdrHistogram = field(default_factory=_hist)  # µs
    tokens_per_s: HdrHistogram = field(default_factory=_hist)  # tokens/s × 1000
    e2e: HdrHistogram = field(default_factory=_hist)  # µs

    def merge(self, other: Window) -> None:
        self.started += other.started
        self.completed += other.completed
        self.failed += other.failed
        for k, v in other.failures.items():
            self.failures[k] = self.failures.get(k, 0) + v
        self.output_tokens += other.output_tokens
        self.input_tokens += other.input_tokens
        self.active_users += other.active_users
        self.late_sends += other.late_sends
        for k, v in other.quality.items():
            self.quality[k] = self.quality.get(k, 0) + v
        self.graded += other.graded
        self.correct += other.correct
        self.ttft.add(other.ttft)
        self.tokens_per_s.add(other.tokens_per_s)
        self.e2e.add(other.e2e)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "completed": self.completed,
            "failed": self.failed,
            "failures": dict(self.failures),
            "output_tokens": self.output_tokens,
            "input_tokens": self.input_tokens,
            "active_users": self.active_users,
            "late_sends": self.late_sends,
            "quality": dict(self.quality),
            "graded": self.graded,
            "correct": self.correct,
            "ttft": _enc(self.ttft),
            "tokens_per_s": _enc(self.tokens_per_s),
            "e2e": _enc(self.e2e),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Window:
        return cls(
            started=d["started"],
            completed=d["completed"],
            failed=d["failed"],
            failures=dict(d["failures"]),
            output_tokens=d["output_tokens"],
            input_tokens=d["input_tokens"],
            active_users=d["active_users"],
            late_sends=d.get("late_sends", 0),
            quality=dict(d.get("quality") or {}),
            graded=d.get("graded", 0),
            correct=d.get("correct", 0),
            ttft=_dec(d["ttft"]),
            tokens_per_s=_dec(d["tokens_per_s"]),
            e2e=_dec(d["e2e"]),
        )


class ShardStats:
    """A shard's side: record into the current second, ship what changed as a delta."""

    def __init__(self, shard: int, second0: int = 0) -> None:
        self.shard = shard
        self.second0 = second0  # the run second this shard's clock started in
        self.seq = 0
        self._dirty: dict[int, Window] = {}
        self._gauges: dict[int, int] = {}

    def window(self, second: int) -> Window:
        w = self._dirty.get(second)
        if w is None:
            w = self._dirty[second] = Window()
        return w

    def started(self, second: int, late: bool = False) -> None:
        w = self.window(second)
        w.started += 1
        w.late_sends += late

    def finished(self, second: int, rec: Any) -> None:
        w = self.window(second)
        if rec.ok:
            w.completed += 1
            if rec.ttft_ms is not None:
                w.ttft.record_value(max(1, int(rec.ttft_ms * 1000)))
            if rec.e2e_ms is not None:
                w.e2e.record_value(max(1, int(rec.e2e_ms * 1000)))
            if rec.tokens_per_s:
                w.tokens_per_s.record_value(max(1, min(_HIGH, int(rec.tokens_per_s * 1000))))
        elif rec.outcome != "cancelled":  # cut off by a cancel: kept, but not a failure
            w.failed += 1
            w.failures[rec.outcome] = w.failures.get(rec.outcome, 0) + 1
        w.input_tokens += rec.input_tokens or 0
        if rec.outcome != "cancelled":
            for name, hit in flags(rec).items():
                if hit:
                    w.quality[name] = w.quality.get(name, 0) + 1
            if rec.correct is not None:
                w.graded += 1
                w.correct += bool(rec.correct)
        spread = tokens_by_second(rec, self.second0)
        for tok_second, tokens in spread:
            self.window(tok_second).output_tokens += tokens
        if not spread:  # no content packets to place them by: all in the second it finished
            w.output_tokens += rec.output_tokens or 0

    def gauge(self, second: int, active_users: int) -> None:
        """Sampled, not counted: travels apart from the windows so a later delta that re-sends a
        second (a request finished in it) cannot reset it."""
        self._gauges[second] = active_users

    def delta(self, final: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything since the last delta, then reset (JSON-serialisable)."""
        self.seq += 1
        out = {
            "shard": self.shard,
            "seq": self.seq,
            "final": final,
            "windows": {str(s): w.to_dict() for s, w in sorted(self._dirty.items())},
            "gauges": {str(s): g for s, g in sorted(self._gauges.items())},
            **(extra or {}),
        }
        self._dirty, self._gauges = {}, {}
        return out


def tokens_by_second(rec: Any, second0: int) -> list[tuple[int, int]]:
    """A request's output tokens in the run seconds their packets arrived.

    The server's per-chunk counts when every content packet has one (``tokens`` > 0); otherwise the
    request's final count split evenly over its content packets (the remainder to the last ones),
    so the seconds add up to exactly the request's count.
    """
    out = rec.output_tokens or 0
    if not out or not rec.packets:
        return []
    content = [row for row in rec.packets if row[0] in CONTENT]
    if not content:
        return []
    start = rec.scheduled_s  # packet times are ms after the scheduled send
    first = second0 + int(start + content[0][1] / 1000.0)
    last = second0 + int(start + content[-1][1] / 1000.0)
    per_chunk = all(row[2] > 0 for row in content)
    if first == last:  # the usual case: the whole answer inside one second
        return [(first, sum(row[2] for row in content) if per_chunk else out)]
    k = len(content)
    share, extra = divmod(out, k)
    by_second: dict[int, int] = {}
    for i, row in enumerate(content):
        n = row[2] if per_chunk else share + (1 if i >= k - extra else 0)
        second = second0 + int(start + row[1] / 1000.0)
        by_second[second] = by_second.get(second, 0) + n
    return list(by_second.items())


def _pct(h: HdrHistogram, q: float, scale: float) -> float | None:
    return h.get_value_at_percentile(q) / scale if h.get_total_count() else None


class LiveAggregate:
    """The aggregator's side: merge deltas from every shard into one per-second view."""

    def __init__(self) -> None:
        self.windows: dict[int, Window] = {}
        self.total = Window()
        self.shards: dict[str, dict[str, Any]] = {}

    def merge(self, delta: dict[str, Any]) -> None:
        shard = str(delta.get("shard", 0))
        seen = self.shards.setdefault(shard, {"seq": 0, "final": False})
        if delta.get("seq", 0) <= seen["seq"]:
            return  # a duplicate delivery must not count twice
        seen["seq"], seen["final"] = delta.get("seq", 0), bool(delta.get("final"))
        if "engine" in delta:
            seen["engine"] = delta["engine"]
        for second, wd in delta.get("windows", {}).items():
            w = Window.from_dict(wd)
            self.total.merge(w)
            target = self.windows.get(int(second))
            if target is None:
                target = self.windows[int(second)] = Window()
            target.merge(w)
        gauges = seen.setdefault("gauges", {})
        fresh = {int(sec): g for sec, g in delta.get("gauges", {}).items()}
        if fresh:
            # carry this shard's last sample over seconds it did not flush in, then re-add only the
            # touched seconds: merging stays cheap however long the run
            last_second = seen.get("last_gauge", min(fresh))
            last_value = gauges.get(str(last_second), 0)
            for second in range(last_second + 1, max(fresh) + 1):
                last_value = fresh.get(second, last_value)
                gauges[str(second)] = last_value
            for second, g in fresh.items():
                gauges[str(second)] = g
            seen["last_gauge"] = max(last_second, max(fresh))
            self._sum_gauges(range(min(last_second + 1, min(fresh)), max(fresh) + 1))

    def _sum_gauges(self, seconds: Iterable[int]) -> None:
        for second in seconds:
            total = sum(info.get("gauges", {}).get(str(second), 0) for info in self.shards.values())
            window = self.windows.get(second)
            if window is None:
                window = self.windows[second] = Window()
            window.active_users = total

    def complete_through(self) -> int | None:
        """The last second every shard has flushed past: the live view draws only up to here, so
        the second in progress never shows as a dip. (A later record may still add tokens to a
        drawn second; the view redraws it then.)"""
        if not self.windows:
            return None
        marks = [
            int(info["last_gauge"]) - 1
            for info in self.shards.values()
            if not info.get("final") and "last_gauge" in info
        ]
        return min(marks) if marks else max(self.windows)

    def point(self, second: int) -> dict[str, Any]:
        w = self.windows.get(second) or Window()
        finished = w.completed + w.failed
        lo = [self.windows[s] for s in range(second - 9, second + 1) if s in self.windows]
        done = sum(x.completed + x.failed for x in lo)
        return {
            "t": second,
            "active_users": w.active_users,
            "started": w.started,
            "completed": w.completed,
            "failed": w.failed,
            "failures": dict(w.failures),
            "qpm": done * 60.0 / max(1, min(10, second + 1)),
            "output_tokens_per_s": float(w.output_tokens),
            "ttft_p50": _pct(w.ttft, 50, 1000.0),
            "ttft_p95": _pct(w.ttft, 95, 1000.0),
            "ttft_p99": _pct(w.ttft, 99, 1000.0),
            "tokens_per_s_p50": _pct(w.tokens_per_s, 50, 1000.0),
            "late_sends": w.late_sends,
            # answer quality per second, over the requests that finished in it (completion semantics)
            **{f"{name}_rate": w.quality.get(name, 0) / finished if finished else None for name in MONITORS},
            "accuracy": w.correct / w.graded if w.graded else None,
        }

    def series(self) -> list[dict[str, Any]]:
        if not self.windows:
            return []
        return [self.point(s) for s in range(min(self.windows), max(self.windows) + 1)]

    def snapshot(self) -> dict[str, Any]:
        t = self.total
        finished = t.completed + t.failed
        return {
            "started": t.started,
            "completed": t.completed,
            "failed": t.failed,
            "failures": dict(t.failures),
            "success_rate": t.completed / finished if finished else None,
            "output_tokens": t.output_tokens,
            "input_tokens": t.input_tokens,
            "late_sends": t.late_sends,
            "ttft_p50": _pct(t.ttft, 50, 1000.0),
            "ttft_p95": _pct(t.ttft, 95, 1000.0),
            "ttft_p99": _pct(t.ttft, 99, 1000.0),
            "e2e_p50": _pct(t.e2e, 50, 1000.0),
            "tokens_per_s_p50": _pct(t.tokens_per_s, 50, 1000.0),
            "quality": dict(t.quality),
            "accuracy": t.correct / t.graded if t.graded else None,  # running, textual pass
            "graded": t.graded,
            "shards_final": sum(1 for s in self.shards.values() if s["final"]),
            "engine": {k: v["engine"] for k, v in self.shards.items() if "engine" in v},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "windows": {str(s): w.to_dict() for s, w in self.windows.items()},
            "total": self.total.to_dict(),
            "shards": self.shards,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LiveAggregate:
        agg = cls()
        agg.windows = {int(s): Window.from_dict(w) for s, w in d.get("windows", {}).items()}
        agg.total = Window.from_dict(d["total"]) if d.get("total") else Window()
        agg.shards = d.get("shards", {})
        return agg
