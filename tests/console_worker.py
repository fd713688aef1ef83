"""A process that writes the delegated state, for the concurrency and crash tests.

``python -m tests.console_worker changes URL TAG THREADS CHANGES GO``: once
``GO`` (a file) exists, ``THREADS`` threads each make ``CHANGES`` changes,
alternately to the community every writer shares (``shared``) and to one of
their own (``TAG-tN``), each adding a marker to the document's list, read
again and retried on a version conflict; every fifth change also records an
event. Prints ``ready``, then one JSON line: the changes made (community,
marker, seq, version), the events' seqs and the conflicts met; any other
error ends it with status 1, the errors on standard error.

``python -m tests.console_worker hold URL AT``: one change of ``ocean-lab``
from version 1, paused inside its transaction right after the statement
writing the audit row (``AT`` = ``audit``) or the document (``document``):
it prints ``paused`` and waits there to be killed.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from sqlalchemy import event

from hubext.console.store import StateStore, VersionConflict
from hubext.database import make_engine


def changes(url: str, tag: str, threads: int, count: int, go: str) -> None:
    store = StateStore(make_engine(url))
    made, events, conflicts, failures = [], [], [], []
    lock = threading.Lock()

    def work(t: int) -> None:
        try:
            write(t)
        except BaseException as e:
            with lock:
                failures.append(f"thread {t}: {type(e).__name__}: {e}")

    def write(t: int) -> None:
        own = f"{tag}-t{t}"
        actor = f"{tag}-user{t}"
        mine, noted, missed = [], [], 0
        for k in range(count):
            community = "shared" if k % 2 == 0 else own
            marker = f"{tag}-{t}-{k}"
            while True:
                document, version = store.read(community)
                markers = (document or {}).get("markers", [])
                try:
                    row = store.change(
                        community,
                        version,
                        {"markers": [*markers, marker]},
                        actor=actor,
                        actor_kind="user",
                        action="marker.add",
                    )
                except VersionConflict:
                    missed += 1
                    continue
                mine.append([community, marker, row.seq, row.version])
                break
            if k % 5 == 4:
                row = store.record(
                    actor=actor,
                    actor_kind="user",
                    action="marker.noted",
                    community=community,
                    after={"marker": marker},
                )
                noted.append(row.seq)
        with lock:
            made.extend(mine)
            events.extend(noted)
            conflicts.append(missed)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.01)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    if failures:
        sys.exit("\n".join(failures))
    print(
        json.dumps({"made": made, "events": events, "conflicts": sum(conflicts)}),
        flush=True,
    )


def hold(url: str, at: str) -> None:
    engine = make_engine(url)
    table = "hubext_audit" if at == "audit" else "hubext_delegated"

    def pause(connection, cursor, statement, parameters, context, executemany):
        words = statement.split()
        if words[0] in ("INSERT", "UPDATE") and table in words[:3]:
            print("paused", flush=True)
            time.sleep(3600)

    event.listen(engine, "after_cursor_execute", pause)
    store = StateStore(engine)
    store.change(
        "ocean-lab",
        1,
        {"idle_timeout": 7200},
        actor="ada",
        actor_kind="user",
        action="idle_timeout.set",
    )
    print("committed", flush=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "changes":
        url, tag, threads, count, go = args
        changes(url, tag, int(threads), int(count), go)
    else:
        hold(*args)
