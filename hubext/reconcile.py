"""Bring the hub's groups and roles in line with the communities at start-up.

The hub's database outlives its configuration: a community can be removed,
renamed or added between two starts, and the rules of who belongs to which
community can change. At start-up, before the hub answers (JupyterHub's
``init_users``, at the first ``Authenticator.add_user``), hubext

- removes the JupyterHub groups that are no longer communities, so nobody
  keeps a removed community's membership (with ``manage_groups`` hubext owns
  every group);
- when the rules of some community are not the ones the database's
  memberships were last set with, matches every user's identity recorded at
  their last sign-in or refresh (``auth_state["hubext"]["atoms"]``) against
  the current rules, and sets their communities and community-admin roles
  to what the rules give, so a renamed or added community has its members
  at once.

Which rules a community's memberships were set with is recorded on its
group, ``properties["hubext"]["rules"]``: a digest of the community's
``members`` and ``admins`` rules (:func:`rules_fingerprint`). Sign-ins and
refreshes set a person's memberships with the same rules, so while every
community's digest matches, the database already holds what the rules give,
and a start reads no identity at all. The digests are written in the same
transaction as the memberships; every community gets a group, empty or not.

The reconciliation reads every recorded identity in one query, decrypts it
in this thread, matches it, compares the result with the memberships read in
one query, and writes only the differences, in bulk.

A user with no recorded identity (never signed in, or signed in before
hubext recorded it), or one that cannot be decrypted, keeps the memberships
of communities that still exist; the next refresh or sign-in sets them from
the provider.

The roles of removed communities are deleted by JupyterHub itself:
``reset_managed_roles_on_startup`` is on (see
:class:`~hubext.authenticator.CommunityAuthenticator`).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jupyterhub import orm
from jupyterhub.crypto import CryptKeeper, EncryptionUnavailable, InvalidToken
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import selectinload

from ._validation import show
from .accounts import AUTH_STATE_KEY
from .communities import Community
from .identity import atoms_from_json
from .roles import community_admin_role_name, community_of_admin_role
from .rules import Rule, RuleIndex

#: Bumped when what a community's rules give changes without the rules
#: changing (the matcher's semantics): every start then reconciles once.
RULES_VERSION = 1

#: Where a group records the digest of its community's rules.
GROUP_PROPERTY = AUTH_STATE_KEY

#: Per-person changes logged at INFO at one start; the rest at DEBUG.
LOGGED_CHANGES = 50

#: Per-person warnings about unreadable identities at one start.
LOGGED_UNREADABLE = 10

_USER_GROUPS = orm.User.groups.property.secondary
_USER_ROLES = orm.User.roles.property.secondary


def rules_fingerprint(community: Community) -> str:
    """A digest of what decides ``community``'s members and admins."""
    canonical = json.dumps(
        [RULES_VERSION, _canonical(community.members), _canonical(community.admins)],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(rules: Iterable[Rule]) -> list:
    return sorted(sorted([key, value] for key, value in rule) for rule in rules)


def recorded_fingerprint(group: orm.Group) -> str | None:
    """The digest of the rules ``group``'s memberships were set with, or None."""
    properties = group.properties
    mine = properties.get(GROUP_PROPERTY) if isinstance(properties, dict) else None
    rules = mine.get("rules") if isinstance(mine, dict) else None
    return rules if isinstance(rules, str) else None


def identity_atoms(auth_state: object) -> set[tuple[str, str]] | None:
    """The identity recorded in a decrypted ``auth_state``, or None."""
    if not isinstance(auth_state, dict):
        return None
    record = auth_state.get(AUTH_STATE_KEY)
    if not isinstance(record, dict):
        return None
    return atoms_from_json(record.get("atoms"))


def auth_state_decrypter(keeper: CryptKeeper | None = None) -> Callable[[bytes], Any]:
    """A function decrypting an ``auth_state`` with the hub's keys, in this thread.

    What ``jupyterhub.crypto.decrypt`` does, without its round-trip through a
    thread pool: at start-up, one per user costs more than the work. Raises
    ``EncryptionUnavailable`` if the hub has no key.
    """
    keeper = keeper or CryptKeeper.instance()
    keeper.check_available()
    fernet = keeper.fernet

    def decrypt(encrypted: bytes) -> Any:
        return json.loads(fernet.decrypt(encrypted).decode("utf8"))

    return decrypt


@dataclass(frozen=True)
class Wanted:
    """A person's communities and community-admin roles under the current rules."""

    groups: frozenset[str]
    admin_roles: frozenset[str]


def wanted_memberships(
    atoms: set[tuple[str, str]], rule_index: RuleIndex, communities: Container[str]
) -> Wanted:
    """What the rules give the identity ``atoms``. Pure."""
    memberships = rule_index.match(atoms)
    return Wanted(
        frozenset(m for m in memberships.member_of if m in communities),
        frozenset(community_admin_role_name(s) for s in memberships.admin_of),
    )


@dataclass
class Change:
    """One person's memberships before and after the reconciliation."""

    name: str
    groups_before: frozenset[str]
    groups_after: frozenset[str]
    roles_before: frozenset[str]
    roles_after: frozenset[str]


@dataclass
class Outcome:
    """What one start-up reconciliation found and did."""

    #: False when the rules of every community were those of the database.
    reconciled: bool
    removed_groups: list[str] = field(default_factory=list)
    #: Communities whose rules were not those of the database (new ones too).
    changed_rules: list[str] = field(default_factory=list)
    #: Users with a recorded identity, matched against the rules.
    identities: int = 0
    unreadable: int = 0
    changes: list[Change] = field(default_factory=list)
    seconds: float = 0.0


def preload_managed_roles(db) -> list[orm.Role]:
    """Load the services and groups of every role an authenticator manages.

    JupyterHub's ``init_role_assignment`` empties both lists of each managed
    role whose definition names none, loading each list first: two queries
    per community. Loaded here in three queries, they are in the session
    when it does, as long as the caller holds the returned roles (the
    session keeps only the objects something refers to).
    """
    return (
        db.query(orm.Role)
        .filter(orm.Role.managed_by_auth.is_(True))
        .options(selectinload(orm.Role.services), selectinload(orm.Role.groups))
        .all()
    )


def reconcile_at_startup(
    db,
    communities: Mapping[str, Community],
    rule_index: RuleIndex,
    log: logging.Logger,
    keeper: CryptKeeper | None = None,
) -> Outcome:
    """Bring every user's groups and admin roles in line with ``communities``.

    Changes are made in ``db``'s transaction, not committed (JupyterHub
    commits at the end of ``init_users``). ``log`` gets a summary line, and
    one line per person whose memberships changed (the first
    :data:`LOGGED_CHANGES` at INFO). ``keeper``: the hub's keys
    (``CryptKeeper.instance()`` by default).
    """
    with _collector_paused():
        return _reconcile(db, communities, rule_index, log, keeper)


def _reconcile(db, communities, rule_index, log, keeper) -> Outcome:
    started = time.perf_counter()
    outcome = Outcome(reconciled=False)
    fingerprints = {slug: rules_fingerprint(c) for slug, c in communities.items()}
    groups = {g.name: g for g in db.query(orm.Group)}
    outcome.changed_rules = sorted(
        slug
        for slug, fingerprint in fingerprints.items()
        if slug not in groups or recorded_fingerprint(groups[slug]) != fingerprint
    )
    admin_roles = {}
    if outcome.changed_rules:
        admin_roles = {
            role.name: role
            for role in db.query(orm.Role)
            if community_of_admin_role(role.name) is not None
        }
        # before the groups of removed communities go, for the log
        held = _held(db, groups, admin_roles)
    outcome.removed_groups = sorted(name for name in groups if name not in communities)
    for name in outcome.removed_groups:
        db.delete(groups.pop(name))
    if outcome.removed_groups:
        log.info(
            "hubext: removed groups of communities no longer configured: %s",
            ", ".join(outcome.removed_groups),
        )
        db.flush()
    if not outcome.changed_rules:
        outcome.seconds = time.perf_counter() - started
        log.info(
            "hubext: start-up: the rules of all %d communities are those the "
            "memberships were set with; no identity read (%.2f s)",
            len(fingerprints),
            outcome.seconds,
        )
        return outcome

    outcome.reconciled = True
    for slug in fingerprints:
        if slug not in groups:
            groups[slug] = orm.Group(name=slug)
            db.add(groups[slug])
    db.flush()
    differences = _differences(
        db, communities, rule_index, held, groups, admin_roles, log, keeper, outcome
    )
    _write(db, differences)
    for slug, fingerprint in fingerprints.items():
        group = groups[slug]
        if recorded_fingerprint(group) != fingerprint:
            properties = group.properties if isinstance(group.properties, dict) else {}
            group.properties = {**properties, GROUP_PROPERTY: {"rules": fingerprint}}
    db.flush()
    outcome.seconds = time.perf_counter() - started
    _log_outcome(log, outcome)
    return outcome


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector paused (reference counts still free).

    Reading every membership and matching every identity allocate millions
    of objects, nearly all short-lived; each full collection they trigger
    would walk every object of the hub (its users' database rows included),
    for nothing: 0.3 s at 20,000 users.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Differences:
    """(user id, group or role id) pairs to add and to drop."""

    add_groups: list[tuple[int, int]] = field(default_factory=list)
    drop_groups: list[tuple[int, int]] = field(default_factory=list)
    add_roles: list[tuple[int, int]] = field(default_factory=list)
    drop_roles: list[tuple[int, int]] = field(default_factory=list)


def _differences(
    db, communities, rule_index, held, groups, admin_roles, log, keeper, outcome
) -> _Differences:
    """Every readable recorded identity matched, and compared with ``held``.

    One query, one pass; ``groups``: the communities' groups (those of
    removed communities are gone with their memberships).
    """
    held_groups, held_roles = held
    todo = _Differences()
    try:
        decrypt = auth_state_decrypter(keeper)
    except EncryptionUnavailable as e:
        # (JupyterHub stops before this when auth_state is on and it has no key.)
        decrypt = _unavailable(e)
    rows = db.execute(
        select(orm.User.id, orm.User.name, orm.User.encrypted_auth_state).where(
            orm.User.encrypted_auth_state.is_not(None)
        )
    )
    for user_id, name, encrypted in rows:
        try:
            atoms = identity_atoms(decrypt(encrypted))
        except (ValueError, InvalidToken, EncryptionUnavailable) as e:
            outcome.unreadable += 1
            if outcome.unreadable <= LOGGED_UNREADABLE:
                log.warning(
                    "hubext: cannot read the recorded identity of %s at start-up "
                    "(%s); their communities are kept until their next sign-in",
                    show(name),
                    type(e).__name__,
                )
            continue
        if atoms is None:
            continue
        outcome.identities += 1
        want = wanted_memberships(atoms, rule_index, communities)
        had_groups = frozenset(held_groups.get(user_id, ()))
        had_roles = frozenset(held_roles.get(user_id, ()))
        # A role of a community is granted only if JupyterHub created it.
        roles = frozenset(r for r in want.admin_roles if r in admin_roles)
        if had_groups == want.groups and had_roles == roles:
            continue
        outcome.changes.append(Change(name, had_groups, want.groups, had_roles, roles))
        live = frozenset(g for g in had_groups if g in groups)
        todo.add_groups += [(user_id, groups[g].id) for g in want.groups - live]
        todo.drop_groups += [(user_id, groups[g].id) for g in live - want.groups]
        todo.add_roles += [(user_id, admin_roles[r].id) for r in roles - had_roles]
        todo.drop_roles += [(user_id, admin_roles[r].id) for r in had_roles - roles]
    if outcome.unreadable > LOGGED_UNREADABLE:
        log.warning(
            "hubext: cannot read the recorded identity of %d users in all "
            "(the first %d named above); their communities are kept",
            outcome.unreadable,
            LOGGED_UNREADABLE,
        )
    return todo


def _unavailable(error: Exception) -> Callable[[bytes], Any]:
    def decrypt(encrypted: bytes) -> Any:
        raise error

    return decrypt


def _held(db, groups, admin_roles):
    """Every user's groups and community-admin roles, by user id (two queries)."""
    group_names = {g.id: name for name, g in groups.items()}
    role_names = {r.id: name for name, r in admin_roles.items()}
    held_groups = defaultdict(set)
    for user_id, group_id in db.execute(
        select(_USER_GROUPS.c.user_id, _USER_GROUPS.c.group_id)
    ):
        held_groups[user_id].add(group_names[group_id])
    held_roles = defaultdict(set)
    for user_id, role_id in db.execute(
        select(_USER_ROLES.c.user_id, _USER_ROLES.c.role_id).where(
            _USER_ROLES.c.role_id.in_(role_names)
        )
    ):
        held_roles[user_id].add(role_names[role_id])
    return held_groups, held_roles


def _write(db, todo: _Differences) -> None:
    """Write the differences, in at most four statements."""
    for table, column, pairs in (
        (_USER_GROUPS, "group_id", todo.drop_groups),
        (_USER_ROLES, "role_id", todo.drop_roles),
    ):
        if pairs:
            db.execute(
                delete(table).where(
                    table.c.user_id == bindparam("u"), table.c[column] == bindparam("o")
                ),
                [{"u": u, "o": o} for u, o in pairs],
            )
    if todo.add_groups:
        db.execute(
            insert(_USER_GROUPS),
            [{"user_id": u, "group_id": g} for u, g in todo.add_groups],
        )
    if todo.add_roles:
        # as JupyterHub marks the roles an authenticator grants at sign-in
        db.execute(
            insert(_USER_ROLES),
            [
                {"user_id": u, "role_id": r, "managed_by_auth": True}
                for u, r in todo.add_roles
            ],
        )
    # What the session had loaded of these rows is out of date.
    groups = todo.add_groups + todo.drop_groups
    roles = todo.add_roles + todo.drop_roles
    _expire(db, orm.User, {u for u, _ in groups}, "groups")
    _expire(db, orm.User, {u for u, _ in roles}, "roles")
    _expire(db, orm.Group, {g for _, g in groups}, "users")
    _expire(db, orm.Role, {r for _, r in roles}, "users")


def _expire(db, cls, ids, attribute: str) -> None:
    for id_ in ids:
        loaded = db.identity_map.get(db.identity_key(cls, id_))
        if loaded is not None:
            db.expire(loaded, [attribute])


def _log_outcome(log, outcome: Outcome) -> None:
    for i, change in enumerate(outcome.changes):
        level = logging.INFO if i < LOGGED_CHANGES else logging.DEBUG
        if change.groups_before != change.groups_after:
            log.log(
                level,
                "hubext: %s: communities %s -> %s (current rules, recorded identity)",
                show(change.name),
                sorted(change.groups_before),
                sorted(change.groups_after),
            )
        if change.roles_before != change.roles_after:
            log.log(
                level,
                "hubext: %s: community-admin roles set to %s",
                show(change.name),
                sorted(change.roles_after),
            )
    joined, left = Counter(), Counter()
    for change in outcome.changes:
        joined.update(change.groups_after - change.groups_before)
        left.update(change.groups_before - change.groups_after)
    moves = [
        f"{slug} {'+' if sign > 0 else '-'}{n}"
        for slug, sign, n in sorted(
            [(s, 1, n) for s, n in joined.items()]
            + [(s, -1, n) for s, n in left.items()]
        )
    ]
    more = len(outcome.changes) - LOGGED_CHANGES
    log.info(
        "hubext: start-up: communities of %d users matched against the current "
        "rules (new or changed for %s) in %.2f s: %d changed%s%s%s",
        outcome.identities,
        _some(outcome.changed_rules),
        outcome.seconds,
        len(outcome.changes),
        f" ({_some(moves)})" if moves else "",
        f"; {more} of them logged at DEBUG level" if more > 0 else "",
        f"; {outcome.unreadable} identities unreadable" if outcome.unreadable else "",
    )


def _some(items: list[str], shown: int = 10) -> str:
    """The first ``shown`` items, and how many more."""
    text = ", ".join(items[:shown])
    return f"{text} and {len(items) - shown} more" if len(items) > shown else text
