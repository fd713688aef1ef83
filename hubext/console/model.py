"""The delegated state's schema: one document per community, and the audit log.

- ``hubext_delegated``: per community (its slug), the document its admins
  stored (JSON), its ``version`` (1 at the first change, one more at each),
  when and by whom it was last changed;
- ``hubext_audit``: every change and every event recorded (refused
  attempts, invitations redeemed ...), in order (``seq`` 1, 2, 3 ...), each
  row chained to the one before by its hash (:mod:`hubext.console.chain`).

Timestamps are aware UTC ``datetime`` objects, stored without a zone
(:class:`~hubext.database.UTCDateTime`). The tables are prefixed: a
PostgreSQL database may hold them beside the hub's own tables and the usage
ledger's. This module does no I/O.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from ..database import UTCDateTime
from ..slugs import COMMUNITY_SLUG_MAX_LENGTH

DELEGATED_TABLE = "hubext_delegated"
AUDIT_TABLE = "hubext_audit"

#: Alembic's version table for the delegated state (not ``alembic_version``,
#: JupyterHub's, nor the ledger's ``hubext_usage_alembic_version``).
VERSION_TABLE = "hubext_state_alembic_version"

#: Longest actor (a hub username or a service name) and action.
ACTOR_MAX_LENGTH = 255
ACTION_MAX_LENGTH = 64
#: ``user`` or ``service``
ACTOR_KINDS = ("user", "service")

metadata = MetaData()

delegated = Table(
    DELEGATED_TABLE,
    metadata,
    Column("community", String(COMMUNITY_SLUG_MAX_LENGTH), primary_key=True),
    # a JSON object: what the community's admins stored
    Column("document", JSON, nullable=False),
    # 1 at the first change, one more at each
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(ACTOR_MAX_LENGTH), nullable=False),
)

audit = Table(
    AUDIT_TABLE,
    metadata,
    # 1, 2, 3 ... given by the writer that holds the log's lock: no gap
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(ACTOR_MAX_LENGTH), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    # None: an event of no community
    Column("community", String(COMMUNITY_SLUG_MAX_LENGTH), nullable=True),
    Column("action", String(ACTION_MAX_LENGTH), nullable=False),
    # the version a change wrote; None for a row that changed no document
    Column("version", Integer, nullable=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # a community's log, in order
    Index("ix_hubext_audit_community_seq", "community", "seq"),
    Index("ix_hubext_audit_at", "at"),
)
