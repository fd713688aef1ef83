"""Usage over time for the usage page: time buckets and SVG bar charts (pure).

The page shows, for each unit (server-, CPU-, GiB-, GPU-hours), one chart of
bars per day or per week, each bar stacked by community. The charts are
drawn here as SVG, on the server: the page needs no script and nothing from
the internet. Every bar segment has a ``<title>`` (the browser shows it on
hover) with its community, period and value.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html import escape

from .report import Span, Usage, build_report, span_end

STEPS = ("day", "week")

#: (attribute of Usage, title of the chart)
UNITS = (
    ("server_hours", "Server-hours"),
    ("cpu_hours", "CPU-hours"),
    ("gib_hours", "GiB-hours (memory)"),
    ("gpu_hours", "GPU-hours"),
)

#: Colour-blind-safe colours (Okabe-Ito), one per community in order.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)


@dataclass(frozen=True)
class Bucket:
    """``[start, end)`` in whole days (UTC), labelled by its first day."""

    start: date
    end: date

    @property
    def label(self) -> str:
        return self.start.isoformat()

    @property
    def window(self) -> tuple[datetime, datetime]:
        return (
            datetime.combine(self.start, time(), tzinfo=UTC),
            datetime.combine(self.end, time(), tzinfo=UTC),
        )


def buckets(first: date, last: date, step: str) -> list[Bucket]:
    """Days or weeks (Monday to Sunday, clipped) from ``first`` to ``last``
    inclusive."""
    if step not in STEPS:
        raise ValueError(f"step must be one of {', '.join(STEPS)}, not {step!r}")
    out = []
    day = first
    end_of_window = last + timedelta(days=1)
    while day < end_of_window:
        length = 1 if step == "day" else 7 - day.weekday()
        # clipped before adding: the Monday after the window may not be a date
        end = day + timedelta(days=min(length, (end_of_window - day).days))
        out.append(Bucket(day, end))
        day = end
    return out


def usage_per_bucket(
    spans: Iterable[Span], periods: Sequence[Bucket], now: datetime
) -> dict[str, list[Usage]]:
    """``{community: [Usage of each bucket]}``: each bucket is the report of
    its window (:func:`~hubext.usage.report.build_report`, by community)
    over the sessions that overlap it.

    Each session is handed only to the buckets it overlaps (found by
    bisection), so the work is in proportion to the sessions, not to
    sessions times buckets.
    """
    starts = [b.window[0] for b in periods]
    per_bucket: list[list[Span]] = [[] for _ in periods]
    for span in spans:
        first = max(bisect_right(starts, span.started_at) - 1, 0)
        # a session of no length counts in the bucket it started in
        end = max(span_end(span, now), span.started_at)
        last = max(bisect_right(starts, end) - 1, first)
        for i in range(first, min(last, len(periods) - 1) + 1):
            per_bucket[i].append(span)
    series: dict[str, list[Usage]] = {}
    for i, bucket in enumerate(periods):
        lo, hi = bucket.window
        report = build_report(per_bucket[i], start=lo, end=hi, now=now)
        for community, usage in report.rows.items():
            series.setdefault(community, [Usage() for _ in periods])[i] = usage
    return dict(sorted(series.items()))


def colours(communities: Sequence[str]) -> dict[str, str]:
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(communities)}


def _nice_top(value: float) -> float:
    """A round number at or above ``value`` for the top of the axis."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    # quarters of these are round too (the axis has 4 steps)
    for factor in (1, 2, 4, 5, 8, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover (the loop always returns)


def _number(value: float) -> str:
    text = f"{value:,.3g}" if value < 1 else f"{value:,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def bar_chart(
    title: str,
    unit: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[Usage]],
    colour_of: Mapping[str, str],
    names: Mapping[str, str] | None = None,
    *,
    width: int = 480,
    height: int = 200,
) -> str:
    """One SVG chart: a bar per label, stacked by the keys of ``series``
    (each a sequence of :class:`Usage`, one per label), of ``unit`` (an
    attribute of :class:`Usage`)."""
    names = names or {}
    left, right, top, bottom = 52, 8, 24, 32
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [
        sum(getattr(values[i], unit) for values in series.values())
        for i in range(len(labels))
    ]
    y_top = _nice_top(max(totals, default=0.0))
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot * 0.8, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart" '
        f'data-unit="{escape(unit)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for i in range(5):  # gridlines and y labels
        value = y_top * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            'class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'class="axis">{_number(value)}</text>'
        )
    every = max(1, -(-len(labels) // 12))  # at most 12 date labels
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for key, values in series.items():
            value = getattr(values[i], unit)
            if value <= 0:
                continue
            h = plot_h * value / y_top
            y -= h
            name = names.get(key, key)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour_of[key]}" '
                f'data-community="{escape(key)}" data-period="{escape(label)}" '
                f'data-value="{value:.6f}">'
                f"<title>{escape(name)}, {escape(label)}: {_number(value)} "
                f"{escape(title)}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - 14}" '
                f'text-anchor="middle" class="axis">{escape(label[5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
