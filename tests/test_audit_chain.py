"""What ``verify`` finds when someone with write access to the database
tampers with the audit log or the state behind it, on SQLite and PostgreSQL,
and what a hash chain cannot find by itself (docs/reference/audit-log.md)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select, update

from hubext.cli import main
from hubext.console.chain import (
    GENESIS,
    HASHED_FIELDS,
    AuditRow,
    ChainCheck,
    row_hash,
    row_text,
)
from hubext.console.model import audit, delegated
from hubext.console.store import StateStore

from .test_docs import REPO
from .usage_pg import db_url, postgres  # noqa: F401 (fixtures)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def history(store: StateStore) -> None:
    """Seven rows: changes of two communities, and events between them."""
    at = iter(T0 + timedelta(minutes=i) for i in range(100))

    def change(community, version, document, action, actor="ada"):
        store.change(
            community,
            version,
            document,
            actor=actor,
            actor_kind="user",
            action=action,
            at=next(at),
        )

    change("ocean-lab", 0, {"environments": [{"slug": "py311"}]}, "environment.add")
    change("astro-101", 0, {"idle_timeout": 900}, "idle_timeout.set", actor="cy")
    store.record(
        actor="mallory",
        actor_kind="user",
        action="environment.add_refused",
        community="ocean-lab",
        after={"image": "docker.io/evil/miner"},
        at=next(at),
    )
    change(
        "ocean-lab",
        1,
        {"environments": [{"slug": "py311"}], "idle_timeout": 3600},
        "idle_timeout.set",
    )
    change("astro-101", 1, {"idle_timeout": 1800}, "idle_timeout.set", actor="cy")
    store.record(
        actor="hubext-console",
        actor_kind="service",
        action="invitation.redeem",
        community="astro-101",
        after={"user": "dee"},
        at=next(at),
    )
    change(
        "ocean-lab",
        2,
        {"environments": [], "idle_timeout": 3600},
        "environment.remove",
    )


@pytest.fixture
def store(db_url):  # noqa: F811
    opened = StateStore.open(db_url)
    history(opened)
    assert opened.verify() is None
    yield opened
    opened.close()


def rows_of(connection) -> list[AuditRow]:
    return [
        AuditRow(**dict(r._mapping))
        for r in connection.execute(select(audit).order_by(audit.c.seq))
    ]


def set_row(connection, row, **values):
    connection.execute(update(audit).where(audit.c.seq == row).values(**values))


def rehash_from(connection, seq):
    """Recompute the chain from row ``seq`` on, as a forger who knows the
    definition would, after changing that row."""
    rows = rows_of(connection)
    prev = rows[seq - 2].hash if seq > 1 else GENESIS
    for row in rows[seq - 1 :]:
        digest = row_hash(prev, row.fields())
        set_row(connection, row.seq, prev_hash=prev, hash=digest)
        prev = digest


# -- each kind of tampering: (what is done, first bad row, why) ----------------------


def edit_after(c):
    set_row(c, 4, after={"environments": [{"slug": "py311"}], "idle_timeout": 99})


def edit_actor(c):
    set_row(c, 2, actor="eve")


def edit_time(c):
    set_row(c, 3, at=T0 + timedelta(days=1))


def edit_a_hash(c):
    set_row(c, 3, hash="f" * 64)


def delete_a_middle_row(c):
    c.execute(delete(audit).where(audit.c.seq == 3))


def delete_the_first_row(c):
    c.execute(delete(audit).where(audit.c.seq == 1))


def swap_two_rows(c):
    set_row(c, 2, seq=-2)
    set_row(c, 5, seq=2)
    set_row(c, -2, seq=5)


def insert_a_row_in_the_middle(c):
    # a forged refusal put in as row 4: later rows moved up by one (highest
    # first), the forged row hashed on row 3 as the code would
    for seq in range(7, 3, -1):
        set_row(c, seq, seq=seq + 1)
    row3 = rows_of(c)[2]
    fields = {
        "seq": 4,
        "at": row3.at,
        "actor": "ada",
        "actor_kind": "user",
        "community": "ocean-lab",
        "action": "environment.add_refused",
        "version": None,
        "before": None,
        "after": {"image": "quay.io/ocean-lab/fake:v1"},
    }
    c.execute(
        insert(audit).values(
            **fields, prev_hash=row3.hash, hash=row_hash(row3.hash, fields)
        )
    )


def append_a_row_on_the_wrong_hash(c):
    fields = {
        "seq": 8,
        "at": T0,
        "actor": "eve",
        "actor_kind": "user",
        "community": None,
        "action": "event.forged",
        "version": None,
        "before": None,
        "after": None,
    }
    c.execute(
        insert(audit).values(
            **fields, prev_hash=GENESIS, hash=row_hash(GENESIS, fields)
        )
    )


def rechain_one_row(c):
    # row 5's prev_hash changed and its own hash recomputed to match
    row = rows_of(c)[4]
    set_row(c, 5, prev_hash="a" * 64, hash=row_hash("a" * 64, row.fields()))


def edit_and_rehash_a_change(c):
    # the rest of the chain recomputed, but the change's 'after' no longer
    # leads to the next change's 'before'
    set_row(c, 4, after={"environments": [], "idle_timeout": 60})
    rehash_from(c, 4)


def delete_the_last_change(c):
    c.execute(delete(audit).where(audit.c.seq == 7))


def edit_a_stored_document(c):
    c.execute(
        update(delegated)
        .where(delegated.c.community == "astro-101")
        .values(document={"idle_timeout": 28800})
    )


def delete_a_stored_document(c):
    c.execute(delete(delegated).where(delegated.c.community == "ocean-lab"))


def write_a_document_around_the_log(c):
    c.execute(
        insert(delegated).values(
            community="geo-lab",
            document={"idle_timeout": 60},
            version=1,
            updated_at=T0,
            updated_by="eve",
        )
    )


DETECTED = [
    pytest.param(edit_after, 4, "the row was edited", id="edit-after"),
    pytest.param(edit_actor, 2, "the row was edited", id="edit-actor"),
    pytest.param(edit_time, 3, "the row was edited", id="edit-time"),
    pytest.param(edit_a_hash, 3, "the row was edited", id="edit-hash"),
    pytest.param(delete_a_middle_row, 4, "row 3 is missing", id="delete-middle"),
    pytest.param(delete_the_first_row, 2, "row 1 is missing", id="delete-first"),
    pytest.param(swap_two_rows, 2, "the row was edited", id="swap-two-rows"),
    pytest.param(
        insert_a_row_in_the_middle, 5, "the row was edited", id="insert-middle"
    ),
    pytest.param(
        append_a_row_on_the_wrong_hash,
        8,
        "its prev_hash is not row 7's hash",
        id="append-wrong-prev-hash",
    ),
    pytest.param(
        rechain_one_row, 5, "its prev_hash is not row 4's hash", id="rechain-one-row"
    ),
    pytest.param(
        edit_and_rehash_a_change,
        7,
        "its 'before' is not what row 4 wrote for 'ocean-lab'",
        id="edit-and-rehash-a-change",
    ),
    pytest.param(
        delete_the_last_change,
        None,
        "the stored document of 'ocean-lab' (version 3) is not what its last "
        "change, row 4 (version 2), wrote",
        id="delete-last-change",
    ),
    pytest.param(
        edit_a_stored_document,
        None,
        "the stored document of 'astro-101' (version 2) is not what its last "
        "change, row 5 (version 2), wrote",
        id="edit-stored-document",
    ),
    pytest.param(
        delete_a_stored_document,
        None,
        "the stored document of 'ocean-lab' is gone; row 7 wrote its version 3",
        id="delete-stored-document",
    ),
    pytest.param(
        write_a_document_around_the_log,
        None,
        "the stored document of 'geo-lab' (version 1) has no change in the log",
        id="document-written-around-the-log",
    ),
]


@pytest.mark.parametrize(("tamper", "seq", "reason"), DETECTED)
def test_verify_finds_the_first_bad_row(store, tamper, seq, reason):
    with store.engine.begin() as connection:
        tamper(connection)
    broken = store.verify()
    assert broken is not None
    assert broken.seq == seq
    assert reason in broken.reason, broken.reason


# -- what a chain cannot find by itself, and what an anchor adds ---------------------


def append_a_forged_event(c):
    last = rows_of(c)[-1]
    fields = {
        "seq": 8,
        "at": T0 + timedelta(hours=1),
        "actor": "mallory",
        "actor_kind": "user",
        "community": "ocean-lab",
        "action": "invitation.redeem",
        "version": None,
        "before": None,
        "after": {"user": "mallory"},
    }
    c.execute(
        insert(audit).values(
            **fields, prev_hash=last.hash, hash=row_hash(last.hash, fields)
        )
    )


def rewrite_an_event_and_rehash(c):
    set_row(c, 3, actor="ada", after={"image": "quay.io/ocean-lab/model:v1"})
    rehash_from(c, 3)


UNDETECTED_BY_THE_CHAIN = [
    pytest.param(append_a_forged_event, False, id="append-a-well-formed-row"),
    pytest.param(rewrite_an_event_and_rehash, True, id="rewrite-and-rehash"),
]


@pytest.mark.parametrize(("tamper", "anchor_finds_it"), UNDETECTED_BY_THE_CHAIN)
def test_what_only_a_head_noted_outside_can_show(store, tamper, anchor_finds_it):
    # Whoever can write the database can append a well-formed row, or
    # rewrite history and recompute every hash after it: the chain holds.
    # A head noted outside the database before (an anchor) no longer holds
    # after a rewrite; an appended row leaves it as it was.
    head = store.head()
    with store.engine.begin() as connection:
        tamper(connection)
    assert store.verify() is None
    broken = store.verify(anchors=[head])
    if anchor_finds_it:
        assert broken.seq == head[0]
        assert "the log was rewritten up to it" in broken.reason
    else:
        assert broken is None


def test_a_removed_tail_of_events_shows_only_against_an_anchor(store):
    # The last row is an event: removing it leaves a chain that holds and a
    # state that matches the log. The head noted before says what is missing.
    store.record(actor="ada", actor_kind="user", action="member.remove", at=T0)
    head = store.head()
    assert head[0] == 8
    with store.engine.begin() as connection:
        connection.execute(delete(audit).where(audit.c.seq == 8))
    assert store.verify() is None
    broken = store.verify(anchors=[head])
    assert broken.seq == 8
    assert "rows were removed from its end" in broken.reason


# -- the definition, as the docs give it ---------------------------------------------


def test_a_row_hash_is_sha256_of_prev_hash_and_canonical_json():
    fields = {
        "seq": 1,
        "at": datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC),
        "actor": "ådа",  # noqa: RUF001 (Latin and Cyrillic: escaped in the text)
        "actor_kind": "user",
        "community": "ocean-lab",
        "action": "environment.add",
        "version": 1,
        "before": None,
        "after": {"b": [1, 2.5], "a": "x"},
    }
    text = row_text(fields)
    assert text == (
        '{"action":"environment.add","actor":"\\u00e5d\\u0430","actor_kind":"user",'
        '"after":{"a":"x","b":[1,2.5]},"at":"2026-03-01T12:00:00.000005+00:00",'
        '"before":null,"community":"ocean-lab","seq":1,"version":1}'
    )
    assert text.isascii()
    assert (
        row_hash(GENESIS, fields)
        == hashlib.sha256((GENESIS + text).encode()).hexdigest()
    )
    assert set(HASHED_FIELDS) == set(fields)


def test_a_check_keeps_the_first_break():
    check = ChainCheck()
    fields = {
        "seq": 1,
        "at": T0,
        "actor": "ada",
        "actor_kind": "user",
        "community": None,
        "action": "a.b",
        "version": None,
        "before": None,
        "after": None,
    }
    first = AuditRow(**fields, prev_hash=GENESIS, hash=row_hash(GENESIS, fields))
    edited = replace(first, seq=2, actor="eve", prev_hash=first.hash)
    assert check.add(first) is None
    assert check.add(edited).seq == 2
    assert check.add(replace(first, seq=3)).seq == 2  # still the first break


DOC = REPO / "docs" / "reference" / "audit-log.md"


def _doc_snippet() -> str:
    text = DOC.read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    verifiers = [b for b in blocks if "hashlib" in b]
    assert len(verifiers) == 1
    return verifiers[0]


def test_the_docs_few_lines_reverify_the_chain(store, capsys):
    # The definition in the docs is the code's: its few lines of Python,
    # fed `hubext audit list --format json`, agree with verify.
    snippet = _doc_snippet()
    url = str(store.engine.url.render_as_string(hide_password=False))

    def reverify() -> str:
        assert main(["audit", "list", "--db-url", url, "--format", "json"]) == 0
        listing = capsys.readouterr().out
        done = subprocess.run(
            [sys.executable, "-c", snippet],
            input=listing,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode in (0, 1), done.stderr
        return done.stdout.strip()

    assert reverify() == "the chain holds: 7 rows"
    with store.engine.begin() as connection:
        edit_time(connection)
    assert reverify() == "the chain breaks at row 3"
    assert store.verify().seq == 3
