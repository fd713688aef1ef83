"""The ledger's database: URL defaults, engines and schema migrations.

SQLite is the default, in WAL mode with a busy timeout, in a file beside the
hub's own database; PostgreSQL (``postgresql+psycopg://...``) for hubs that
outgrow one file. The schema is created and upgraded by the Alembic
migrations shipped in ``hubext/usage/migrations`` (:func:`upgrade_to_head`),
recorded in the ledger's own version table; no ``alembic.ini`` is needed.
What hubext's stores share (engines, URLs, migrations) is in
:mod:`hubext.database`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from .. import database

# what the ledger's modules, the services and the tests import from here
from ..database import (
    PG_LOCK_TIMEOUT_MS,
    SQLITE_BUSY_TIMEOUT_MS,
    UnknownSchema,
    make_engine,
    password_of,
    redact,
)
from .model import VERSION_TABLE

#: File name of the default SQLite ledger.
DEFAULT_FILENAME = "hubext-usage.sqlite"

__all__ = [
    "DEFAULT_FILENAME",
    "MIGRATIONS",
    "PG_LOCK_TIMEOUT_MS",
    "SCHEMA",
    "SQLITE_BUSY_TIMEOUT_MS",
    "UnknownSchema",
    "current_revision",
    "default_db_url",
    "head_revision",
    "make_engine",
    "password_of",
    "redact",
    "upgrade_to_head",
]

MIGRATIONS = Path(__file__).with_name("migrations")

#: The ledger's schema: its migrations and its version table.
SCHEMA = database.Schema(
    name="the ledger",
    migrations=MIGRATIONS,
    version_table=VERSION_TABLE,
    setting="UsageLedger.db_url",
)


def default_db_url(hub_db_url: str) -> str:
    """The ledger's URL when none is configured, from the hub's ``db_url``.

    ``hubext-usage.sqlite`` beside the hub's SQLite file
    (:func:`hubext.database.default_db_url`).
    """
    return database.default_db_url(hub_db_url, DEFAULT_FILENAME)


def head_revision() -> str:
    """The newest revision of the ledger's schema shipped with this hubext."""
    return SCHEMA.head_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision the database at ``engine`` is at (None: no ledger yet)."""
    return SCHEMA.current_revision(engine)


def upgrade_to_head(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the ledger's schema (run when the hub starts).

    A ledger written by a newer hubext raises :class:`UnknownSchema` naming
    both revisions, and is left as it is (:meth:`hubext.database.Schema.upgrade`).
    """
    SCHEMA.upgrade(engine, revision)
