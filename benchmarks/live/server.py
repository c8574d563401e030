"""The server's gauges in the live view: shard 0 adds them to its deltas per second of the run's
clock (``delta["server"]``), the run's aggregator keeps them beside its own windows and puts them in
each second's point (``server_running``, ``server_waiting``, ``server_kv_cache``), so the live page
draws the server's batch and queue next to the client's TTFT."""

from __future__ import annotations

from typing import Any

FIELDS = {
    "requests_running": "server_running",
    "requests_waiting": "server_waiting",
    "kv_cache_usage": "server_kv_cache",
}


def per_second(samples: list[tuple[float, dict[str, float]]], t0_epoch: float) -> dict[str, dict[str, float]]:
    """Scrapes (wall-clock stamped) → ``{second: {field: peak}}`` on the run's clock; before it, none."""
    out: dict[str, dict[str, float]] = {}
    for epoch, values in samples:
        second = int(epoch - t0_epoch)
        if epoch < t0_epoch:
            continue
        peaks = out.setdefault(str(second), {})
        for name, field in FIELDS.items():
            if name in values:
                peaks[field] = max(peaks.get(field, values[name]), values[name])
    return out


class ServerSeconds:
    """The aggregator's side: per-second server peaks merged from deltas."""

    def __init__(self) -> None:
        self.by_second: dict[int, dict[str, float]] = {}

    def merge(self, delta: dict[str, Any]) -> set[int]:
        touched = set()
        for second, values in (delta.get("server") or {}).items():
            peaks = self.by_second.setdefault(int(second), {})
            for field, value in values.items():
                peaks[field] = max(peaks.get(field, value), value)
            touched.add(int(second))
        return touched

    def decorate(self, point: dict[str, Any]) -> dict[str, Any]:
        return point | self.by_second.get(int(point["t"]), {})
