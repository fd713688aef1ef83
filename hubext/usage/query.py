"""Reading the ledger for a report: the sessions that overlap a window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Engine, and_, or_, select

from .model import sessions
from .report import Span

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
)


def overlapping_spans(engine: Engine, start: datetime, end: datetime) -> Iterator[Span]:
    """The sessions started before ``end`` and not stopped before ``start``.

    Uses the ``(stopped_at, started_at)`` index: open sessions and those that
    stopped at or after ``start``; :func:`~hubext.usage.report.build_report`
    clips them.
    """
    t = sessions.c
    query = select(*_COLUMNS).where(
        and_(
            t.started_at < end,
            or_(t.stopped_at.is_(None), t.stopped_at >= start),
        )
    )
    with engine.connect() as connection:
        for row in connection.execute(query):
            yield Span(*row)
