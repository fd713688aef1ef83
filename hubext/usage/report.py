"""Usage over a time window, per community, user or profile (pure: no I/O).

For each row: the sessions that overlap the window, their server-hours, and
the CPU-hours, GiB-hours and GPU-hours they used (CPU and memory requests,
or limits where a server has no request: :func:`~hubext.usage.model.counted`,
the rule of the limits too; GPUs), over the part of each session inside the window: a session
crossing an edge of the window counts only its part inside it. An open
session counts up to the report's ``now`` (or up to its ``last_seen_at`` with
``open_until="last-seen"``).

Every session is charged to exactly one community (or the hub-wide account),
so in a report by community the communities' rows plus the hub-wide account's
row equal the total; the total itself is summed from the sessions, not from
the rows. Server time is added up in whole microseconds, exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..prices import UnitPrices, cost
from .model import HUB_ACCOUNT, counted

GROUPINGS = ("community", "user", "profile")
OPEN_UNTIL = ("now", "last-seen")
FORMATS = ("table", "csv", "json")
GIB = 2**30
_US = timedelta(microseconds=1)
NO_PROFILE = "-"


@dataclass(frozen=True)
class Span:
    """What a report needs of one session row."""

    user: str
    community: str
    profile: str | None
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    cpu_request: float | None = None
    mem_request: int | None = None
    gpus: int = 0
    cpu_limit: float | None = None
    mem_limit: int | None = None


@dataclass
class Usage:
    """Usage added up over sessions."""

    sessions: int = 0
    server_us: int = 0  # microseconds, exact
    cpu_seconds: float = 0.0
    gib_seconds: float = 0.0
    gpu_seconds: float = 0.0
    cost: float = 0.0

    @property
    def server_hours(self) -> float:
        return self.server_us / 3_600_000_000

    @property
    def cpu_hours(self) -> float:
        return self.cpu_seconds / 3600

    @property
    def gib_hours(self) -> float:
        return self.gib_seconds / 3600

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600

    def add(self, other: Usage) -> None:
        self.sessions += other.sessions
        self.server_us += other.server_us
        self.cpu_seconds += other.cpu_seconds
        self.gib_seconds += other.gib_seconds
        self.gpu_seconds += other.gpu_seconds
        self.cost += other.cost


@dataclass
class Report:
    by: str
    start: datetime
    end: datetime
    now: datetime
    open_until: str
    priced: bool
    rows: dict[str, Usage] = field(default_factory=dict)
    total: Usage = field(default_factory=Usage)
    #: communities with usage in the window and no prices (priced reports)
    unpriced: set[str] = field(default_factory=set)


def span_end(span: Span, now: datetime, open_until: str = "now") -> datetime:
    """Where a session ends for a report: its stop, or now / its last sighting."""
    if span.stopped_at is not None:
        return span.stopped_at
    return span.last_seen_at if open_until == "last-seen" else max(now, span.started_at)


def clipped(start: datetime, end: datetime, lo: datetime, hi: datetime) -> timedelta:
    """The length of ``[start, end)`` inside ``[lo, hi)`` (never negative)."""
    return max(timedelta(0), min(end, hi) - max(start, lo))


def overlaps(start: datetime, end: datetime, lo: datetime, hi: datetime) -> bool:
    """Whether a session ``[start, end)`` counts in the window ``[lo, hi)``.

    A session of no length (a failed start) counts where it started.
    """
    if start >= hi:
        return False
    return end > lo or start >= lo


def key_of(span: Span, by: str) -> str:
    if by == "community":
        return span.community
    if by == "user":
        return span.user
    return span.profile or NO_PROFILE


def usage_of(
    span: Span,
    lo: datetime,
    hi: datetime,
    now: datetime,
    open_until: str = "now",
    prices: Mapping[str, UnitPrices] | None = None,
) -> Usage:
    """One session's usage inside ``[lo, hi)``."""
    end = span_end(span, now, open_until)
    if not overlaps(span.started_at, end, lo, hi):
        return Usage()
    us = clipped(span.started_at, end, lo, hi) // _US
    seconds = us / 1_000_000
    usage = Usage(
        sessions=1,
        server_us=us,
        cpu_seconds=counted(span.cpu_request, span.cpu_limit) * seconds,
        gib_seconds=counted(span.mem_request, span.mem_limit) / GIB * seconds,
        gpu_seconds=(span.gpus or 0) * seconds,
    )
    if prices is not None:
        usage.cost = cost(
            prices,
            span.community,
            (
                usage.server_hours,
                usage.cpu_hours,
                usage.gib_hours,
                usage.gpu_hours,
            ),
        )
    return usage


def build_report(
    spans: Iterable[Span],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    by: str = "community",
    open_until: str = "now",
    prices: Mapping[str, UnitPrices] | None = None,
) -> Report:
    """Add up ``spans`` over ``[start, end)`` by ``by`` (see :data:`GROUPINGS`)."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    if open_until not in OPEN_UNTIL:
        raise ValueError(f"open_until must be one of {', '.join(OPEN_UNTIL)}")
    if not start < end:
        raise ValueError(f"the window's start {start} is not before its end {end}")
    report = Report(
        by=by,
        start=start,
        end=end,
        now=now,
        open_until=open_until,
        priced=prices is not None,
    )
    for span in spans:
        usage = usage_of(span, start, end, now, open_until, prices)
        if not usage.sessions:
            continue
        report.rows.setdefault(key_of(span, by), Usage()).add(usage)
        report.total.add(usage)
        if prices is not None and span.community not in prices:
            report.unpriced.add(span.community)
    report.rows = dict(sorted(report.rows.items()))
    return report


# -- formats ------------------------------------------------------------------

_COLUMNS = ("sessions", "server_hours", "cpu_hours", "gib_hours", "gpu_hours")


def _columns(report: Report) -> tuple[str, ...]:
    return (*_COLUMNS, "cost") if report.priced else _COLUMNS


def _values(usage: Usage, columns: tuple[str, ...]) -> list:
    return [getattr(usage, c) for c in columns]


def _lines(report: Report) -> list[tuple[str, Usage]]:
    return [*report.rows.items(), ("total", report.total)]


def format_table(report: Report) -> str:
    columns = _columns(report)
    headers = (report.by, *(c.replace("_", "-") for c in columns))
    rows = [
        (
            label,
            *(
                str(v) if c == "sessions" else f"{v:,.2f}"
                for c, v in zip(columns, _values(usage, columns), strict=True)
            ),
        )
        for label, usage in _lines(report)
    ]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0])]
            + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
        ).rstrip()

    out = [
        f"usage from {report.start.isoformat()} to {report.end.isoformat()} "
        f"by {report.by}; open sessions counted up to "
        + (
            f"now ({report.now.isoformat(timespec='seconds')})"
            if report.open_until == "now"
            else "the last time the hub saw them"
        ),
        "",
        line(headers),
        "  ".join("-" * w for w in widths),
    ]
    out += [line(r) for r in rows[:-1]]
    out.append("  ".join("-" * w for w in widths))
    out.append(line(rows[-1]))
    if report.by == "community" and HUB_ACCOUNT in report.rows:
        out.append(f"\n{HUB_ACCOUNT}: the hub-wide account (profiles of no community)")
    return "\n".join(out)


#: What a spreadsheet takes for the start of a formula at the start of a cell
#: (OWASP, "CSV Injection"; NUL and line feed besides, as OWASP's ASVS asks).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
#: A number a spreadsheet reads as a number: never a formula.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_text(text: str) -> str:
    """A text cell a spreadsheet shows as text: one that would start a formula
    (``=2+3@uni``, ``@sum(1+1)``, ``-x``) gets a leading ``'``, which the
    spreadsheet reads as "this is text" and does not show. So does one that
    starts with ``'`` itself: the spreadsheet shows it as it is, and a program
    reading the file gets every text back by removing one leading ``'``."""
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def csv_number(value: float, places: int | None = None) -> str:
    """A number cell: the number as written (a negative number is data, and a
    spreadsheet must be able to add it up); anything that is not a plain
    decimal number (``-inf``) is made text as :func:`csv_text` does."""
    text = str(value) if places is None else f"{value:.{places}f}"
    return text if _PLAIN_NUMBER.fullmatch(text) else csv_text(text)


def _csv_line(cells: Iterable[str]) -> str:
    """One CSV line (RFC 4180): a cell with a comma, a quote or a line break
    (``\\r`` too, which the csv module leaves bare with a ``\\n`` line end)
    is quoted, its quotes doubled."""
    return ",".join(
        '"' + cell.replace('"', '""') + '"'
        if any(c in cell for c in ',"\r\n')
        else cell
        for cell in cells
    )


def format_csv(report: Report) -> str:
    """The report as CSV, safe to open in a spreadsheet.

    The labels (community, user, profile) come from the identity provider
    and the configuration, so each is written with :func:`csv_text`; the
    numbers with :func:`csv_number`.
    """
    columns = _columns(report)
    lines = [_csv_line([report.by, *columns])]
    for label, usage in _lines(report):
        lines.append(
            _csv_line(
                [
                    csv_text(label),
                    *(
                        csv_number(v, None if c == "sessions" else 6)
                        for c, v in zip(columns, _values(usage, columns), strict=True)
                    ),
                ]
            )
        )
    return "\n".join(lines)


def format_json(report: Report) -> str:
    columns = _columns(report)

    def one(usage: Usage) -> dict:
        values = dict(zip(columns, _values(usage, columns), strict=True))
        values["server_seconds"] = usage.server_us / 1_000_000
        return values

    return json.dumps(
        {
            "from": report.start.isoformat(),
            "to": report.end.isoformat(),
            "by": report.by,
            "open_until": report.open_until,
            "now": report.now.isoformat(),
            "hub_account": HUB_ACCOUNT,
            "rows": [{report.by: k, **one(u)} for k, u in report.rows.items()],
            "total": one(report.total),
        },
        indent=2,
    )


FORMATTERS = {"table": format_table, "csv": format_csv, "json": format_json}
