"""Invitations in the state's database, on SQLite and PostgreSQL: codes stored
as hashes only, redemptions and refusals recorded and logged in the chain,
uses counted exactly under 300 concurrent redemptions, memberships ended
and removed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from hubext import invitations as pure
from hubext.console.invitations import (
    InvitationStore,
    MembershipCache,
    NotFound,
    invitations,
    memberships,
)
from hubext.console.store import StateStore
from hubext.self_service import InvitationBounds

from .usage_pg import db_url, postgres  # noqa: F401 (fixtures)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BOUNDS = InvitationBounds(max_uses=500, max_days=30, max_membership_days=None)


def _request(kind="code", uses=3, days=2, ends=None):
    body = {
        "kind": kind,
        "expires_at": (NOW + timedelta(days=days)).isoformat(),
        "note": "workshop",
    }
    if kind == "code":
        body["max_uses"] = uses
    if ends is not None:
        body["membership_ends_at"] = ends.isoformat()
    return pure.check_request(BOUNDS, body, NOW)


@pytest.fixture
def stores(db_url):  # noqa: F811
    state = StateStore.open(db_url, clock=lambda: NOW)
    yield state, InvitationStore(state)
    state.close()


def _redeem(store, code, name, at=NOW, offered=("ocean",)):
    return store.redeem(
        code,
        username=name,
        provider="idp",
        subject=f"sub-{name}",
        offered=offered,
        at=at,
    )


def test_code_stored_as_hash_only_and_redeemed(stores):
    state, store = stores
    made = store.create("ocean", _request(), actor="lead", at=NOW)
    assert made.invitation["uses"] == 0 and "code_hash" not in made.invitation
    with store.engine.connect() as connection:
        stored = connection.execute(select(invitations)).one()
        dump = " ".join(
            str(v)
            for table in ("hubext_invitations", "hubext_audit", "hubext_redemptions")
            for row in connection.execute(text(f"SELECT * FROM {table}"))
            for v in row
        )
    assert stored.code_hash == pure.code_hash(made.code)
    assert made.code not in dump and pure.shown(made.code) not in dump
    # the join page's look-up changes nothing
    assert store.lookup(made.code, NOW).community == "ocean"
    assert store.lookup(made.code, NOW).result == "joined"
    assert store.list("ocean")[0]["uses"] == 0

    joined = _redeem(store, made.code, "ann")
    assert (joined.result, joined.community) == ("joined", "ocean")
    again = _redeem(store, made.code, "ann")
    assert again.result == "already_member"
    assert store.active(NOW) == {"ann": frozenset({"ocean"})}
    listed = store.list("ocean")[0]
    assert listed["uses"] == 1
    assert [(r["user"], r["result"]) for r in listed["redeemed_by"]] == [
        ("ann", "joined"),
        ("ann", "already_member"),
    ]
    actions = [r.action for r in state.audit()]
    assert actions == ["invitation.create", "invitation.redeem", "invitation.refuse"]
    assert state.verify() is None


def test_refusals_at_the_boundaries_are_recorded(stores):
    state, store = stores
    personal = store.create("ocean", _request("personal", days=1), actor="lead", at=NOW)
    expires = NOW + timedelta(days=1)
    # one microsecond before the expiry: joins; at it: expired
    assert (
        _redeem(
            store, personal.code, "ann", at=expires - timedelta(microseconds=1)
        ).result
        == "joined"
    )
    # a personal link replayed: used up
    assert _redeem(store, personal.code, "bob", at=NOW).result == "used_up"
    late = store.create("ocean", _request(days=1), actor="lead", at=NOW)
    assert _redeem(store, late.code, "bob", at=expires).result == "expired"
    revoked = store.create("ocean", _request(), actor="lead", at=NOW)
    store.revoke(
        "ocean", revoked.invitation["id"], actor="lead", at=NOW + timedelta(hours=1)
    )
    assert (
        _redeem(store, revoked.code, "bob", at=NOW + timedelta(minutes=59)).result
        == "joined"
    )
    assert (
        _redeem(store, revoked.code, "cy", at=NOW + timedelta(hours=1)).result
        == "revoked"
    )
    assert _redeem(store, pure.new_code(), "cy").result == "unknown"
    other = store.create("other", _request(), actor="lead", at=NOW)
    assert _redeem(store, other.code, "cy", offered=("ocean",)).result == "not_offered"
    with pytest.raises(NotFound):
        store.revoke("other", revoked.invitation["id"], actor="lead")
    results = [(r.action, (r.after or {}).get("result")) for r in state.audit()]
    assert ("invitation.refuse", "unknown") in results
    assert ("invitation.refuse", "expired") in results
    assert ("invitation.refuse", "revoked") in results
    assert ("invitation.refuse", "used_up") in results
    assert ("invitation.refuse", "not_offered") in results
    assert state.verify() is None


def test_three_hundred_concurrent_redemptions_give_exactly_the_uses(stores):
    state, store = stores
    made = store.create("ocean", _request(uses=120, days=5), actor="lead", at=NOW)
    results = {}
    barrier = threading.Barrier(30)

    def join(t):
        barrier.wait()
        for k in range(10):
            name = f"s{t}-{k}"
            results[name] = _redeem(store, made.code, name).result

    threads = [threading.Thread(target=join, args=(t,)) for t in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 300
    joined = sorted(n for n, r in results.items() if r == "joined")
    assert len(joined) == 120
    assert {r for r in results.values()} == {"joined", "used_up"}
    with store.engine.connect() as connection:
        rows = connection.execute(select(memberships.c.username)).scalars().all()
        uses = connection.execute(select(invitations.c.uses)).scalar_one()
    assert sorted(rows) == joined and uses == 120
    assert state.count() == 301
    assert state.verify() is None


def test_end_dates_and_removal(stores):
    state, store = stores
    ends = NOW + timedelta(days=3)
    made = store.create("ocean", _request(uses=5, ends=ends), actor="lead", at=NOW)
    for name in ("ann", "bob"):
        _redeem(store, made.code, name)
    cache = MembershipCache(store)
    assert cache.of("ann") == {"ocean"}
    store.remove("ocean", "bob", actor="lead", at=NOW + timedelta(days=1))
    assert cache.of("bob") == frozenset()  # a change through the store: read again
    with pytest.raises(NotFound):
        store.remove("ocean", "bob", actor="lead")
    assert [m["user"] for m in store.members("ocean", NOW + timedelta(days=1))] == [
        "ann"
    ]
    assert store.end_due(ends - timedelta(seconds=1)) == []
    assert store.end_due(ends) == [("ann", "ocean")]
    assert store.end_due(ends) == []
    assert store.active(ends) == {}
    pending = store.unapplied()
    assert sorted(n for _, n, _ in pending) == ["ann", "bob"]
    store.mark_applied([i for i, _, _ in pending], at=ends)
    assert store.unapplied() == []
    # a member again by a new invitation
    again = store.create("ocean", _request(days=5), actor="lead", at=NOW)
    assert (
        _redeem(store, again.code, "bob", at=NOW + timedelta(days=2)).result == "joined"
    )
    actions = [r.action for r in state.audit()]
    assert actions.count("membership.remove") == 1
    assert actions.count("membership.end") == 1
    assert state.verify() is None
