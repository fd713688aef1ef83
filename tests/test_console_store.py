"""The delegated state's store (SQLite and PostgreSQL): migrations, documents,
versions, the log's rows, the hub process's cache, ``c.Console``."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, inspect, select, text
from traitlets import TraitError
from traitlets.config import Config

from hubext._validation import ConfigError, errors_of
from hubext.cli import main
from hubext.console import invitations as _invitation_tables  # noqa: F401 (its tables)
from hubext.console import store as state
from hubext.console.chain import GENESIS, row_hash
from hubext.console.config import Console, check_console_config
from hubext.console.model import (
    AUDIT_TABLE,
    DELEGATED_TABLE,
    VERSION_TABLE,
    audit,
    delegated,
    metadata,
)
from hubext.console.store import (
    DelegatedCache,
    StateStore,
    Stored,
    VersionConflict,
)
from hubext.database import make_engine, snapshot
from hubext.usage import store as ledger_store
from hubext.usage.model import VERSION_TABLE as LEDGER_VERSION_TABLE

from .usage_pg import db_url, postgres  # noqa: F401 (fixtures)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
ENV = {"slug": "ocean-2026", "image": "quay.io/ocean-lab/model:v2.1"}


@pytest.fixture
def store(db_url):  # noqa: F811
    opened = StateStore.open(db_url)
    yield opened
    opened.close()


def change(store, community, expected, document, *, actor="ada", at=T0, **kw):
    return store.change(
        community,
        expected,
        document,
        actor=actor,
        actor_kind=kw.pop("actor_kind", "user"),
        action=kw.pop("action", "environment.add"),
        at=at,
    )


# -- where it is, and its schema -------------------------------------------------


@pytest.mark.parametrize(
    ("hub_db_url", "expected"),
    [
        pytest.param(
            "sqlite:////srv/jupyterhub/jupyterhub.sqlite",
            "sqlite:////srv/jupyterhub/hubext-state.sqlite",
            id="absolute-sqlite",
        ),
        pytest.param(
            "sqlite:///jupyterhub.sqlite",
            "sqlite:///hubext-state.sqlite",
            id="jupyterhub-default-relative",
        ),
        pytest.param(
            "postgresql://hub:secret@db/jupyterhub",
            "sqlite:///hubext-state.sqlite",
            id="postgresql-hub-file-in-working-directory",
        ),
    ],
)
def test_default_db_url_is_a_file_of_its_own_beside_the_hubs(hub_db_url, expected):
    assert state.default_db_url(hub_db_url) == expected
    assert Console().resolved_db_url(hub_db_url) == expected
    # never the ledger's file, whatever the ledger's settings
    assert expected != ledger_store.default_db_url(hub_db_url)


def _schema_differences(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        )
        return compare_metadata(context, metadata)


def test_migrations_from_an_empty_database(db_url):  # noqa: F811
    engine = make_engine(db_url)
    assert state.current_revision(engine) is None
    state.upgrade_to_head(engine)
    assert state.current_revision(engine) == state.head_revision() == "0002"
    tables = set(inspect(engine).get_table_names())
    assert {DELEGATED_TABLE, AUDIT_TABLE, VERSION_TABLE} <= tables
    # the migrations build exactly the schema the code uses
    assert _schema_differences(engine) == []
    # again at every start-up: nothing changes
    state.upgrade_to_head(engine)
    assert state.current_revision(engine) == "0002"
    engine.dispose()


def test_a_database_written_by_a_newer_hubext_is_refused(db_url):  # noqa: F811
    engine = make_engine(db_url)
    state.upgrade_to_head(engine)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0042'"))
    with pytest.raises(state.UnknownSchema) as e:
        StateStore.open(db_url)
    message = str(e.value)
    assert "the delegated state's schema is at revision '0042'" in message
    assert "its newest is '0002'" in message
    assert "Console.db_url" in message
    assert state.current_revision(engine) == "0042"
    engine.dispose()


def test_state_ledger_and_hub_share_one_database(postgres):  # noqa: F811
    # Each store has its own version table: neither moves JupyterHub's
    # alembic_version, nor the other's.
    name = postgres.create_database()
    url = postgres.url(name)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            )
            connection.execute(text("INSERT INTO alembic_version VALUES ('4621fec1')"))
        ledger_store.upgrade_to_head(engine)
        state.upgrade_to_head(engine)
        with engine.connect() as connection:

            def version(table):
                return connection.execute(
                    text(f"SELECT version_num FROM {table}")
                ).scalar()

            assert version("alembic_version") == "4621fec1"
            assert version(LEDGER_VERSION_TABLE) == ledger_store.head_revision()
            assert version(VERSION_TABLE) == state.head_revision()
        assert {DELEGATED_TABLE, AUDIT_TABLE} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
        postgres.drop_database(name)


# -- documents and versions --------------------------------------------------------


def test_a_change_writes_the_document_and_its_audit_row(store):
    assert store.read("ocean-lab") == Stored(None, 0)
    assert store.read_all() == {}
    first = change(store, "ocean-lab", 0, {"environments": [ENV]})
    assert (first.seq, first.version, first.before, first.prev_hash) == (
        1,
        1,
        None,
        GENESIS,
    )
    assert first.hash == row_hash(GENESIS, first.fields())
    document = {"environments": [ENV], "idle_timeout": 3600}
    second = change(
        store,
        "ocean-lab",
        1,
        document,
        actor="bob",
        action="idle_timeout.set",
        at=T0 + MINUTE,
    )
    assert (second.seq, second.version, second.prev_hash) == (2, 2, first.hash)
    assert second.before == {"environments": [ENV]}
    assert second.after == document
    change(store, "astro-101", 0, {"idle_timeout": 900}, actor="cy", at=T0 + 2 * MINUTE)
    assert store.read("ocean-lab") == Stored(document, 2)
    assert store.read_all() == {
        "ocean-lab": Stored(document, 2),
        "astro-101": Stored({"idle_timeout": 900}, 1),
    }
    assert store.read_many(["astro-101", "nope"]) == {
        "astro-101": Stored({"idle_timeout": 900}, 1)
    }
    assert store.versions() == {"ocean-lab": 2, "astro-101": 1}
    rows = store.audit()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[1] == second
    assert [r.seq for r in store.audit("ocean-lab")] == [1, 2]
    assert [r.seq for r in store.audit(since=T0 + MINUTE)] == [2, 3]
    assert [r.seq for r in store.audit("astro-101", since=T0 + MINUTE)] == [3]
    assert [r.seq for r in store.audit(after_seq=1, limit=1)] == [2]
    assert store.head() == (3, rows[2].hash)
    assert store.count() == 3
    assert store.verify() is None


def test_the_last_rows_of_a_community_and_their_count(store):
    for i in range(12):
        community = "ocean-lab" if i % 3 else "astro-101"
        version = store.read(community).version
        change(store, community, version, {"idle_timeout": 900 + i}, at=T0 + i * MINUTE)
    rows, count = store.page_audit("ocean-lab", 5)
    ocean = [r.seq for r in store.audit("ocean-lab")]
    assert count == len(ocean) == 8
    assert [r.seq for r in rows] == ocean[::-1][:5]
    assert rows[0] == store.audit("ocean-lab")[-1]
    assert store.page_audit("ocean-lab", 50)[0] == store.audit("ocean-lab")[::-1]
    assert store.page_audit("nobody", 5) == ([], 0)
    assert (store.count("ocean-lab"), store.count("astro-101"), store.count()) == (
        8,
        4,
        12,
    )


def test_the_last_rows_are_read_through_the_community_index(tmp_path):
    opened = StateStore.open(f"sqlite:///{tmp_path}/state.sqlite")
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(opened.engine, "before_cursor_execute", record)
    opened.page_audit("ocean-lab", 50)
    event.remove(opened.engine, "before_cursor_execute", record)
    reads = [(s, p) for s, p in statements if "hubext_audit" in s]
    assert len(reads) == 2, reads
    with opened.engine.connect() as connection:
        raw = connection.connection.driver_connection
        for statement, parameters in reads:
            plan = [
                step[3]
                for step in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            ]
            assert any("ix_hubext_audit_community_seq" in step for step in plan), plan
            assert not [step for step in plan if "TEMP B-TREE" in step], plan
    opened.close()


def test_a_stale_version_writes_nothing_and_says_the_current_one(store):
    change(store, "ocean-lab", 0, {"idle_timeout": 900})
    change(store, "ocean-lab", 1, {"idle_timeout": 1800})
    for stale in (0, 1, 3):
        with pytest.raises(VersionConflict) as e:
            change(store, "ocean-lab", stale, {"idle_timeout": 60})
        assert (e.value.expected, e.value.current) == (stale, 2)
        assert f"at version 2, not {stale}" in str(e.value)
    # a community with no document is at version 0
    with pytest.raises(VersionConflict) as e:
        change(store, "astro-101", 1, {})
    assert e.value.current == 0
    assert store.read("ocean-lab") == Stored({"idle_timeout": 1800}, 2)
    assert store.read("astro-101") == Stored(None, 0)
    assert store.count() == 2
    assert store.verify() is None


def test_events_without_a_change_join_the_same_chain(store):
    change(store, "ocean-lab", 0, {"idle_timeout": 900})
    refused = store.record(
        actor="mallory",
        actor_kind="user",
        action="environment.add_refused",
        community="ocean-lab",
        after={"image": "docker.io/evil/miner:latest", "why": "outside the bounds"},
        at=T0,
    )
    unknown = store.record(
        actor="hubext-console",
        actor_kind="service",
        action="invitation.redeem_refused",
        after={"code": "no such code"},
        at=T0,
    )
    assert (refused.seq, refused.version, unknown.community) == (2, None, None)
    assert unknown.prev_hash == refused.hash
    # an event changes no document
    assert store.read("ocean-lab") == Stored({"idle_timeout": 900}, 1)
    change(store, "ocean-lab", 1, {"idle_timeout": 1200})
    assert store.verify() is None
    assert [r.action for r in store.audit("ocean-lab")] == [
        "environment.add",
        "environment.add_refused",
        "environment.add",
    ]


def test_what_json_cannot_hold_exactly_is_refused(store):
    stored_as_read = {"sizes": ("small", "large"), "name": "Ω ocean 🌊"}
    row = change(store, "ocean-lab", 0, stored_as_read)
    # a tuple is stored, hashed and read back as a list
    assert row.after == {"sizes": ["small", "large"], "name": "Ω ocean 🌊"}
    assert store.read("ocean-lab").document == row.after
    bad = [
        ({"x": math.nan}, "not JSON"),
        ({"x": math.inf}, "not JSON"),
        ({1: "one"}, "key 1 is not a string"),
        ({"x": {2: "two"}}, "key 2 is not a string"),
        ({"x": object()}, "not JSON"),
        (["not", "an", "object"], "a JSON object"),
        ({"x": "y" * state.MAX_DOCUMENT_BYTES}, "more than"),
    ]
    for document, message in bad:
        with pytest.raises(ValueError, match=message):
            change(store, "ocean-lab", 1, document)
    arguments = [
        (dict(community="Ocean Lab"), "community"),
        (dict(actor=""), "actor"),
        (dict(actor_kind="admin"), "actor_kind"),
        (dict(action="Environment Add"), "action"),
        (dict(action="add"), "action"),
        (dict(at=datetime(2026, 3, 1)), "at"),
        (dict(expected_version=-1), "expected_version"),
        (dict(expected_version=True), "expected_version"),
    ]
    for override, name in arguments:
        call = dict(
            community="ocean-lab",
            expected_version=1,
            new_document={},
            actor="ada",
            actor_kind="user",
            action="environment.add",
            at=T0,
        )
        call.update(override)
        community = call.pop("community")
        version = call.pop("expected_version")
        document = call.pop("new_document")
        with pytest.raises(ValueError, match=name):
            store.change(community, version, document, **call)
    assert store.count() == 1
    assert store.verify() is None


def test_times_are_kept_in_utc_to_the_microsecond(store):
    at = datetime(2026, 3, 1, 13, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    row = change(store, "ocean-lab", 0, {}, at=at)
    assert row.at == datetime(2026, 3, 1, 12, 30, 0, 123456, tzinfo=UTC)
    assert store.audit()[0].at == row.at
    assert store.verify() is None


def test_each_row_is_logged_with_its_hash(db_url, caplog):  # noqa: F811
    opened = StateStore.open(db_url, log=logging.getLogger("test.console"))
    with caplog.at_level(logging.INFO, logger="test.console"):
        row = change(opened, "ocean-lab", 0, {"idle_timeout": 900})
    opened.close()
    assert caplog.messages == [
        f"audit log: row 1: environment.add by user ada in ocean-lab; hash {row.hash}"
    ]


def test_verify_reads_the_log_and_the_state_at_one_moment(store):
    # A change committed while verify reads must not be half seen (the
    # state's new version without its row, or the reverse): verify reads in
    # one snapshot, and does not keep writers waiting.
    change(store, "ocean-lab", 0, {"idle_timeout": 900})
    with snapshot(store.engine) as connection:
        assert connection.execute(select(delegated.c.version)).scalar() == 1
        change(store, "ocean-lab", 1, {"idle_timeout": 1800})
        assert connection.execute(select(func.count()).select_from(audit)).scalar() == 1
        assert connection.execute(select(delegated.c.version)).scalar() == 1
    assert store.read("ocean-lab").version == 2


# -- the hub process's cache ----------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_cache_shows_a_change_through_its_store_at_once(db_url):  # noqa: F811
    # a cache that would never expire: only the store's invalidation refreshes it
    opened = StateStore(make_engine(db_url), max_age=math.inf)
    state.upgrade_to_head(opened.engine)
    cache = opened.cache
    assert cache.get("ocean-lab") == Stored(None, 0)
    change(opened, "ocean-lab", 0, {"idle_timeout": 900})
    assert cache.get("ocean-lab") == Stored({"idle_timeout": 900}, 1)
    # what the cache gives is a copy: changing it changes nothing for others
    cache.get("ocean-lab").document["idle_timeout"] = 1
    cache.all()["ocean-lab"].document.clear()
    assert cache.get("ocean-lab") == Stored({"idle_timeout": 900}, 1)
    assert cache.versions() == {"ocean-lab": 1}
    opened.close()


def test_the_cache_shows_another_process_change_after_max_age(db_url):  # noqa: F811
    hub = StateStore.open(db_url)
    other = StateStore.open(db_url)  # another process's store
    clock = Clock()
    cache = DelegatedCache(hub, max_age=1.0, clock=clock)
    change(other, "ocean-lab", 0, {"idle_timeout": 900})
    change(other, "astro-101", 0, {"idle_timeout": 600}, actor="cy")
    assert cache.all() == {
        "ocean-lab": Stored({"idle_timeout": 900}, 1),
        "astro-101": Stored({"idle_timeout": 600}, 1),
    }
    change(other, "ocean-lab", 1, {"idle_timeout": 1200})
    clock.now = 0.999
    assert cache.get("ocean-lab").version == 1  # within max_age: from memory
    clock.now = 1.0
    assert cache.get("ocean-lab") == Stored({"idle_timeout": 1200}, 2)
    assert cache.get("astro-101") == Stored({"idle_timeout": 600}, 1)
    # a document removed from the database leaves the cache too
    with other.engine.begin() as connection:
        connection.execute(
            text(f"DELETE FROM {DELEGATED_TABLE} WHERE community = 'astro-101'")
        )
    clock.now = 2.0
    assert cache.versions() == {"ocean-lab": 2}
    hub.close()
    other.close()


def test_the_caches_stamp_changes_with_a_document_only(db_url):  # noqa: F811
    """What the spawners key their profiles by: the same stamp while nothing
    changed (read again or not), another after a change; fresh or not."""
    hub = StateStore.open(db_url)
    other = StateStore.open(db_url)
    clock = Clock()
    cache = DelegatedCache(hub, max_age=1.0, clock=clock)
    change(other, "ocean-lab", 0, {"idle_timeout": 900})
    first = cache.stamp()
    assert cache.is_fresh()
    clock.now = 5.0
    assert not cache.is_fresh()
    assert cache.stamp() is first  # read again: nothing changed
    assert cache.is_fresh()
    change(other, "astro-101", 0, {"idle_timeout": 600}, actor="cy")
    clock.now = 10.0
    second = cache.stamp()
    assert second is not first
    cache.invalidate()  # what a change through its store does
    assert not cache.is_fresh()
    assert cache.stamp() is second
    hub.close()
    other.close()


def test_the_cache_serves_what_it_read_while_the_database_is_gone(
    postgres,  # noqa: F811
    caplog,
):
    name = postgres.create_database()
    url = postgres.url(name)
    hub = StateStore.open(url, log=logging.getLogger("test.cache"))
    change(hub, "ocean-lab", 0, {"idle_timeout": 900})
    clock = Clock()
    cache = DelegatedCache(hub, max_age=1.0, clock=clock)
    assert cache.get("ocean-lab").version == 1
    postgres.drop_database(name)
    with caplog.at_level(logging.INFO, logger="test.cache"):
        for step in range(1, 4):
            clock.now = float(step)
            assert cache.get("ocean-lab") == Stored({"idle_timeout": 900}, 1)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once, not at every read
    assert "postgres:***@" in errors[0].getMessage()
    assert postgres.password not in caplog.text
    # with nothing read before, the error is raised
    with pytest.raises(Exception):  # noqa: B017 (the driver's error)
        DelegatedCache(hub).get("ocean-lab")
    hub.close()


# -- c.Console -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "postgresql:/hub:pw-secret@db",
            "Console.db_url: not a database URL",
            id="unparsable",
        ),
        pytest.param(
            "mysql://hub:pw-secret@db/state",
            "Console.db_url: unsupported database 'mysql'",
            id="unsupported",
        ),
    ],
)
def test_console_db_url_is_checked(value, message):
    with pytest.raises(TraitError) as e:
        Console(config=Config({"Console": {"db_url": value}}))
    assert str(e.value).startswith(message)
    assert "pw-secret" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        check_console_config(Config({"Console": {"db_url": value}}))
    assert str(e.value).startswith(message)
    assert "pw-secret" not in str(e.value)


def test_an_unknown_console_setting_is_refused():
    with pytest.raises(ConfigError) as e:
        check_console_config(Config({"Console": {"db_ur": "sqlite:///x.sqlite"}}))
    assert [str(x) for x in errors_of(e.value)] == [
        "Console.db_ur: Console has no such setting and would ignore it "
        "(did you mean 'db_url'?)"
    ]


def test_check_config_refuses_a_bad_console_db_url(tmp_path, capsys):
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        "c = get_config()\n"
        'c.JupyterHub.authenticator_class = "hubext"\n'
        'c.JupyterHub.spawner_class = "hubext-local"\n'
        'c.Communities.communities = {"ocean-lab": {}}\n'
        'c.Console.db_url = "mysql://hub:pw-Qx81Lm@db/state"\n'
    )
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "hubext: invalid configuration: Console.db_url: unsupported database "
        "'mysql'; supported: sqlite, postgresql"
    ]
