"""What the delivery charts count: which try succeeded, the latency buckets, percentiles read
back from them, and the three views (minutes of the last hour, hours of the last two days,
days of the last month)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Final

import msgspec

# Upper bounds (ms) of the latency buckets; one more bucket holds everything longer.
LATENCY_BOUNDS_MS: Final = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
BUCKETS: Final = len(LATENCY_BOUNDS_MS) + 1
# The row of delivery_stats that sums every endpoint of a tenant.
ALL_ENDPOINTS: Final = uuid.UUID(int=0)


class View(msgspec.Struct, frozen=True):
    """One chart view: its bars' width, how many bars, and the stored period it reads."""

    name: str
    step: timedelta
    bars: int
    period: str  # "minute" or "hour"


VIEWS: Final = {
    "minute": View("minute", timedelta(minutes=1), 60, "minute"),
    "hour": View("hour", timedelta(hours=1), 48, "hour"),
    "day": View("day", timedelta(days=1), 30, "hour"),
}


def succeeded(status_code: int | None, error: str | None) -> bool:
    """Whether a try succeeded: a 2xx answer, or a broker's acknowledgement (no code, no
    error)."""
    if error is not None:
        return False
    return status_code is None or 200 <= status_code < 300


def bucket_of(latency_ms: int) -> int:
    """The index of the latency bucket a try falls in."""
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        if latency_ms <= bound:
            return index
    return len(LATENCY_BOUNDS_MS)


def percentile(buckets: list[int], fraction: float) -> float | None:
    """The latency (ms) below which `fraction` of the tries fell, interpolated within its
    bucket; None without tries. The last bucket reads as its lower bound."""
    total = sum(buckets)
    if total == 0:
        return None
    wanted, seen = fraction * total, 0
    for index, count in enumerate(buckets):
        if count and seen + count >= wanted:
            low = 0 if index == 0 else LATENCY_BOUNDS_MS[index - 1]
            if index == len(LATENCY_BOUNDS_MS):
                return float(low)
            high = LATENCY_BOUNDS_MS[index]
            return low + (high - low) * (wanted - seen) / count
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """The start of the bar a moment falls in (UTC days, hours or minutes)."""
    if step >= timedelta(days=1):
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if step >= timedelta(hours=1):
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)
