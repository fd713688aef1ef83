"""The usage ledger's schema: one row per server session.

A *session* is one run of one server (a user's default server or a named
one), from the moment its spawner starts it to the moment it ends, whatever
ends it. The row is written when the server starts, its ``last_seen_at`` moves
forward each time the hub sees the server alive, and it is closed exactly once
with a ``stopped_at`` and an ``end_reason``.

The community charged is fixed when the session starts and never changes
afterwards. Usage of a profile that belongs to no community (hub admins) is
charged to the hub-wide account, stored as :data:`HUB_ACCOUNT`: a value that is
never a community slug (slugs are lowercase letters, digits and ``-``), so the
column is never NULL and a report groups it like any community.

Timestamps are UTC. They are stored without a zone (SQLite has none) and read
back as aware ``datetime`` objects in UTC (:class:`UTCDateTime`); an aware
value in another zone is converted, a naive one is refused.

This module does no I/O.
"""

from __future__ import annotations

import contextvars
import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)

# the ledger's account of servers no community pays for (re-exported)
from ..slugs import HUB_ACCOUNT as HUB_ACCOUNT

#: Name of the sessions table (prefixed: a PostgreSQL ledger may share a
#: database with the hub's own tables).
SESSIONS_TABLE = "hubext_usage_sessions"

#: Alembic's version table for the ledger (not ``alembic_version``, which is
#: JupyterHub's own when the ledger shares the hub's database).
VERSION_TABLE = "hubext_usage_alembic_version"


class EndReason(enum.StrEnum):
    """How a session ended: the closed list of the ledger's ``end_reason``.

    Who stopped a server is told apart in :mod:`hubext.spawners.stops`.
    """

    #: its user stopped it (REST or the home page)
    STOPPED_BY_USER = "stopped_by_user"
    #: a hub admin, a community admin, a service other than those below, or
    #: the hub for a member who left every community stopped it
    STOPPED_BY_ADMIN = "stopped_by_admin"
    #: an idle culler stopped it (hubext's, or c.UsageLedger.culler_services)
    CULLED = "culled"
    #: the budget enforcer stopped it: its community's budget was spent
    STOPPED_FOR_BUDGET = "stopped_for_budget"
    #: the spawner's start failed or timed out; the session lasted until then
    FAILED_TO_START = "failed_to_start"
    #: the server died on its own and the hub found it by polling
    DIED = "died"
    #: the hub stopped or crashed while it ran: closed at its last_seen_at
    HUB_RESTART = "hub_restart"


#: Set by code that stops servers on the hub's behalf (hubext's authenticator
#: for a member who left every community) to the end reason the spawners
#: record for the stops it begins in that context.
stop_reason: contextvars.ContextVar[EndReason | None] = contextvars.ContextVar(
    "hubext_usage_stop_reason", default=None
)


class UTCDateTime(TypeDecorator):
    """An aware UTC ``datetime``, stored as a naive UTC timestamp."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC (the ledger's default clock)."""
    return datetime.now(UTC)


def counted(request, limit):
    """What a server uses of a resource (CPU cores or memory bytes).

    Its request, or its limit when it has no request: Kubernetes gives a
    container with a limit and no request the limit as its request, and
    KubeSpawner sets no request for a guarantee of 0 or None. The one rule
    for the decision of limits, the ledger's reports, the budgets, the
    metrics and the usage page.
    """
    return request or limit or 0


@dataclass(frozen=True)
class Resources:
    """What a server requested, after every override (None: not set)."""

    cpu_request: float | None = None  # cores
    cpu_limit: float | None = None  # cores
    mem_request: int | None = None  # bytes
    mem_limit: int | None = None  # bytes
    gpus: int = 0

    @property
    def cpu(self) -> float:
        """Cores the server uses (:func:`~hubext.usage.model.counted`)."""
        return float(counted(self.cpu_request, self.cpu_limit))

    @property
    def memory(self) -> int:
        """Bytes the server uses (:func:`~hubext.usage.model.counted`)."""
        return int(counted(self.mem_request, self.mem_limit))


metadata = MetaData()

sessions = Table(
    SESSIONS_TABLE,
    metadata,
    # A UUID made by the ledger when the server starts (the session key): the
    # caller gets it at once, before anything reaches the database.
    Column("id", String(36), primary_key=True),
    Column("username", String(255), nullable=False),
    # "" for the user's default server, as JupyterHub names it
    Column("server_name", String(255), nullable=False, default=""),
    # a community slug, or HUB_ACCOUNT
    Column("community", String(63), nullable=False),
    Column("profile", String(255), nullable=True),
    # the validated choices of the profile's options, {option: choice}
    Column("choices", JSON, nullable=True),
    # the resources actually requested, after every override
    Column("cpu_request", Float, nullable=True),  # cores
    Column("cpu_limit", Float, nullable=True),  # cores
    Column("mem_request", BigInteger, nullable=True),  # bytes
    Column("mem_limit", BigInteger, nullable=True),  # bytes
    Column("gpus", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime, nullable=False),
    # the last moment the hub saw the server alive (started_at at first)
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime, nullable=True),
    Column("end_reason", String(32), nullable=True),
    # reports by time window
    Index("ix_hubext_usage_sessions_started_at", "started_at"),
    # open sessions (stopped_at IS NULL) and sessions ending after a window's
    # start: added by revision 0002
    Index("ix_hubext_usage_sessions_stopped_started", "stopped_at", "started_at"),
)
