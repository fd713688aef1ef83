"""Concurrent writers and a writer killed mid-change, on SQLite and PostgreSQL.

Two processes of several threads each change the same community and their
own ones at once: every change is there exactly once, each community's
versions follow each other with no gap, and the chain verifies, also while
they write. A writer
killed (SIGKILL) inside its transaction leaves neither the document nor the
audit row, and does not keep the log locked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from demo.services import REPO
from hubext.console.store import StateStore, Stored

from .usage_pg import db_url, postgres  # noqa: F401 (fixtures)

PROCESSES = 2
THREADS = 4
CHANGES = 24  # per thread, half of them to the shared community


def _worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.console_worker", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_writers_lose_nothing_and_keep_one_chain(db_url, tmp_path):  # noqa: F811
    store = StateStore.open(db_url)  # the schema, before the writers
    go = tmp_path / "go"
    workers = [
        _worker("changes", db_url, f"p{n}", str(THREADS), str(CHANGES), str(go))
        for n in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline() == "ready\n", worker.stderr.read()
        go.touch()  # all threads of both processes start together
        # verify reads one moment of the log and the state: while they
        # change, what it reads always holds
        checks = 0
        while any(worker.poll() is None for worker in workers):
            assert store.verify() is None
            checks += 1
        outputs = [worker.communicate(timeout=600) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    results = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    made = [tuple(change) for r in results for change in r["made"]]
    events = [seq for r in results for seq in r["events"]]
    assert len(made) == PROCESSES * THREADS * CHANGES

    # every change is in its community's document once, in version order
    by_community = defaultdict(list)
    for community, marker, seq, version in made:
        by_community[community].append((version, marker, seq))
    stored = store.read_all()
    assert set(stored) == set(by_community)
    for community, changes in by_community.items():
        changes.sort()
        versions = [version for version, _, _ in changes]
        assert versions == list(range(1, len(changes) + 1)), community
        assert stored[community] == Stored(
            {"markers": [marker for _, marker, _ in changes]}, len(changes)
        )
    assert len(by_community["shared"]) == PROCESSES * THREADS * CHANGES // 2

    # one chain: every row once, no gap, each change's row the one it was told
    rows = store.audit()
    assert [row.seq for row in rows] == list(range(1, len(made) + len(events) + 1))
    by_seq = {row.seq: row for row in rows}
    for community, marker, seq, version in made:
        row = by_seq[seq]
        assert (row.community, row.version, row.after["markers"][-1]) == (
            community,
            version,
            marker,
        )
    assert sorted(events) == sorted(r.seq for r in rows if r.version is None)
    assert store.verify() is None
    print(f"verified {checks} times while they wrote")
    store.close()


@pytest.mark.parametrize("paused_after", ["audit", "document"])
def test_a_writer_killed_mid_change_leaves_nothing_half_written(
    db_url,  # noqa: F811
    paused_after,
):
    store = StateStore.open(db_url)
    before = store.change(
        "ocean-lab",
        0,
        {"idle_timeout": 3600},
        actor="ada",
        actor_kind="user",
        action="idle_timeout.set",
        at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    writer = _worker("hold", db_url, paused_after)
    try:
        assert writer.stdout.readline() == "paused\n", writer.stderr.read()
        # the change is written, not committed: readers see the last commit,
        # and are not kept waiting by the writer's lock
        assert store.read("ocean-lab") == Stored({"idle_timeout": 3600}, 1)
        assert store.count() == 1
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=60)
    finally:
        writer.kill()
    assert writer.returncode == -signal.SIGKILL
    assert store.read("ocean-lab") == Stored({"idle_timeout": 3600}, 1)
    assert store.audit() == [before]
    assert store.verify() is None
    # the log is not left locked: the next change goes through
    after = store.change(
        "ocean-lab",
        1,
        {"idle_timeout": 7200},
        actor="bob",
        actor_kind="user",
        action="idle_timeout.set",
    )
    assert (after.seq, after.version, after.prev_hash) == (2, 2, before.hash)
    assert store.read("ocean-lab") == Stored({"idle_timeout": 7200}, 2)
    assert store.verify() is None
    store.close()
