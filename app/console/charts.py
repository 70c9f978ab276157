"""The console's delivery charts, drawn on the server as SVG: per minute, hour or day, the
tries that succeeded and failed, the success rate, and p50/p95 latency, for a tenant or one
endpoint. Read from delivery_stats (a few hundred rows at most, whatever the traffic)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import msgspec
from psycopg import AsyncConnection

from core.delivery_stats import ALL_ENDPOINTS, BUCKETS, VIEWS, View, floor_to, percentile
from db import delivery_stats

WIDTH, HEIGHT = 600, 150  # the plot area of every chart (viewBox units)
LABELS = {"minute": "%H:%M", "hour": "%d %b %H:00", "day": "%d %b"}


class Bar(msgspec.Struct):
    """One bar: its counts, the latency percentiles, and where it is drawn."""

    starts_at: datetime
    succeeded: int
    failed: int
    p50: float | None
    p95: float | None
    x: float
    ok_height: float
    failed_height: float

    @property
    def rate(self) -> float | None:
        """Succeeded out of every try, in percent."""
        total = self.succeeded + self.failed
        return None if total == 0 else 100 * self.succeeded / total


class Chart(msgspec.Struct):
    """Everything the chart macros draw."""

    view: View
    bars: list[Bar]
    bar_width: float
    count_ticks: list[tuple[float, float]]  # (y, tries per bar)
    latency_ticks: list[tuple[float, float]]  # (y, ms)
    labels: list[tuple[float, str]]  # (x, time)
    rate_points: list[tuple[float, float]]  # (x, y) of each bar with tries
    p50_points: list[tuple[float, float]]
    p95_points: list[tuple[float, float]]
    succeeded: int
    failed: int


def nice_ceiling(value: float) -> int:
    """A round axis maximum at or above `value` (1, 2 or 5 times a power of ten)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(int(m * power) for m in (1, 2, 5, 10) if m * power >= value)


def _points(
    bars: list[Bar], values: list[float | None], top: float, width: float
) -> list[tuple[float, float]]:
    return [
        (round(b.x + width / 2, 1), round(HEIGHT - HEIGHT * v / top, 1))
        for b, v in zip(bars, values, strict=True)
        if v is not None
    ]


async def delivery_chart(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    view_name: str,
    endpoint_id: uuid.UUID | None = None,
) -> Chart:
    """The chart of a view ("minute", "hour", "day"; anything else: minute)."""
    view = VIEWS.get(view_name, VIEWS["minute"])
    last = floor_to(datetime.now(UTC), view.step)
    first = last - view.step * (view.bars - 1)
    rows = await delivery_stats.series(
        conn, tenant_id, endpoint_id or ALL_ENDPOINTS, view.period, first
    )
    sums: dict[datetime, tuple[int, int, list[int]]] = {}
    for row in rows:
        start = floor_to(row.starts_at.astimezone(UTC), view.step)
        ok, bad, buckets = sums.get(start, (0, 0, [0] * BUCKETS))
        merged = [a + b for a, b in zip(buckets, row.latency_buckets, strict=False)]
        sums[start] = (ok + row.succeeded, bad + row.failed, merged)
    return _drawn(view, first, sums)


def _drawn(view: View, first: datetime, sums: dict[datetime, tuple[int, int, list[int]]]) -> Chart:
    width = WIDTH / view.bars
    top = nice_ceiling(max([1, *(ok + bad for ok, bad, _ in sums.values())]))
    bars = []
    for n in range(view.bars):
        start = first + view.step * n
        ok, bad, buckets = sums.get(start, (0, 0, [0] * BUCKETS))
        p50, p95 = percentile(buckets, 0.5), percentile(buckets, 0.95)
        heights = (HEIGHT * ok / top, HEIGHT * bad / top)
        bars.append(Bar(start, ok, bad, p50, p95, n * width, *heights))
    slowest = nice_ceiling(max([1.0, *(b.p95 for b in bars if b.p95 is not None)]))
    label_at = (0, view.bars // 2, view.bars - 1)
    return Chart(
        view=view,
        bars=bars,
        bar_width=width,
        count_ticks=[(HEIGHT - HEIGHT * f, top * f) for f in (0, 0.5, 1)],
        latency_ticks=[(HEIGHT - HEIGHT * f, slowest * f) for f in (0, 0.5, 1)],
        labels=[(bars[i].x, bars[i].starts_at.strftime(LABELS[view.name])) for i in label_at],
        rate_points=_points(bars, [b.rate for b in bars], 100, width),
        p50_points=_points(bars, [b.p50 for b in bars], slowest, width),
        p95_points=_points(bars, [b.p95 for b in bars], slowest, width),
        succeeded=sum(b.succeeded for b in bars),
        failed=sum(b.failed for b in bars),
    )
