"""Exact distributions of streams too long to hold: the same numbers as
:func:`runner.summary.distribution` of the whole stream, in memory that does not grow with it.

Two passes over the stream (a run's gaps, read back chunk by chunk):

1. :meth:`Exact.see` counts each value into a fine histogram (``2**-KEY_MANTISSA_BITS`` of an octave per
   bin, on the float's own bits, so it spans zero to infinity with no range to guess) and keeps each bin's
   count, smallest and largest value, the stream's count, min, max and its sum in fixed blocks;
2. :meth:`Exact.keep` keeps only the values inside the few bins that hold a wanted rank (the two
   neighbours of each percentile's index) whose smallest and largest differ; a bin of one value needs
   nothing more.

The wanted order statistics are then those bins' sorted values at the rank less the values below the bin,
interpolated exactly as ``numpy.percentile`` does (its "linear" method). The mean is the sum of
``MEAN_BLOCK``-value blocks (each summed by numpy) over the count, which :func:`blocked_sum` also gives
``distribution``: both see the values in the same order, so they agree to the bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]

MEAN_BLOCK = 1 << 16  # values per block of the mean's sum (one numpy sum each, added in order)
KEY_MANTISSA_BITS = 10  # bins per octave: 2**10, each 0.1 % wide
_SHIFT = np.uint64(52 - KEY_MANTISSA_BITS)
_SIGN = np.uint64(1 << 63)
PERCENTILES = (50, 90, 95, 99)


def blocked_sum(xs: F64) -> float:
    """The sum of ``xs`` as ``MEAN_BLOCK``-value blocks, each ``np.sum``-ed, added left to right (one
    block: exactly ``np.sum``, so ``np.mean`` of up to ``MEAN_BLOCK`` values is unchanged)."""
    total = 0.0
    for start in range(0, xs.size, MEAN_BLOCK):
        total += float(np.sum(xs[start : start + MEAN_BLOCK]))
    return total


def _keys(values: F64) -> U64:
    """A bin key per value, ordered as the values are (the IEEE bits made sortable, then truncated)."""
    bits = values.view(np.uint64)
    sortable = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    out: U64 = sortable >> _SHIFT
    return out


def _ranks(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], F64]:
    """numpy's linear-method indices and weights for PERCENTILES of n values (``_quantile``'s own
    arithmetic, so the interpolation agrees to the bit)."""
    q = np.true_divide(np.asarray(PERCENTILES), 100)
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = -1
    following[above] = -1
    below = virtual < 0
    previous[below] = 0
    following[below] = 0
    prev_i, next_i = previous.astype(np.intp), following.astype(np.intp)
    gamma = np.asanyarray(virtual - prev_i, dtype=virtual.dtype)
    return np.where(prev_i < 0, n + prev_i, prev_i), np.where(next_i < 0, n + next_i, next_i), gamma


def _lerp(a: F64, b: F64, t: F64) -> F64:
    diff = b - a
    out: F64 = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    return out


class Exact:
    """One stream's exact distribution: ``see`` every value (pass 1), ``plan``, ``keep`` every value
    again in the same order (pass 2, only when ``needs_second_pass``), then ``result``."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self._pending: list[F64] = []  # the values of the block being filled (< MEAN_BLOCK)
        self._pending_n = 0
        self.lo = np.inf
        self.hi = -np.inf
        self.bin_keys: U64 = np.empty(0, dtype=np.uint64)
        self.bin_counts: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.bin_lo: F64 = np.empty(0, dtype=np.float64)
        self.bin_hi: F64 = np.empty(0, dtype=np.float64)
        self._wanted: dict[int, tuple[float, float, int]] = {}  # bin → (lo, hi, values below it)
        self._kept: dict[int, list[F64]] = {}
        self._stats: dict[int, float] = {}  # rank → value
        self._planned = False

    # --- pass 1
    def see(self, values: F64) -> None:
        if not values.size:
            return
        values = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 → 0.0: one bin for zero
        self._add_to_sum(values)
        self.count += int(values.size)
        ordered = np.sort(values)
        self.lo = min(self.lo, float(ordered[0]))
        self.hi = max(self.hi, float(ordered[-1]))
        keys = _keys(ordered)
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        ends = np.append(starts[1:], ordered.size)
        self._merge(keys[starts], ends - starts, ordered[starts], ordered[ends - 1])

    def _add_to_sum(self, values: F64) -> None:
        while values.size:
            take = MEAN_BLOCK - self._pending_n
            self._pending.append(values[:take])
            self._pending_n += min(take, values.size)
            values = values[take:]
            if self._pending_n == MEAN_BLOCK:
                self.total += float(np.sum(np.concatenate(self._pending)))
                self._pending, self._pending_n = [], 0

    def _merge(self, keys: U64, counts: npt.NDArray[np.intp], lo: F64, hi: F64) -> None:
        keys = np.concatenate((self.bin_keys, keys))
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        self.bin_keys = keys[starts]
        self.bin_counts = np.add.reduceat(np.concatenate((self.bin_counts, counts))[order], starts)
        self.bin_lo = np.minimum.reduceat(np.concatenate((self.bin_lo, lo))[order], starts)
        self.bin_hi = np.maximum.reduceat(np.concatenate((self.bin_hi, hi))[order], starts)

    # --- between the passes
    def plan(self) -> None:
        """Which bins pass 2 must keep; the ranks that fall in a bin of one value are known now."""
        self._planned = True
        if self._pending:
            self.total += float(np.sum(np.concatenate(self._pending)))
            self._pending, self._pending_n = [], 0
        if not self.count:
            return
        prev_i, next_i, _ = _ranks(self.count)
        cumulative = np.cumsum(self.bin_counts)
        for rank in {int(r) for r in np.concatenate((prev_i, next_i))}:
            b = int(np.searchsorted(cumulative, rank, side="right"))
            if self.bin_lo[b] == self.bin_hi[b]:
                self._stats[rank] = float(self.bin_lo[b])
            else:
                below = int(cumulative[b] - self.bin_counts[b])
                self._wanted[b] = (float(self.bin_lo[b]), float(self.bin_hi[b]), below)
        self._kept = {b: [] for b in self._wanted}

    @property
    def needs_second_pass(self) -> bool:
        return bool(self._wanted)

    # --- pass 2
    def keep(self, values: F64) -> None:
        if not values.size or not self._wanted:
            return
        values = np.asarray(values, dtype=np.float64) + 0.0
        for b, (lo, hi, _) in self._wanted.items():
            inside = values[(values >= lo) & (values <= hi)]
            if inside.size:
                self._kept[b].append(inside)

    def kept_values(self) -> int:
        """Values held by pass 2 (what this costs in memory, for tests and benches)."""
        return sum(int(part.size) for parts in self._kept.values() for part in parts)

    # --- the answer
    def result(self) -> dict[str, float | int | None]:
        if not self._planned:
            self.plan()
        if not self.count:
            return {"count": 0, "p50": None, "p90": None, "p95": None, "p99": None, "mean": None, "max": None}
        prev_i, next_i, gamma = _ranks(self.count)
        cumulative = np.cumsum(self.bin_counts)
        sorted_bins = {b: np.sort(np.concatenate(parts)) for b, parts in self._kept.items() if parts}
        stats = dict(self._stats)
        for rank in {int(r) for r in np.concatenate((prev_i, next_i))} - stats.keys():
            b = int(np.searchsorted(cumulative, rank, side="right"))
            stats[rank] = float(sorted_bins[b][rank - self._wanted[b][2]])
        a = np.array([stats[int(r)] for r in prev_i], dtype=np.float64)
        z = np.array([stats[int(r)] for r in next_i], dtype=np.float64)
        p50, p90, p95, p99 = (float(x) for x in _lerp(a, z, gamma))
        return {
            "count": self.count,
            "p50": p50,
            "p90": p90,
            "p95": p95,
            "p99": p99,
            "mean": self.total / self.count,
            "max": self.hi,
            "min": self.lo,
        }


def exact_distribution(parts: Any) -> dict[str, float | int | None]:
    """``distribution`` of the concatenation of ``parts`` (a re-iterable of arrays), two passes."""
    e = Exact()
    for part in parts:
        e.see(part)
    e.plan()
    if e.needs_second_pass:
        for part in parts:
            e.keep(part)
    return e.result()
