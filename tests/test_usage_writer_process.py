"""The usage ledger's writer process: killed, stuck, orphaned, closed.

Real child processes writing to real databases (SQLite, and PostgreSQL with
``db_url``): a writer process killed while it holds events is replaced and
nothing the hub recorded is lost; one that reads nothing is replaced; it
exits with the hub, writing nothing after the hub died (the next hub closes
the sessions); it writes what is pending when the ledger closes; it shows no
password and runs apart from the hub's signals; a write given twice counts
once. The last test does the same with a real hub.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hubext.usage import Ledger
from hubext.usage import writer_process as writer_process_module
from hubext.usage.model import sessions
from hubext.usage.store import make_engine
from hubext.usage.writer import CloseOpen, End, Start, ThreadWriter

from .harness import running_hub
from .hubclient import wait_until
from .test_usage_ledger import Clock, rows
from .usage_pg import db_url, postgres  # noqa: F401 (fixtures)

#: a thread of the writer's that dies (its reader thread) fails the test
pytestmark = pytest.mark.filterwarnings(
    "error::pytest.PytestUnhandledThreadExceptionWarning"
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
MARK = b"hubext.usage.writer_child"


def writer_pids(parent: int) -> list[int]:
    """The live writer processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == parent and stat[0] != "Z" and MARK in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Locked:
    """The sessions table locked by another client: the writer waits on it."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.connection = self.engine.connect()
        if self.engine.dialect.name == "sqlite":
            self.connection.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            self.connection.begin()
            self.connection.exec_driver_sql(
                f"LOCK TABLE {sessions.name} IN ACCESS EXCLUSIVE MODE"
            )

    def release(self) -> None:
        if self.connection is None:
            return
        if self.engine.dialect.name == "sqlite":
            self.connection.exec_driver_sql("ROLLBACK")
        else:
            self.connection.rollback()
        self.connection.close()
        self.engine.dispose()
        self.connection = None


@pytest.fixture
def ledger_for(caplog):
    made = []

    def make(db: str, **kwargs) -> Ledger:
        kwargs.setdefault("log", logging.getLogger("test.usage"))
        ledger = Ledger(db, process=True, clock=Clock(), **kwargs)
        ledger.start()
        made.append(ledger)
        return ledger

    caplog.set_level(logging.INFO)
    yield make
    for ledger in made:
        ledger.close(timeout=5)


def record(ledger: Ledger, n: int, prefix: str) -> list[str]:
    """``n`` sessions: each started, seen, and every other one ended."""
    keys = []
    for i in range(n):
        key = ledger.session_started(
            user=f"{prefix}{i}", community="ocean-lab", at=T0 + i * timedelta(minutes=1)
        )
        ledger.seen_alive([key], T0 + H + i * timedelta(minutes=1))
        if i % 2:
            ledger.session_ended(key, T0 + 2 * H, "culled")
        keys.append(key)
    return keys


def check(found: dict, keys: list[str]) -> None:
    for i, key in enumerate(keys):
        row = found[key]
        assert row["started_at"] == T0 + i * timedelta(minutes=1)
        if i % 2:
            assert (row["stopped_at"], row["end_reason"]) == (T0 + 2 * H, "culled")
        else:
            assert row["stopped_at"] is None
            assert row["last_seen_at"] == T0 + H + i * timedelta(minutes=1)


def test_a_killed_writer_process_is_replaced_and_loses_nothing(
    db_url,  # noqa: F811
    ledger_for,
    caplog,
):
    ledger = ledger_for(db_url, retry_initial=0.05)
    written = record(ledger, 10, "before")
    assert ledger.wait_idle(20)
    (first,) = writer_pids(os.getpid())
    lock = Locked(db_url)
    try:
        # events the writer process has received but cannot write yet
        held = record(ledger, 30, "held")
        assert not ledger.wait_idle(0.5)
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: writer_pids(os.getpid()) not in ([], [first]), 20)
        # and events recorded while it was being replaced
        later = record(ledger, 10, "later")
    finally:
        lock.release()
    assert ledger.wait_idle(30)
    found = rows(db_url)
    assert len(found) == 50
    check(found, written)
    check(found, held)
    check(found, later)
    messages = [r.getMessage() for r in caplog.records]
    died = [m for m in messages if f"(pid {first}) exited with status -9" in m]
    assert len(died) == 1, messages
    assert any("a new writer process" in m and "is writing" in m for m in messages)
    assert ledger.pending == 0 and ledger.outage_since is None


def test_a_writer_process_killed_while_idle_is_no_outage(tmp_path, ledger_for):
    url = f"sqlite:///{tmp_path}/hubext-usage.sqlite"
    ledger = ledger_for(url, retry_initial=0.05)
    record(ledger, 2, "u")
    assert ledger.wait_idle(20)
    (first,) = writer_pids(os.getpid())
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: writer_pids(os.getpid()) not in ([], [first]), 20)
    # replaced with nothing to write: the metrics show no outage
    assert wait_until(lambda: ledger.outage_since is None, 20)
    assert ledger.pending == 0


def test_a_ledger_used_from_one_event_loop_then_another(tmp_path, ledger_for):
    """The hub's ledger outlives an event loop (tests, a restarted loop)."""
    url = f"sqlite:///{tmp_path}/hubext-usage.sqlite"
    made, keys = [], []

    def start_and_record():  # on the first loop: it reads the answers, no thread
        made.append(ledger_for(url))
        keys.append(made[0].session_started(user="a", community="x"))

    first = asyncio.new_event_loop()
    # the loop stops in the turn that recorded a start: its write never runs
    first.call_soon(start_and_record)
    first.call_soon(first.stop)
    first.run_forever()
    first.close()
    (ledger,) = made

    async def on_another_loop():
        keys.append(ledger.session_started(user="b", community="x"))
        await asyncio.sleep(0)
        return await asyncio.to_thread(wait_until, lambda: ledger.pending == 0, 20)

    assert asyncio.run(on_another_loop())
    assert set(rows(url)) == set(keys)


def test_a_writer_process_that_reads_nothing_is_replaced(
    tmp_path, ledger_for, monkeypatch, caplog
):
    monkeypatch.setattr(writer_process_module, "OUT_LIMIT", 64 * 1024)
    url = f"sqlite:///{tmp_path}/hubext-usage.sqlite"
    ledger = ledger_for(url, retry_initial=0.05)
    keys = record(ledger, 20, "u")
    assert ledger.wait_idle(20)
    (stuck,) = writer_pids(os.getpid())
    os.kill(stuck, signal.SIGSTOP)
    try:
        # heartbeats of many servers, more than the pipe holds
        many = [f"k{i:05d}-{'x' * 30}" for i in range(2_000)]
        for minute in range(60):
            ledger.seen_alive(keys + many, T0 + 3 * H + minute * timedelta(minutes=1))
        assert wait_until(lambda: not alive(stuck), 20)
    finally:
        if alive(stuck):
            os.kill(stuck, signal.SIGKILL)
    assert ledger.wait_idle(30)
    found = rows(url)
    assert set(found) == set(keys)
    for i, key in enumerate(keys):
        # the latest heartbeat, except for the sessions already ended
        assert found[key]["last_seen_at"] == (
            T0 + 2 * H if i % 2 else T0 + 3 * H + 59 * timedelta(minutes=1)
        )
    assert any(f"(pid {stuck}) read nothing" in r.getMessage() for r in caplog.records)


HUB_SCRIPT = """
import logging, sys, time
from hubext.usage import Ledger
ledger = Ledger(sys.argv[1], process=True, log=logging.getLogger("hub"))
ledger.start()
for i in range(5):
    ledger.session_started(user=f"u{i}", community="ocean-lab")
if ledger.wait_idle(1):
    sys.exit("written while the database was locked")
print("recorded", flush=True)
time.sleep(600)
"""


def test_the_writer_process_exits_with_a_killed_hub_and_writes_nothing_after(
    db_url,  # noqa: F811
):
    ledger = Ledger(db_url)  # the schema, and one session of the hub before
    ledger.start()
    before = ledger.session_started(user="ada", community="ocean-lab")
    assert ledger.wait_idle(20)
    ledger.close()
    lock = Locked(db_url)
    hub = subprocess.Popen(
        [sys.executable, "-c", HUB_SCRIPT, db_url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # the hub recorded five starts; its writer holds them, waiting on the lock
        assert hub.stdout.readline().strip() == "recorded"
        (writer,) = writer_pids(hub.pid)
        hub.kill()
        hub.wait(10)
        assert wait_until(lambda: not alive(writer), 20)
    finally:
        if hub.poll() is None:
            hub.kill()
        lock.release()
    time.sleep(1)  # what a writer still running would use to write
    assert set(rows(db_url)) == {before}


def test_pending_events_are_written_when_the_ledger_closes(
    db_url,  # noqa: F811
    ledger_for,
):
    ledger = ledger_for(db_url)
    record(ledger, 1, "first")  # the schema made
    assert ledger.wait_idle(20)
    lock = Locked(db_url)
    try:
        keys = record(ledger, 20, "u")
        assert not ledger.wait_idle(0.3)
    finally:
        threading.Timer(0.5, lock.release).start()
    (writer,) = writer_pids(os.getpid())
    ledger.close(timeout=20)
    assert not alive(writer)
    check(rows(db_url), keys)


def test_the_writer_process_shows_no_secret_and_runs_apart(postgres, ledger_for):  # noqa: F811
    url = postgres.url(postgres.create_database())
    assert postgres.password in url

    async def on_a_loop():
        ledger = ledger_for(url)
        closed = await asyncio.wrap_future(ledger.close_open_sessions())
        key = ledger.session_started(user="ada", community="ocean-lab")
        await asyncio.sleep(0)
        threads = [t.name for t in threading.enumerate()]
        (writer,) = writer_pids(os.getpid())
        assert ledger.wait_idle(20)
        return closed, key, threads, writer

    closed, key, threads, writer = asyncio.run(on_a_loop())
    assert closed == 0
    assert key in rows(url)
    # started on an event loop: the loop reads the answers, no thread does
    assert "hubext-usage-ledger" not in threads
    for name in ("cmdline", "environ"):
        assert (
            postgres.password.encode()
            not in Path(f"/proc/{writer}/{name}").read_bytes()
        )
    # a session of its own: a Ctrl-C to the hub's terminal does not reach it
    assert os.getsid(writer) == writer != os.getsid(0)


def test_events_written_twice_count_once(db_url, caplog):  # noqa: F811
    """What a replacement writer process does with events the dead one wrote."""
    writer = ThreadWriter(db_url, log=logging.getLogger("test.usage"))
    writer.start()
    row = {
        "id": "4f2a7b0c-3c1e-4c55-9b7e-2d0f7f6b1a01",
        "username": "ada",
        "server_name": "",
        "community": "ocean-lab",
        "profile": None,
        "choices": None,
        "cpu_request": None,
        "cpu_limit": None,
        "mem_request": None,
        "mem_limit": None,
        "gpus": 0,
        "started_at": T0,
        "last_seen_at": T0,
    }
    try:
        for _ in range(2):
            writer.put(CloseOpen(T0 - H, concurrent.futures.Future()))
            writer.put(Start(dict(row)))
            writer.beat([row["id"]], T0 + H)
            writer.put(End(row["id"], T0 + 2 * H, "stopped_by_user"))
            assert writer.wait_idle(20)
    finally:
        writer.close()
    (found,) = rows(db_url).values()
    assert (found["started_at"], found["last_seen_at"], found["stopped_at"]) == (
        T0,
        T0 + 2 * H,
        T0 + 2 * H,
    )
    assert found["end_reason"] == "stopped_by_user"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.e2e
def test_a_real_hubs_writer_process(tmp_path_factory):
    accounts = {"alice": {"preferred_username": "alice", "groups": ["ocean-lab"]}}
    config = "c.LocalCommunitySpawner.poll_interval = 1\n"
    with running_hub(tmp_path_factory, "usage-writer", config, accounts) as hub:
        alice = hub.signed_in("alice")
        assert wait_until(lambda: writer_pids(hub.hub.pid), 30)
        (first,) = writer_pids(hub.hub.pid)

        def run_once(profile: str) -> None:
            r = alice.api("POST", "/users/alice/server", json={"profile": profile})
            assert r.status_code in (201, 202), r.text
            hub.api.wait_for_server("alice")
            r = alice.api("DELETE", "/users/alice/server")
            assert r.status_code in (202, 204), r.text
            hub.api.wait_for_server("alice", ready=False)

        run_once("standard")
        os.kill(first, signal.SIGKILL)
        run_once("ocean-model")
        assert wait_until(
            lambda: len([r for r in hub.ledger_rows() if r["stopped_at"]]) == 2, 30
        ), hub.ledger_rows()
        found = hub.ledger_rows()
        assert [(r["profile"], r["end_reason"]) for r in found] == [
            ("standard", "stopped_by_user"),
            ("ocean-model", "stopped_by_user"),
        ]
        (second,) = writer_pids(hub.hub.pid)
        assert second != first
        assert f"(pid {first}) exited with status -9" in hub.log()
        hub.stop_hub(signal.SIGKILL)
        assert wait_until(lambda: not alive(second), 20)
