"""Sparklines (``▁▂▃▄▅▆▇█``) of stored samples: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

BARS = "▁▂▃▄▅▆▇█"
GAP = "·"  # a bucket without samples: visibly "no data", not a low value


def bucketize(
    points: Sequence[tuple[datetime, float]], *, start: datetime, end: datetime, buckets: int
) -> list[float | None]:
    """Average the points that fall in each of ``buckets`` equal slices of [start, end)."""
    if buckets < 1 or end <= start:
        raise ValueError("need at least one bucket and end after start")
    span = (end - start).total_seconds()
    sums = [0.0] * buckets
    counts = [0] * buckets
    for at, value in points:
        offset = (at - start).total_seconds()
        if not 0 <= offset < span:
            continue
        index = min(buckets - 1, int(offset / span * buckets))
        sums[index] += value
        counts[index] += 1
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)]


def sparkline(
    values: Sequence[float | None], *, lo: float | None = None, hi: float | None = None
) -> str:
    """One bar per value, scaled between ``lo`` and ``hi`` (default: the values' own range)."""
    known = [v for v in values if v is not None]
    if not known:
        return GAP * len(values)
    low = min(known) if lo is None else lo
    high = max(known) if hi is None else hi
    span = high - low
    bars = []
    for value in values:
        if value is None:
            bars.append(GAP)
            continue
        ratio = 0.0 if span <= 0 else (min(max(value, low), high) - low) / span
        bars.append(BARS[min(len(BARS) - 1, int(ratio * len(BARS)))])
    return "".join(bars)
