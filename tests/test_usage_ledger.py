"""The recorder the spawners call: what it writes (SQLite and PostgreSQL), that it
never blocks nor raises, and that a database outage loses nothing and logs no
password (a real PostgreSQL server stopped and restarted mid-run); each with
the writer in a thread and in a process of its own."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from hubext.usage import HUB_ACCOUNT, EndReason, Ledger, Resources
from hubext.usage.model import sessions
from hubext.usage.store import make_engine

from .usage_pg import db_url, postgres  # noqa: F401 (fixtures)

#: a writer's thread that dies fails the test
pytestmark = pytest.mark.filterwarnings(
    "error::pytest.PytestUnhandledThreadExceptionWarning"
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
GIB = 2**30


class Clock:
    """An injectable clock: time moves only when a test says so."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def rows(db: str) -> dict[str, dict]:
    engine = make_engine(db)
    with engine.connect() as connection:
        found = {r.id: dict(r._mapping) for r in connection.execute(select(sessions))}
    engine.dispose()
    return found


@pytest.fixture(params=[False, True], ids=["writer-thread", "writer-process"])
def ledger_for(request, caplog):
    """Ledgers writing from a thread, and from a process of their own (the hub's)."""
    made = []

    def make(db: str, **kwargs) -> Ledger:
        kwargs.setdefault("log", logging.getLogger("test.usage"))
        kwargs.setdefault("process", request.param)
        ledger = Ledger(db, **kwargs)
        ledger.start()
        made.append(ledger)
        return ledger

    caplog.set_level(logging.INFO)
    yield make
    for ledger in made:
        ledger.close(timeout=5)


def test_a_session_is_recorded_from_start_to_end(db_url, ledger_for):  # noqa: F811
    clock = Clock()
    ledger = ledger_for(db_url, clock=clock)
    key = ledger.session_started(
        user="ada",
        server_name="gpu-box",
        community="ocean-lab",
        profile="gpu",
        choices={"image": "pytorch"},
        resources=Resources(
            cpu_request=1.5, cpu_limit=4, mem_request=2 * GIB, mem_limit=8 * GIB, gpus=1
        ),
    )
    admin = ledger.session_started(user="root", community=None, at=T0 + H)
    clock.now = T0 + 2 * H
    ledger.seen_alive([key, admin])
    ledger.session_ended(key, T0 + 3 * H, EndReason.STOPPED_BY_USER)
    assert ledger.wait_idle(10)
    found = rows(db_url)
    assert found[key] == {
        "id": key,
        "username": "ada",
        "server_name": "gpu-box",
        "community": "ocean-lab",
        "profile": "gpu",
        "choices": {"image": "pytorch"},
        "cpu_request": 1.5,
        "cpu_limit": 4.0,
        "mem_request": 2 * GIB,
        "mem_limit": 8 * GIB,
        "gpus": 1,
        "started_at": T0,
        "last_seen_at": T0 + 3 * H,
        "stopped_at": T0 + 3 * H,
        "end_reason": "stopped_by_user",
    }
    # a profile of no community: the hub-wide account; still open
    assert found[admin]["community"] == HUB_ACCOUNT
    assert found[admin]["started_at"] == T0 + H
    assert found[admin]["last_seen_at"] == T0 + 2 * H
    assert found[admin]["stopped_at"] is None
    assert found[admin]["started_at"].tzinfo is UTC


def test_an_end_counts_once_and_heartbeats_only_move_forward(db_url, ledger_for):  # noqa: F811
    ledger = ledger_for(db_url, clock=Clock())
    key = ledger.session_started(user="ada", community="ocean-lab")
    ledger.seen_alive([key], T0 + 2 * H)
    ledger.seen_alive([key], T0 + H)  # late, out of order: ignored
    assert ledger.wait_idle(10)
    assert rows(db_url)[key]["last_seen_at"] == T0 + 2 * H
    ledger.session_ended(key, T0 + 3 * H, "culled")
    ledger.session_ended(key, T0 + 4 * H, "died")  # a second end is ignored
    ledger.seen_alive([key], T0 + 5 * H)  # after its end: ignored
    assert ledger.wait_idle(10)
    row = rows(db_url)[key]
    assert (row["stopped_at"], row["end_reason"], row["last_seen_at"]) == (
        T0 + 3 * H,
        "culled",
        T0 + 3 * H,
    )


def test_close_open_sessions_at_their_last_sighting(db_url, ledger_for):  # noqa: F811
    # a hub that crashed: its open sessions are closed when the next one starts
    first = ledger_for(db_url, clock=Clock())
    seen = first.session_started(user="ada", community="ocean-lab")
    never_seen = first.session_started(user="bob", community="astro-101", at=T0 + H)
    ended = first.session_started(user="cy", community="astro-101")
    first.seen_alive([seen], T0 + 2 * H)
    first.session_ended(ended, T0 + 30 * timedelta(minutes=1), "failed_to_start")
    assert first.wait_idle(10)
    first.close(timeout=5)

    hub_started = T0 + 5 * H
    second = ledger_for(db_url, clock=Clock(hub_started))
    closed = second.close_open_sessions(at_most=hub_started)
    # a server the new hub starts right away is not closed
    new = second.session_started(user="ada", community="ocean-lab", at=hub_started)
    assert closed.result(timeout=10) == 2
    assert second.wait_idle(10)
    found = rows(db_url)
    assert (found[seen]["stopped_at"], found[seen]["end_reason"]) == (
        T0 + 2 * H,
        "hub_restart",
    )
    assert (found[never_seen]["stopped_at"], found[never_seen]["end_reason"]) == (
        T0 + H,
        "hub_restart",
    )
    assert found[ended]["end_reason"] == "failed_to_start"
    assert found[new]["stopped_at"] is None


def test_the_clock_is_injected(db_url, ledger_for):  # noqa: F811
    clock = Clock(datetime(2031, 7, 4, 9, 30, tzinfo=UTC))
    ledger = ledger_for(db_url, clock=clock)
    key = ledger.session_started(user="ada", community="ocean-lab")
    clock.now += timedelta(minutes=90)
    ledger.session_ended(key, reason="stopped_by_admin")
    assert ledger.wait_idle(10)
    row = rows(db_url)[key]
    assert row["started_at"] == datetime(2031, 7, 4, 9, 30, tzinfo=UTC)
    assert row["stopped_at"] == datetime(2031, 7, 4, 11, 0, tzinfo=UTC)


def test_a_bad_event_is_logged_and_holds_no_other_back(db_url, ledger_for, caplog):  # noqa: F811
    ledger = ledger_for(db_url, clock=Clock(), retry_initial=0.05)
    before = ledger.session_started(user="ada", community="ocean-lab")
    # a username the column refuses (NOT NULL): the database rejects this row
    bad = ledger.session_started(user=None, community="ocean-lab")
    after = ledger.session_started(user="bob", community="ocean-lab")
    ledger.session_ended(after, T0 + H, "no-such-reason")
    naive = ledger.session_started(
        user="cy", community="ocean-lab", at=datetime(2026, 3, 1, 13, 0)
    )
    assert ledger.wait_idle(10)
    found = rows(db_url)
    assert set(found) == {before, after, naive}
    assert bad not in found
    assert found[after]["end_reason"] == "no-such-reason"
    assert found[naive]["started_at"] == T0 + H
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("start refused by the database, dropped" in m for m in errors), errors
    assert any("unknown end reason 'no-such-reason'" in m for m in errors), errors
    assert any("naive datetime" in m for m in errors), errors


def _fragments(secret: str, n: int = 6):
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


def test_postgresql_outage_loses_nothing_blocks_nothing_logs_no_password(
    postgres,  # noqa: F811
    ledger_for,
    caplog,
):
    name = postgres.create_database()
    url = postgres.url(name)
    ledger = ledger_for(url, clock=Clock(), retry_initial=0.05, retry_max=0.5)
    before = ledger.session_started(user="ada", community="ocean-lab")
    assert ledger.wait_idle(10)

    postgres.stop()
    try:
        slowest = 0.0
        during = []
        for i in range(50):
            t = time.perf_counter()
            key = ledger.session_started(
                user=f"u{i}", community="astro-101", at=T0 + i * timedelta(minutes=1)
            )
            ledger.seen_alive([before, key], T0 + H + i * timedelta(minutes=1))
            if i % 2:
                ledger.session_ended(key, T0 + 2 * H, EndReason.CULLED)
            slowest = max(slowest, time.perf_counter() - t)
            during.append(key)
        # the writer has met the outage and reported it
        deadline = time.monotonic() + 10
        while ledger.outage_since is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ledger.outage_since is not None
        assert not ledger.wait_idle(0.3)
        assert ledger.pending > 0
    finally:
        postgres.start()
    assert ledger.wait_idle(20)
    ledger.session_ended(before, T0 + 3 * H, "stopped_by_user")
    assert ledger.wait_idle(10)

    found = rows(url)
    assert set(found) == {before, *during}
    for i, key in enumerate(during):
        assert found[key]["started_at"] == T0 + i * timedelta(minutes=1)
        if i % 2:
            assert (found[key]["stopped_at"], found[key]["end_reason"]) == (
                T0 + 2 * H,
                "culled",
            )
        else:
            assert found[key]["stopped_at"] is None
            assert found[key]["last_seen_at"] == T0 + H + i * timedelta(minutes=1)
    assert found[before]["end_reason"] == "stopped_by_user"
    # the calls returned at once (no connection attempt in the caller)
    assert slowest < 0.2, slowest  # a write in the caller waits 10-30 s

    messages = [r.getMessage() for r in caplog.records]
    down = [m for m in messages if "cannot write to" in m]
    back = [m for m in messages if "reachable again" in m]
    assert len(down) == 1, messages  # once per outage, not per retry
    assert len(back) == 1, messages
    assert (
        f"postgresql+psycopg://postgres:***@127.0.0.1:{postgres.port}/{name}"
        in (down[0])
    )
    everything = "\n".join(
        [*messages, caplog.text, *(str(r.args) for r in caplog.records)]
    )
    leaked = {f for f in _fragments(postgres.password) if f in everything}
    assert not leaked
    postgres.drop_database(name)


def test_sqlite_outage_bounded_queue_refuses_only_new_events(
    tmp_path, ledger_for, caplog
):
    # the directory of the file does not exist yet: SQLite cannot open it
    folder = tmp_path / "state"
    url = f"sqlite:///{folder}/hubext-usage.sqlite"
    ledger = ledger_for(url, clock=Clock(), max_pending=3, retry_initial=0.05)
    kept = [ledger.session_started(user=f"u{i}", community="ocean-lab") for i in (0, 1)]
    ledger.session_ended(kept[0], T0 + H, "culled")
    refused = ledger.session_started(user="late", community="ocean-lab")
    also_refused = ledger.session_started(user="later", community="ocean-lab")
    ledger.seen_alive(kept, T0 + 2 * H)  # heartbeats are merged, never refused
    assert ledger.dropped == 2
    deadline = time.monotonic() + 10
    while ledger.outage_since is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ledger.outage_since is not None
    folder.mkdir()
    assert ledger.wait_idle(10)
    found = rows(url)
    assert set(found) == set(kept)
    assert refused not in found and also_refused not in found
    assert found[kept[0]]["end_reason"] == "culled"
    assert found[kept[1]]["last_seen_at"] == T0 + 2 * H
    full = [r for r in caplog.records if "refusing new ones" in r.getMessage()]
    assert len(full) == 1 and full[0].levelno == logging.ERROR
    back = [
        r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()
    ]
    assert back and "2 refused (queue full)" in back[0]


def test_calls_return_at_once_while_the_database_is_stuck(db_url, ledger_for):  # noqa: F811
    # Another client holds the table locked: the writer waits on it, the
    # hub's calls must not (a recorder writing in the caller would wait here).
    ledger = ledger_for(db_url, clock=Clock())
    first = ledger.session_started(user="ada", community="ocean-lab")
    assert ledger.wait_idle(10)
    engine = make_engine(db_url)
    locker = engine.connect()
    if engine.dialect.name == "sqlite":
        locker.exec_driver_sql("BEGIN EXCLUSIVE")
    else:
        locker.begin()
        locker.exec_driver_sql(f"LOCK TABLE {sessions.name} IN ACCESS EXCLUSIVE MODE")
    try:
        slowest = 0.0
        keys = []
        for i in range(20):
            t = time.perf_counter()
            keys.append(ledger.session_started(user=f"u{i}", community="astro-101"))
            ledger.seen_alive([first, *keys], T0 + i * timedelta(minutes=1))
            ledger.session_ended(keys[-1], T0 + H, "stopped_by_user")
            slowest = max(slowest, time.perf_counter() - t)
            time.sleep(0.01)
        assert not ledger.wait_idle(0.2)  # the writer is stuck on the lock
    finally:
        if engine.dialect.name == "sqlite":
            locker.exec_driver_sql("ROLLBACK")
        else:
            locker.rollback()
        locker.close()
        engine.dispose()
    assert slowest < 0.2, slowest  # a write in the caller waits 10-30 s
    assert ledger.wait_idle(20)
    found = rows(db_url)
    assert set(found) == {first, *keys}
    assert all(found[k]["end_reason"] == "stopped_by_user" for k in keys)


async def test_used_from_the_hubs_event_loop(db_url, ledger_for):  # noqa: F811
    # what a spawner hook does: plain calls, and the start-up close awaited
    ledger = ledger_for(db_url, clock=Clock(T0 + H))
    loop = asyncio.get_running_loop()
    ticks = []
    ticker = loop.call_later(0.001, lambda: ticks.append(loop.time()))
    closed = await asyncio.wrap_future(ledger.close_open_sessions())
    key = ledger.session_started(user="ada", community="ocean-lab")
    ledger.seen_alive([key])
    ledger.session_ended(key, T0 + 2 * H, EndReason.FAILED_TO_START)
    await asyncio.sleep(0.01)
    ticker.cancel()
    assert closed == 0
    assert ticks  # the loop kept running while the ledger migrated and wrote
    assert ledger.wait_idle(10)
    assert rows(db_url)[key]["end_reason"] == "failed_to_start"
