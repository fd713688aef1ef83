"""What hubext's own databases share: URLs, engines, a schema's migrations.

hubext keeps two databases of its own beside the hub's: the usage ledger
(:mod:`hubext.usage.store`) and the communities' delegated state and audit
log (:mod:`hubext.console.store`). Each is SQLite by default, in WAL mode
with a busy timeout, in a file beside the hub's own database, or PostgreSQL
(``postgresql+psycopg://...``) for hubs that outgrow one file. Each has its
schema created and upgraded by Alembic migrations shipped in its package,
recorded in a version table of its own (never JupyterHub's
``alembic_version``), so that both may share one PostgreSQL database with
the hub's tables: a :class:`Schema`. No ``alembic.ini`` is needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, Engine, TypeDecorator, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import NoSuchModuleError

#: How long a SQLite writer waits for a lock held by a reader (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 10_000

#: How long a PostgreSQL statement waits for a lock (milliseconds).
PG_LOCK_TIMEOUT_MS = 30_000

#: The databases hubext's stores run on (SQLAlchemy backend names).
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def default_db_url(hub_db_url: str, filename: str) -> str:
    """A store's URL when none is configured: ``filename`` beside the hub's database.

    Beside the hub's SQLite file (``sqlite:////srv/jupyterhub/jupyterhub.sqlite``
    and ``hubext-usage.sqlite`` give ``sqlite:////srv/jupyterhub/hubext-usage.sqlite``;
    a relative path stays relative to the hub's working directory). When the
    hub's database is not a SQLite file (PostgreSQL, MySQL, in memory), a file
    in the hub's working directory, where JupyterHub keeps its own by default.
    """
    url = make_url(hub_db_url)
    database = url.database if url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return f"sqlite:///{filename}"
    directory = os.path.dirname(database)
    path = os.path.join(directory, filename) if directory else filename
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


def unsupported_url_problem(value: str) -> str | None:
    """Why ``value`` is not a database URL a store runs on, or None.

    The answer never shows the value (it may hold a password), only the
    driver's name.
    """
    try:
        url = make_url(value)
    except Exception:
        return (
            "not a database URL; expected e.g. "
            "sqlite:////srv/jupyterhub/<file>.sqlite or "
            "postgresql://user:password@host/database"
        )
    if url.get_backend_name() not in SUPPORTED_BACKENDS:
        return f"unsupported database {url.drivername!r}; supported: sqlite, postgresql"
    return None


def make_engine(db_url: str | URL, *, connect_timeout: float | None = 10) -> Engine:
    """An engine for one of hubext's stores at ``db_url``.

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


@contextmanager
def exclusive_write(engine: Engine, table: str) -> Iterator[Connection]:
    """A transaction that no other writer of ``table`` runs beside, committed at the end.

    Readers are never blocked. SQLite: ``BEGIN IMMEDIATE``, the database's
    write lock taken before the first read, so that what the transaction
    reads cannot change before it writes (other writers wait, up to the
    busy timeout). PostgreSQL: ``LOCK TABLE ... IN EXCLUSIVE MODE``, which
    waits for and then blocks every other writer of ``table`` (up to the
    lock timeout) and lets plain reads through. An exception rolls it back.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # the driver's own implicit BEGIN is deferred: a deferred
            # transaction that reads, then writes, can fail with
            # SQLITE_BUSY without waiting when another writer went first
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


class UTCDateTime(TypeDecorator):
    """An aware UTC ``datetime``, stored as a naive UTC timestamp.

    SQLite has no time zones; a naive value is refused (it would be read as
    UTC whatever it meant), an aware one in another zone is converted.
    """

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


class UnknownSchema(RuntimeError):
    """A store's schema is at a revision this hubext does not ship."""


@dataclass(frozen=True)
class Schema:
    """One store's schema: its migrations and where their revision is recorded."""

    #: what it is, for messages ("the ledger", "the delegated state")
    name: str
    #: the Alembic script directory (with its ``env.py``)
    migrations: Path
    #: Alembic's version table for this store (not ``alembic_version``)
    version_table: str
    #: the setting that chooses the database, for messages
    setting: str

    def _config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.migrations))
        return config

    def head_revision(self) -> str:
        """The newest revision of the schema shipped with this hubext."""
        return ScriptDirectory.from_config(self._config()).get_current_head()

    def revision_of(self, connection: Connection) -> str | None:
        """The revision the database of ``connection`` is at (None: no schema)."""
        context = MigrationContext.configure(
            connection, opts={"version_table": self.version_table}
        )
        return context.get_current_revision()

    def current_revision(self, engine: Engine) -> str | None:
        """The revision the database at ``engine`` is at (None: no schema yet)."""
        with engine.connect() as connection:
            return self.revision_of(connection)

    def upgrade(self, engine: Engine, revision: str = "head") -> None:
        """Create or upgrade the schema (run when the hub starts).

        A database written by a newer hubext (a revision this one does not
        ship, after a downgrade) raises :class:`UnknownSchema` naming both
        revisions, and is left as it is. ``revision`` is for tests that
        build an older schema.
        """
        config = self._config()
        known = {
            script.revision
            for script in ScriptDirectory.from_config(config).walk_revisions()
        }
        with engine.begin() as connection:
            current = self.revision_of(connection)
            if current is not None and current not in known:
                raise UnknownSchema(
                    f"{self.name}'s schema is at revision {current!r}, which this "
                    f"hubext does not ship (its newest is {self.head_revision()!r}): "
                    "a newer hubext wrote it. Run that version again, or set "
                    f"{self.setting} to another database."
                )
            config.attributes["connection"] = connection
            command.upgrade(config, revision)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction whose reads all see the database at one moment.

    SQLite: an explicit ``BEGIN`` (the driver runs each read on its own),
    whose WAL snapshot is taken at the first read and kept to the end;
    PostgreSQL: ``REPEATABLE READ``. Writers are not blocked.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")
        else:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield connection
        finally:
            connection.rollback()


# -- for the commands that read a store (``hubext usage report``, ``hubext audit``)


class BadDatabaseURL(ValueError):
    """``--db-url`` cannot name a store (the commands' exit status 2)."""


class NoDatabaseFile(LookupError):
    """``--db-url`` names a SQLite file that does not exist (exit status 1)."""


def engine_to_read(db_url: str, *, example_file: str, what: str) -> Engine:
    """An engine for a command that reads a store and never creates one.

    ``example_file``: the store's file name, for the messages
    (``hubext-usage.sqlite``); ``what``: what is read (``usage ledger``).
    Raises :class:`BadDatabaseURL` for a URL that cannot be parsed (not
    shown: it may hold a password), an unsupported database or a driver not
    installed, :class:`NoDatabaseFile` for a SQLite file that does not exist
    (SQLite would create it).
    """
    try:
        url = make_url(db_url)
    except Exception:
        raise BadDatabaseURL(
            "--db-url: not a database URL (not shown: it may hold a password); "
            f"expected e.g. sqlite:////path/{example_file} or "
            "postgresql+psycopg://user:password@host/database"
        ) from None
    unsupported = BadDatabaseURL(
        f"--db-url: unsupported database {url.drivername!r}; "
        "use sqlite:///... or postgresql+psycopg://..."
    )
    if url.get_backend_name() not in SUPPORTED_BACKENDS:
        raise unsupported
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:":
            raise BadDatabaseURL("--db-url: a SQLite URL needs a file path")
        if not os.path.isfile(path):
            raise NoDatabaseFile(f"no {what} at {path}: no such file")
    try:
        return make_engine(db_url, connect_timeout=5)
    except NoSuchModuleError:
        raise unsupported from None
    except ModuleNotFoundError as e:
        raise BadDatabaseURL(
            f"--db-url: the driver {e.name!r} is not installed "
            "(for PostgreSQL: pip install 'hubext[postgresql]')"
        ) from None


def database_error(error: Exception, db_url: str) -> str:
    """A database error's type and first line, with the URL's password hidden."""
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip()
    line = text.splitlines()[0] if text else ""
    secret = password_of(db_url)
    if secret:
        line = line.replace(secret, "***")
    return f"{type(cause).__name__}: {line}"
