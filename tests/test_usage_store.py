"""The usage ledger's storage: default URL, SQLite settings, Alembic migrations
from an empty database and from the previous schema (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from traitlets import TraitError
from traitlets.config import Config

from hubext.usage import UsageLedger, store
from hubext.usage.model import SESSIONS_TABLE, VERSION_TABLE, metadata, sessions

from .usage_pg import db_url, postgres  # noqa: F401 (fixtures)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("hub_db_url", "expected"),
    [
        pytest.param(
            "sqlite:////srv/jupyterhub/jupyterhub.sqlite",
            "sqlite:////srv/jupyterhub/hubext-usage.sqlite",
            id="absolute-sqlite",
        ),
        pytest.param(
            "sqlite:///jupyterhub.sqlite",
            "sqlite:///hubext-usage.sqlite",
            id="jupyterhub-default-relative",
        ),
        pytest.param(
            "sqlite:///state/hub.db",
            "sqlite:///state/hubext-usage.sqlite",
            id="relative-subdirectory",
        ),
        pytest.param(
            "postgresql://hub:secret@db/jupyterhub",
            "sqlite:///hubext-usage.sqlite",
            id="postgresql-hub-file-in-working-directory",
        ),
        pytest.param("sqlite://", "sqlite:///hubext-usage.sqlite", id="in-memory"),
    ],
)
def test_default_db_url_is_beside_the_hubs_database(hub_db_url, expected):
    assert store.default_db_url(hub_db_url) == expected


def test_redact_hides_the_password():
    url = "postgresql+psycopg://hub:s3cr3t-pw@db.example:5432/usage"
    assert store.redact(url) == "postgresql+psycopg://hub:***@db.example:5432/usage"
    assert store.password_of(url) == "s3cr3t-pw"
    assert "s3cr3t" not in store.redact("not a url s3cr3t")


def test_sqlite_engine_uses_wal_and_a_busy_timeout(tmp_path):
    engine = store.make_engine(f"sqlite:///{tmp_path}/u.sqlite")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert (
            connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            == store.SQLITE_BUSY_TIMEOUT_MS
        )
    engine.dispose()


def test_plain_postgresql_url_uses_psycopg3(postgres):  # noqa: F811
    engine = store.make_engine(postgres.url().replace("+psycopg", ""))
    assert engine.dialect.driver == "psycopg"
    with engine.connect() as connection:
        assert connection.execute(text("select 1")).scalar() == 1
    engine.dispose()


def _schema_differences(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        )
        return compare_metadata(context, metadata)


def test_upgrade_from_an_empty_database(db_url):  # noqa: F811
    engine = store.make_engine(db_url)
    assert store.current_revision(engine) is None
    store.upgrade_to_head(engine)
    assert store.current_revision(engine) == store.head_revision() == "0002"
    indexes = {i["name"] for i in inspect(engine).get_indexes(SESSIONS_TABLE)}
    assert indexes == {
        "ix_hubext_usage_sessions_started_at",
        "ix_hubext_usage_sessions_stopped_started",
    }
    # the migrations build exactly the schema the code uses
    assert _schema_differences(engine) == []
    # running it again at every start-up changes nothing
    store.upgrade_to_head(engine)
    assert store.current_revision(engine) == "0002"
    engine.dispose()


def test_a_ledger_written_by_a_newer_hubext_is_left_alone(db_url):  # noqa: F811
    # After a downgrade: a clear refusal naming both revisions, nothing changed.
    engine = store.make_engine(db_url)
    store.upgrade_to_head(engine)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    with pytest.raises(store.UnknownSchema) as e:
        store.upgrade_to_head(engine)
    assert "revision '0099'" in str(e.value)
    assert f"its newest is {store.head_revision()!r}" in str(e.value)
    assert store.current_revision(engine) == "0099"
    engine.dispose()


def test_upgrade_from_the_previous_schema_keeps_the_rows(db_url):  # noqa: F811
    engine = store.make_engine(db_url)
    store.upgrade_to_head(engine, "0001")
    assert store.current_revision(engine) == "0001"
    rows = [
        {
            "id": f"00000000-0000-0000-0000-00000000000{i}",
            "username": f"user{i}",
            "server_name": "",
            "community": "ocean-lab" if i % 2 else "_hub",
            "profile": "gpu",
            "choices": {"image": "pytorch", "n": i},
            "cpu_request": 0.5 * i,
            "cpu_limit": 2.0,
            "mem_request": i * 2**30,
            "mem_limit": 8 * 2**30,
            "gpus": i % 2,
            "started_at": T0,
            "last_seen_at": T0,
            "stopped_at": None if i == 3 else T0,
            "end_reason": None if i == 3 else "culled",
        }
        for i in range(1, 5)
    ]
    with engine.begin() as connection:
        connection.execute(sessions.insert(), rows)
    store.upgrade_to_head(engine)
    assert store.current_revision(engine) == "0002"
    with engine.connect() as connection:
        kept = [
            dict(r._mapping)
            for r in connection.execute(select(sessions).order_by(sessions.c.id))
        ]
    assert kept == rows
    assert _schema_differences(engine) == []
    engine.dispose()


def test_ledger_tables_live_beside_jupyterhubs_own(db_url):  # noqa: F811
    # A PostgreSQL ledger may share the hub's database: JupyterHub's
    # alembic_version must not be touched.
    engine = store.make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        )
        connection.execute(text("INSERT INTO alembic_version VALUES ('4621fec11365')"))
    store.upgrade_to_head(engine)
    with engine.connect() as connection:
        hub = connection.execute(text("SELECT version_num FROM alembic_version"))
        assert hub.scalars().all() == ["4621fec11365"]
    assert store.current_revision(engine) == "0002"
    engine.dispose()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "postgresql:/hub:pw-secret@db",
            "UsageLedger.db_url: not a database URL",
            id="unparsable",
        ),
        pytest.param(
            "mysql://hub:pw-secret@db/usage",
            "UsageLedger.db_url: unsupported database 'mysql'",
            id="unsupported",
        ),
    ],
)
def test_usage_ledger_db_url_is_checked_at_start_up(value, message):
    with pytest.raises(TraitError) as e:
        UsageLedger(config=Config({"UsageLedger": {"db_url": value}}))
    assert str(e.value).startswith(message)
    assert "pw-secret" not in str(e.value)


def test_usage_ledger_defaults_beside_the_hub_database(tmp_path):
    ledger = UsageLedger().make_ledger(f"sqlite:///{tmp_path}/jupyterhub.sqlite")
    assert ledger.db_url == f"sqlite:///{tmp_path}/hubext-usage.sqlite"
    configured = UsageLedger(
        config=Config(
            {"UsageLedger": {"db_url": "sqlite:////x/u.sqlite", "max_pending": 7}}
        )
    ).make_ledger("sqlite:///jupyterhub.sqlite")
    assert (configured.db_url, configured.max_pending) == ("sqlite:////x/u.sqlite", 7)
    ledger.close()
    configured.close()
