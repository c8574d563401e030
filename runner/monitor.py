"""The engine watching itself, so harness overhead is never read as server latency.

Every second it records event-loop lag (how late a 10 ms timer fires), CPU use of this process and
the schedule lag of sends; at the end it gives one verdict with reasons.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from runner.summary import percentile

TICK_S = 0.01
LAG_P99_LIMIT_MS = 20.0
# A second whose worst loop stall passed this is a "stalled second". One or two can be a neighbour
# on a shared machine; more than LAG_STALLED_SHARE of the run's seconds (and at least
# LAG_STALLED_MIN of them) means the client itself was too busy to stamp on time.
LAG_SECOND_LIMIT_MS = 20.0
LAG_STALLED_SHARE = 0.05
LAG_STALLED_MIN = 3
CPU_LIMIT = 0.90
SCHEDULE_P99_LIMIT_MS = 50.0
LATE_FRACTION_LIMIT = 0.01
TOKEN_MISMATCH_LIMIT_PCT = 5.0


@dataclass
class EngineMonitor:
    lags_ms: list[float] = field(default_factory=list)
    cpu_per_s: list[float] = field(default_factory=list)
    seconds: list[dict[str, float]] = field(default_factory=list)
    _cpu0: float = 0.0
    _wall0: float = 0.0
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        cpu_mark, wall_mark, lag_max = time.process_time(), time.perf_counter(), 0.0
        while True:
            before = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lag = (time.perf_counter() - before - TICK_S) * 1000
            self.lags_ms.append(lag)
            lag_max = max(lag_max, lag)
            now = time.perf_counter()
            if now - wall_mark >= 1.0:
                cpu = (time.process_time() - cpu_mark) / (now - wall_mark)
                self.cpu_per_s.append(cpu)
                self.seconds.append({"lag_ms_max": lag_max, "cpu": cpu})
                cpu_mark, wall_mark, lag_max = time.process_time(), now, 0.0

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def last_second(self) -> dict[str, float]:
        return self.seconds[-1] if self.seconds else {}

    def cpu_seconds(self) -> float:
        return time.process_time() - self._cpu0

    def report(
        self,
        *,
        schedule_lags_ms: list[float],
        late_sends: int,
        capped_sends: int,
        total_sends: int,
        token_mismatch_pct: float | None,
    ) -> dict[str, Any]:
        lags = sorted(self.lags_ms) or [0.0]
        sched = sorted(schedule_lags_ms) or [0.0]
        busy = [c for c in self.cpu_per_s if c >= CPU_LIMIT]
        reasons: list[str] = []
        lag_p99 = percentile(lags, 99)
        if lag_p99 > LAG_P99_LIMIT_MS:
            reasons.append(f"event loop lag p99 {lag_p99:.1f} ms > {LAG_P99_LIMIT_MS:.0f} ms")
        stalled = sum(1 for s in self.seconds if s["lag_ms_max"] > LAG_SECOND_LIMIT_MS)
        if stalled >= LAG_STALLED_MIN and stalled > LAG_STALLED_SHARE * len(self.seconds):
            reasons.append(
                f"event loop stalled over {LAG_SECOND_LIMIT_MS:.0f} ms in {stalled} of "
                f"{len(self.seconds)} s (loop lag max {lags[-1]:.1f} ms)"
            )
        if self.cpu_per_s and len(busy) > 0.2 * len(self.cpu_per_s):
            reasons.append(f"CPU ≥ {CPU_LIMIT:.0%} of a core in {len(busy)} of {len(self.cpu_per_s)} s")
        uncapped_late = late_sends - capped_sends
        if total_sends and uncapped_late > LATE_FRACTION_LIMIT * total_sends:
            reasons.append(f"{uncapped_late} of {total_sends} sends late by the client itself")
        sched_p99 = percentile(sched, 99)
        if sched_p99 > SCHEDULE_P99_LIMIT_MS and uncapped_late:
            reasons.append(f"schedule lag p99 {sched_p99:.1f} ms")
        suspect: list[str] = []
        if token_mismatch_pct is not None and abs(token_mismatch_pct) > TOKEN_MISMATCH_LIMIT_PCT:
            suspect.append(f"server usage and client token count differ by {token_mismatch_pct:+.1f}%")
        verdict = "client-bound" if reasons else ("suspect" if suspect else "trustworthy")
        wall = time.perf_counter() - self._wall0
        return {
            "verdict": verdict,
            "saturated": bool(reasons),
            "reasons": reasons + suspect,
            "lag_ms_p50": percentile(lags, 50),
            "lag_ms_p99": lag_p99,
            "lag_ms_max": lags[-1],
            "stalled_seconds": stalled,
            "cpu_seconds": self.cpu_seconds(),
            "cpu_fraction_mean": self.cpu_seconds() / wall if wall > 0 else None,
            "cpu_fraction_max": max(self.cpu_per_s, default=None),
            "schedule_lag_ms_p50": percentile(sched, 50),
            "schedule_lag_ms_p99": sched_p99,
            "late_sends": late_sends,
            "capped_sends": capped_sends,
            "sends": total_sends,
            "token_mismatch_pct": token_mismatch_pct,
            "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        }
