"""The start-up reconciliation on JupyterHub's real database schema (SQLite).

- The bulk reconciliation (:func:`hubext.reconcile.reconcile_at_startup`)
  gives exactly what the per-user reconciliation of hubext 0.1 gave (kept
  here as the reference, :func:`reference_reconcile`), on random users,
  memberships and changes of the communities: removed, renamed, added,
  other rules.
- It reads no identity while every community's rules are those its group
  recorded, and its database work does not grow with the number of users.
- The digest of a community's rules changes exactly when what they decide
  changes.
"""

from __future__ import annotations

import json
import logging
import os
import random

import pytest
from jupyterhub import orm, roles
from jupyterhub.crypto import CryptKeeper, EncryptionUnavailable, InvalidToken
from sqlalchemy import event
from sqlalchemy.orm import object_session
from traitlets.config import Config

from hubext import Communities
from hubext.accounts import AUTH_STATE_KEY
from hubext.identity import atoms_from_json
from hubext.reconcile import (
    GROUP_PROPERTY,
    identity_atoms,
    reconcile_at_startup,
    recorded_fingerprint,
    rules_fingerprint,
)
from hubext.roles import (
    community_admin_role_name,
    community_admin_roles,
    community_of_admin_role,
)

LOG = logging.getLogger("test-reconcile")


def reconcile(db, communities: Communities, keeper=None):
    """hubext's start-up reconciliation, logging to ``LOG``."""
    # (Making a database runs alembic, whose logging configuration disables
    # the loggers that exist.)
    LOG.disabled = False
    return reconcile_at_startup(
        db, communities.registry, communities.rule_index, LOG, keeper=keeper
    )


def communities_of(config: dict) -> Communities:
    c = Config()
    c.Communities.communities = config
    return Communities(config=c)


class Lines(logging.Handler):
    """The messages logged to ``LOG``, with their levels."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def lines():
    # (caplog's handler on the root logger is removed by alembic's logging
    # configuration when a database is made)
    handler = Lines()
    LOG.addHandler(handler)
    LOG.setLevel(logging.DEBUG)
    yield handler
    LOG.removeHandler(handler)


@pytest.fixture
def keeper():
    return CryptKeeper(keys=[os.urandom(32)])


# -- the reference: hubext 0.1's per-user reconciliation ----------------------


async def reference_user(orm_user, rule_index, communities, keeper) -> None:
    """hubext 0.1's ``reconcile_user_at_startup``, one user at a time."""
    if orm_user.encrypted_auth_state is None:
        return
    try:
        auth_state = await keeper.decrypt(orm_user.encrypted_auth_state)
    except (ValueError, InvalidToken, EncryptionUnavailable):
        return
    state = (auth_state or {}).get(AUTH_STATE_KEY) or {}
    atoms = atoms_from_json(state.get("atoms"))
    if atoms is None:
        return
    db = object_session(orm_user)
    memberships = rule_index.match(atoms)
    member_of = sorted(m for m in memberships.member_of if m in communities)
    groups = []
    for name in member_of:
        group = orm.Group.find(db, name)
        if group is None:
            group = orm.Group(name=name)
            db.add(group)
        groups.append(group)
    if sorted(g.name for g in orm_user.groups) != member_of:
        orm_user.groups = groups
    wanted = {community_admin_role_name(s) for s in memberships.admin_of}
    kept = [
        r
        for r in orm_user.roles
        if community_of_admin_role(r.name) is None or r.name in wanted
    ]
    held = {r.name for r in kept}
    for name in sorted(wanted - held):
        role = orm.Role.find(db, name)
        if role is not None:
            kept.append(role)
    if {r.name for r in kept} != {r.name for r in orm_user.roles}:
        orm_user.roles = kept


async def reference_reconcile(db, communities: Communities, keeper) -> None:
    """hubext 0.1's start-up: the stale groups, then each user."""
    for group in db.query(orm.Group).order_by(orm.Group.name):
        if group.name not in communities.registry:
            db.delete(group)
    for user in db.query(orm.User).order_by(orm.User.id):
        await reference_user(user, communities.rule_index, communities.registry, keeper)
    db.commit()


# -- random hubs --------------------------------------------------------------

SLUGS = [f"c{i}" for i in range(7)]
PROVIDERS = ["uni", "gh"]
CLAIM_GROUPS = [f"g{i}" for i in range(6)]
DOMAINS = [f"d{i}.example.org" for i in range(3)]


def random_rule(rng: random.Random) -> dict:
    choices = {
        "provider": lambda: rng.choice(PROVIDERS),
        "group": lambda: rng.choice(CLAIM_GROUPS),
        "email_domain": lambda: rng.choice(DOMAINS),
        "username": lambda: f"u{rng.randrange(12)}",
    }
    keys = rng.sample(sorted(choices), rng.choice([1, 1, 2]))
    return {key: choices[key]() for key in keys}


def random_communities(rng: random.Random) -> dict:
    return {
        slug: {
            "members": [random_rule(rng) for _ in range(rng.randrange(3))],
            "admins": [random_rule(rng) for _ in range(rng.choice([0, 0, 1]))],
        }
        for slug in rng.sample(SLUGS, rng.randint(1, 5))
    }


def changed_communities(rng: random.Random, before: dict) -> dict:
    """``before`` with some communities removed, renamed, added or re-ruled."""
    after = dict(before)
    for slug in list(after):
        action = rng.choice(["keep", "keep", "remove", "rename", "rules"])
        if action == "remove":
            del after[slug]
        elif action == "rename":
            free = [s for s in SLUGS if s not in after]
            if free:
                after[rng.choice(free)] = after.pop(slug)
        elif action == "rules":
            after[slug] = {
                "members": [random_rule(rng) for _ in range(rng.randrange(3))],
                "admins": [random_rule(rng) for _ in range(rng.choice([0, 1]))],
            }
    if rng.random() < 0.5:
        free = [s for s in SLUGS if s not in after]
        if free:
            after[rng.choice(free)] = {"members": [random_rule(rng)]}
    return after


def random_person(rng: random.Random, i: int) -> dict:
    """One user: what is recorded of them, and what they hold before the start."""
    kind = rng.choices(
        ["identity", "no-auth-state", "other-key", "no-record", "no-atoms"],
        weights=[10, 1, 1, 1, 1],
    )[0]
    atoms = {("provider", rng.choice(PROVIDERS)), ("username", f"u{i % 12}")}
    atoms |= {("group", g) for g in rng.sample(CLAIM_GROUPS, rng.randrange(4))}
    atoms |= {("email_domain", d) for d in rng.sample(DOMAINS, rng.randrange(2))}
    return {
        "name": f"person-{i}",
        "kind": kind,
        "atoms": sorted([k, v] for k, v in atoms),
        "groups": rng.sample([*SLUGS, "not-a-community"], rng.randrange(4)),
        "admin_of": rng.sample(SLUGS, rng.choice([0, 0, 1, 2])),
    }


def auth_state_of(person: dict) -> dict | None:
    if person["kind"] == "no-auth-state":
        return None
    state = {"access_token": "x" * 20, "oauth_user": {"sub": person["name"]}}
    if person["kind"] == "no-record":
        return state
    record = {"provider": "uni", "subject": person["name"]}
    if person["kind"] != "no-atoms":
        record["atoms"] = person["atoms"]
    return {**state, AUTH_STATE_KEY: record}


def build_hub(people, before: Communities, after: Communities, keeper):
    """A database as the hub had it (communities ``before``), after JupyterHub's
    own start-up steps for ``after`` that precede hubext's (roles)."""
    db = orm.new_session_factory("sqlite:///:memory:")()
    other_key = CryptKeeper(keys=[os.urandom(32)])
    for spec in roles.get_default_roles():
        roles.create_role(db, spec, commit=False)
    roles.create_role(db, {"name": "extra", "scopes": ["self"]}, commit=False)
    for spec in community_admin_roles(before):
        roles.create_role(db, {**spec, "managed_by_auth": True}, commit=False)
    db.commit()
    groups = {}
    for person in people:
        state = auth_state_of(person)
        encrypted = None
        if state is not None:
            fernet = (other_key if person["kind"] == "other-key" else keeper).fernet
            encrypted = fernet.encrypt(json.dumps(state).encode())
        user = orm.User(name=person["name"], encrypted_auth_state=encrypted)
        db.add(user)
        for name in person["groups"]:
            if name not in groups:
                groups[name] = orm.Group(name=name)
                db.add(groups[name])
            user.groups.append(groups[name])
        user.roles = [orm.Role.find(db, "user"), orm.Role.find(db, "extra")] + [
            role
            for slug in person["admin_of"]
            if (role := orm.Role.find(db, community_admin_role_name(slug)))
        ]
    db.commit()
    # JupyterHub's init_role_creation (reset_managed_roles_on_startup)
    wanted = {spec["name"] for spec in community_admin_roles(after)}
    for role in db.query(orm.Role).filter(orm.Role.managed_by_auth.is_(True)):
        if role.name not in wanted:
            db.delete(role)
    for spec in community_admin_roles(after):
        roles.create_role(db, {**spec, "managed_by_auth": True}, commit=False)
    db.commit()
    return db


def state_of(db) -> dict:
    """Every user's groups and roles, and the groups that have members."""
    users = {
        u.name: (sorted(g.name for g in u.groups), sorted(r.name for r in u.roles))
        for u in db.query(orm.User)
    }
    with_members = sorted(g.name for g in db.query(orm.Group) if g.users)
    return {"users": users, "groups with members": with_members}


@pytest.mark.parametrize("seed", range(40))
async def test_bulk_reconciliation_gives_what_the_per_user_one_gave(seed, keeper):
    rng = random.Random(seed)
    before_config = random_communities(rng)
    before = communities_of(before_config)
    after = communities_of(
        changed_communities(rng, before_config) if seed % 4 else before_config
    )
    people = [random_person(rng, i) for i in range(rng.randint(5, 25))]

    reference_db = build_hub(people, before, after, keeper)
    await reference_reconcile(reference_db, after, keeper)
    db = build_hub(people, before, after, keeper)
    outcome = reconcile(db, after, keeper)
    db.commit()

    assert outcome.reconciled  # no group recorded its rules before
    assert state_of(db) == state_of(reference_db)
    # every community has its group (empty or not), recording its rules
    groups = {g.name: g for g in db.query(orm.Group)}
    assert set(groups) == set(after.registry)
    for slug, community in after.registry.items():
        assert recorded_fingerprint(groups[slug]) == rules_fingerprint(community)
    # a user whose recorded identity cannot be read keeps their communities
    for person in people:
        if person["kind"] != "identity":
            kept = sorted(set(person["groups"]) & set(after.registry))
            assert state_of(db)["users"][person["name"]][0] == kept

    # The next start with the same communities reads no identity, changes nothing.
    again = reconcile(db, after)
    assert not again.reconciled and not again.changes
    assert not db.dirty and not db.new and not db.deleted
    await reference_reconcile(reference_db, after, keeper)
    assert state_of(db) == state_of(reference_db)


# -- what a start reads and writes ----------------------------------------------

COMMUNITIES = {
    "ocean-lab": {
        "members": [{"provider": "uni", "group": "ocean"}],
        "admins": [{"provider": "uni", "group": "ocean-admins"}],
    },
    "astro-101": {"members": [{"email_domain": "astro.example.edu"}]},
}


def hub_with_users(n: int, keeper, communities: Communities):
    people = [
        {
            "name": f"person-{i}",
            "kind": "identity",
            "atoms": [
                ["email_domain", "astro.example.edu" if i % 2 else "x.org"],
                ["group", "ocean"],
                *([["group", "ocean-admins"]] if i % 5 == 0 else []),
                ["provider", "uni"],
                ["username", f"u{i}"],
            ],
            "groups": [],
            "admin_of": [],
        }
        for i in range(n)
    ]
    return build_hub(people, communities, communities, keeper)


class Statements:
    """The SQL statements a session's engine runs while counting."""

    def __init__(self, db):
        self.engine = db.get_bind()
        self.seen: list[str] = []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append(statement.split()[0].upper())

    def writes(self) -> list[str]:
        return [s for s in self.seen if s in ("INSERT", "UPDATE", "DELETE")]


def test_database_work_does_not_grow_with_users(keeper):
    communities = communities_of(COMMUNITIES)
    counts = {}
    for n in (10, 60):
        db = hub_with_users(n, keeper, communities)
        with Statements(db) as first:
            outcome = reconcile(db, communities, keeper)
            db.commit()
        assert outcome.reconciled and outcome.identities == n
        assert len(outcome.changes) == n  # all joined their communities
        with Statements(db) as second:
            again = reconcile(db, communities, keeper)
            db.commit()
        assert not again.reconciled
        assert second.writes() == []
        counts[n] = (first.seen, second.seen)
    assert counts[10] == counts[60]


def test_nothing_is_written_when_the_memberships_are_already_right(keeper):
    communities = communities_of(COMMUNITIES)
    db = hub_with_users(20, keeper, communities)
    reconcile(db, communities, keeper)
    db.commit()
    # The digests are lost (a hub upgraded from hubext 0.1): everything is
    # matched again, and only the digests are written.
    for group in db.query(orm.Group):
        group.properties = {}
    db.commit()
    before = state_of(db)
    with Statements(db) as statements:
        outcome = reconcile(db, communities, keeper)
        db.commit()
    assert outcome.reconciled and outcome.identities == 20 and not outcome.changes
    assert statements.writes() == ["UPDATE"]  # the groups' properties, one statement
    assert state_of(db) == before


def test_removing_a_community_reads_no_identity(keeper, lines):
    communities = communities_of(COMMUNITIES)
    db = hub_with_users(10, keeper, communities)
    reconcile(db, communities, keeper)
    db.commit()
    fewer = communities_of({"ocean-lab": COMMUNITIES["ocean-lab"]})
    lines.records.clear()
    outcome = reconcile(db, fewer)
    db.commit()
    assert not outcome.reconciled and outcome.removed_groups == ["astro-101"]
    assert {g.name for g in db.query(orm.Group)} == {"ocean-lab"}
    assert all([g.name for g in u.groups] == ["ocean-lab"] for u in db.query(orm.User))
    removed, summary = lines.at(logging.INFO)
    assert removed == (
        "hubext: removed groups of communities no longer configured: astro-101"
    )
    assert summary.startswith(
        "hubext: start-up: the rules of all 1 communities are those the "
        "memberships were set with; no identity read ("
    )


def test_changes_are_logged_one_line_each_and_summed_up(keeper, lines):
    communities = communities_of(COMMUNITIES)
    db = hub_with_users(3, keeper, communities)
    reconcile(db, communities, keeper)
    lines = lines.at(logging.INFO)
    assert (
        "hubext: 'person-0': communities [] -> ['ocean-lab'] "
        "(current rules, recorded identity)" in lines
    )
    assert (
        "hubext: 'person-0': community-admin roles set to "
        "['community-admin-ocean-lab']" in lines
    )
    assert (
        "hubext: 'person-1': communities [] -> ['astro-101', 'ocean-lab'] "
        "(current rules, recorded identity)" in lines
    )
    summary = lines[-1]
    assert summary.startswith("hubext: start-up: communities of 3 users matched")
    assert "3 changed (astro-101 +1, ocean-lab +3)" in summary


def test_unreadable_identities_are_warned_about_by_name_up_to_a_bound(keeper, lines):
    communities = communities_of(COMMUNITIES)
    db = hub_with_users(14, keeper, communities)
    other = CryptKeeper(keys=[os.urandom(32)])
    outcome = reconcile(db, communities, other)
    assert outcome.unreadable == 14 and outcome.identities == 0
    warnings = lines.at(logging.WARNING)
    assert len(warnings) == 11
    assert warnings[0] == (
        "hubext: cannot read the recorded identity of 'person-0' at start-up "
        "(InvalidToken); their communities are kept until their next sign-in"
    )
    assert "of 14 users in all" in warnings[-1]


# -- the digest of a community's rules ------------------------------------------------


def fingerprint(definition: dict) -> str:
    return rules_fingerprint(communities_of({"c": definition}).registry["c"])


BASE = {
    "display_name": "C",
    "members": [{"provider": "uni", "group": "g1"}, {"email_domain": "x.org"}],
    "admins": [{"group": "g1-admins"}],
}


@pytest.mark.parametrize(
    ("other", "same"),
    [
        ({**BASE, "display_name": "Another name"}, True),
        ({**BASE, "members": BASE["members"][::-1]}, True),
        (
            {
                **BASE,
                "members": [
                    {"group": "G1", "provider": "UNI"},
                    {"email_domain": "X.org"},
                ],
            },
            True,
        ),
        ({**BASE, "culling": {"idle_timeout": 600}}, True),
        ({**BASE, "members": BASE["members"][:1]}, False),
        ({**BASE, "members": [{"provider": "uni"}, {"email_domain": "x.org"}]}, False),
        ({**BASE, "admins": []}, False),
        ({**BASE, "admins": BASE["members"]}, False),
        ({**BASE, "members": BASE["admins"], "admins": BASE["members"]}, False),
    ],
    ids=[
        "display-name",
        "rule-order",
        "case-and-key-order",
        "other-keys",
        "a-member-rule-less",
        "a-member-rule-changed",
        "no-admins",
        "other-admins",
        "members-and-admins-swapped",
    ],
)
def test_the_digest_changes_with_what_the_rules_decide(other, same):
    assert (fingerprint(other) == fingerprint(BASE)) is same


@pytest.mark.parametrize(
    ("properties", "recorded"),
    [
        ({}, None),
        ({GROUP_PROPERTY: {"rules": "abc"}}, "abc"),
        ({GROUP_PROPERTY: {"rules": 3}}, None),
        ({GROUP_PROPERTY: "abc"}, None),
        ({"other": 1, GROUP_PROPERTY: {"rules": "abc", "more": 1}}, "abc"),
    ],
)
def test_recorded_fingerprint(properties, recorded):
    assert recorded_fingerprint(orm.Group(name="g", properties=properties)) == recorded


@pytest.mark.parametrize(
    ("auth_state", "atoms"),
    [
        (None, None),
        ([], None),
        ({}, None),
        ({AUTH_STATE_KEY: "x"}, None),
        ({AUTH_STATE_KEY: {}}, None),
        ({AUTH_STATE_KEY: {"atoms": "x"}}, None),
        ({AUTH_STATE_KEY: {"atoms": []}}, set()),
        (
            {AUTH_STATE_KEY: {"atoms": [["group", "g"], ["bad"], [1, "x"]]}},
            {("group", "g")},
        ),
    ],
)
def test_identity_atoms(auth_state, atoms):
    assert identity_atoms(auth_state) == atoms
