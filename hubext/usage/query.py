"""Reading the ledger for a report.

Two ways, equal by test: :func:`overlapping_spans` reads the sessions that
overlap a window for the pure :func:`~hubext.usage.report.build_report` (the
definition of a report); :func:`aggregate_report` asks the database to clip
and add up, returning one row per group and community, which is what
``hubext usage report`` uses (a year of 2 million sessions is too much to read
row by row). Times are compared as whole microseconds since the epoch, so the
server time is exact in both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Engine,
    Float,
    and_,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
    union_all,
)

from ..limits import UNITS
from ..prices import UnitPrices, cost
from .model import sessions
from .report import NO_PROFILE, Report, Span, Usage

_COLUMNS = (
    sessions.c.username,
    sessions.c.community,
    sessions.c.profile,
    sessions.c.started_at,
    sessions.c.last_seen_at,
    sessions.c.stopped_at,
    sessions.c.cpu_request,
    sessions.c.mem_request,
    sessions.c.gpus,
    sessions.c.cpu_limit,
    sessions.c.mem_limit,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _window_filter(start: datetime, end: datetime):
    """Both halves of "started before the end and not stopped before the start".

    Two conditions without OR, so that each uses the ``(stopped_at,
    started_at)`` index; the rows are clipped afterwards.
    """
    t = sessions.c
    return (
        and_(t.stopped_at >= start, t.started_at < end),
        and_(t.stopped_at.is_(None), t.started_at < end),
    )


def overlapping_spans(
    engine: Engine, start: datetime, end: datetime, where=None
) -> Iterator[Span]:
    """The sessions started before ``end`` and not stopped before ``start``
    (and meeting ``where``, an optional condition on the sessions)."""
    query = union_all(
        *(
            select(*_COLUMNS).where(half if where is None else and_(half, where))
            for half in _window_filter(start, end)
        )
    )
    with engine.connect() as connection:
        for row in connection.execute(query):
            yield Span(*row)


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _epoch_us(column, dialect: str):
    """``column`` (a UTC timestamp) as integer microseconds since the epoch."""
    if dialect == "sqlite":
        # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'; the whole seconds alone
        # (strftime rounds a fraction to the millisecond: .9995 s is 1 s)
        seconds = cast(func.strftime("%s", func.substr(column, 1, 19)), BigInteger)
        return seconds * 1_000_000 + cast(func.substr(column, 21, 6), BigInteger)
    return cast(extract("epoch", column) * 1_000_000, BigInteger)


def _counted(request, limit):
    """:func:`~hubext.usage.model.counted` in SQL: the request, or the
    limit when there is no request (NULL or 0), or 0."""
    return func.coalesce(func.nullif(request, 0), limit, 0)


def _least(a, b, dialect: str):
    # each argument evaluated once (a CASE would repeat it)
    return func.min(a, b) if dialect == "sqlite" else func.least(a, b)


def _greatest(a, b, dialect: str):
    return func.max(a, b) if dialect == "sqlite" else func.greatest(a, b)


def aggregate_report(
    engine: Engine,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    by: str = "community",
    open_until: str = "now",
    prices: Mapping[str, UnitPrices] | None = None,
    where=None,
) -> Report:
    """The same report as :func:`~hubext.usage.report.build_report`, added up
    by the database.

    ``where``: an optional condition on :data:`~hubext.usage.model.sessions`
    that a session must meet to count (the usage page's access filter).
    """
    dialect = engine.dialect.name
    lo, hi, now_us = literal(_us(start)), literal(_us(end)), literal(_us(now))
    t = sessions.c
    started = _epoch_us(t.started_at, dialect)
    stopped = _epoch_us(t.stopped_at, dialect)
    if open_until == "last-seen":
        open_end = _epoch_us(t.last_seen_at, dialect)
    else:
        open_end = _greatest(now_us, started, dialect)
    key = {"community": t.community, "user": t.username, "profile": t.profile}[by]
    parts = [
        select(
            key.label("key"),
            t.community.label("community"),
            started.label("s"),
            (stopped if half == 0 else open_end).label("e"),
            _counted(t.cpu_request, t.cpu_limit).label("cpu"),
            cast(_counted(t.mem_request, t.mem_limit), Float).label("mem"),
            t.gpus.label("gpus"),
        ).where(condition if where is None else and_(condition, where))
        for half, condition in enumerate(_window_filter(start, end))
    ]
    # materialized: each timestamp is converted once, not once per use
    spans = union_all(*parts).cte("spans").prefix_with("MATERIALIZED")
    s, e = spans.c.s, spans.c.e
    inside = _greatest(
        literal(0),
        _least(e, hi, dialect) - _greatest(s, lo, dialect),
        dialect,
    )
    query = (
        select(
            spans.c.key,
            spans.c.community,
            func.count(),
            func.sum(inside),
            func.sum(spans.c.cpu * inside),
            func.sum(spans.c.mem * inside),
            func.sum(spans.c.gpus * inside),
        )
        # a session of no length (a failed start) counts where it started
        .where(and_(s < hi, or_(e > lo, s >= lo)))
        .group_by(spans.c.key, spans.c.community)
        .order_by(spans.c.key, spans.c.community)
    )
    report = Report(
        by=by,
        start=start,
        end=end,
        now=now,
        open_until=open_until,
        priced=prices is not None,
    )
    with engine.connect() as connection:
        for key_value, community, n, us, cpu_us, mem_us, gpu_us in connection.execute(
            query
        ):
            if not n:
                continue
            usage = Usage(
                sessions=int(n),
                server_us=int(us),
                cpu_seconds=float(cpu_us) / 1e6,
                gib_seconds=float(mem_us) / 1e6 / 2**30,
                gpu_seconds=float(gpu_us) / 1e6,
            )
            if prices is not None:
                usage.cost = cost(
                    prices,
                    community,
                    (usage.server_hours, usage.cpu_hours, usage.gib_hours,
                     usage.gpu_hours),
                )  # fmt: skip
                if community not in prices:
                    report.unpriced.add(community)
            label = key_value if key_value is not None else NO_PROFILE
            report.rows.setdefault(label, Usage()).add(usage)
            report.total.add(usage)
    report.rows = dict(sorted(report.rows.items()))
    return report


def budget_usage(
    engine: Engine, community: str, start: datetime, now: datetime
) -> dict[str | None, dict[str, float]]:
    """What was charged to ``community`` from ``start`` to ``now``, in hours.

    ``{None: {unit: hours}, user: {unit: hours}}``: the community's total
    and each user's, for every budget unit; open sessions count up to
    ``now``. The one reading of a budget's usage, for the hub's limits and
    the budget enforcer (:func:`aggregate_report` by user).
    """
    report = aggregate_report(
        engine,
        start=start,
        end=now,
        now=now,
        by="user",
        where=sessions.c.community == community,
    )
    return {
        user: {unit: getattr(usage, unit) for unit in UNITS}
        for user, usage in [(None, report.total), *report.rows.items()]
    }
