"""The ledger's database: URL defaults, engines and schema migrations.

SQLite is the default, in WAL mode with a busy timeout, in a file beside the
hub's own database; PostgreSQL (``postgresql+psycopg://...``) for hubs that
outgrow one file. The schema is created and upgraded by the Alembic
migrations shipped in ``hubext/usage/migrations`` (:func:`upgrade_to_head`);
no ``alembic.ini`` is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from .model import VERSION_TABLE

#: File name of the default SQLite ledger.
DEFAULT_FILENAME = "hubext-usage.sqlite"

#: How long a SQLite writer waits for a lock held by a reader (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 10_000

#: How long a PostgreSQL statement waits for a lock (milliseconds).
PG_LOCK_TIMEOUT_MS = 30_000

MIGRATIONS = Path(__file__).with_name("migrations")


def default_db_url(hub_db_url: str) -> str:
    """The ledger's URL when none is configured, from the hub's ``db_url``.

    Beside the hub's SQLite file (``sqlite:////srv/jupyterhub/jupyterhub.sqlite``
    gives ``sqlite:////srv/jupyterhub/hubext-usage.sqlite``; a relative path stays
    relative to the hub's working directory). When the hub's database is not a
    SQLite file (PostgreSQL, MySQL, in memory), a file in the hub's working
    directory, where JupyterHub keeps its own by default.
    """
    url = make_url(hub_db_url)
    database = url.database if url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return f"sqlite:///{DEFAULT_FILENAME}"
    directory = os.path.dirname(database)
    path = os.path.join(directory, DEFAULT_FILENAME) if directory else DEFAULT_FILENAME
    return f"sqlite:///{path}"


def redact(url: str | URL) -> str:
    """``url`` as it may be logged: its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def password_of(url: str | URL) -> str | None:
    """The password in ``url`` (to scrub it from error messages), if any."""
    try:
        return make_url(url).password or None
    except Exception:
        return None


def make_engine(db_url: str | URL, *, connect_timeout: float | None = 10) -> Engine:
    """An engine for the ledger at ``db_url``.

    SQLite connections are put in WAL mode (the hub writes while a report
    reads) with a busy timeout; PostgreSQL connections are checked before use
    (``pool_pre_ping``, a connection broken by a server restart is replaced),
    give up connecting after ``connect_timeout`` seconds and waiting for a
    lock after 30 s; a plain
    ``postgresql://`` URL uses psycopg 3.
    """
    url = make_url(db_url)
    if url.drivername == "postgresql":
        # psycopg 3 (the ``postgresql`` extra), not SQLAlchemy's default psycopg2
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    connect_args = {}
    if url.get_backend_name() == "postgresql":
        if connect_timeout is not None:
            connect_args["connect_timeout"] = max(1, round(connect_timeout))
        # a write stuck behind another client's lock fails and is retried
        # instead of holding the writer forever
        connect_args["options"] = f"-c lock_timeout={PG_LOCK_TIMEOUT_MS}"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_on_connect(dbapi_connection, connection_record):
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # WAL makes NORMAL durable across application crashes (not power loss)
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


class UnknownSchema(RuntimeError):
    """The ledger's schema is at a revision this hubext does not ship."""


def head_revision() -> str:
    """The newest revision of the ledger's schema shipped with this hubext."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _revision_of(connection) -> str | None:
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    )
    return context.get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision the database at ``engine`` is at (None: no ledger yet)."""
    with engine.connect() as connection:
        return _revision_of(connection)


def upgrade_to_head(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the ledger's schema (run when the hub starts).

    A ledger written by a newer hubext (a revision this one does not ship,
    after a downgrade) raises :class:`UnknownSchema` saying so, and is left
    as it is. ``revision`` is for tests that build an older schema.
    """
    config = _alembic_config()
    known = {
        script.revision
        for script in ScriptDirectory.from_config(config).walk_revisions()
    }
    with engine.begin() as connection:
        current = _revision_of(connection)
        if current is not None and current not in known:
            raise UnknownSchema(
                f"the ledger's schema is at revision {current!r}, which this "
                f"hubext does not ship (its newest is {head_revision()!r}): a "
                "newer hubext wrote it. Run that version again, or set "
                "UsageLedger.db_url to another database."
            )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
