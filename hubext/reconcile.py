"""Bring the hub's groups and roles in line with the communities at start-up.

The hub's database outlives its configuration: a community can be removed,
renamed or added between two starts, and the rules of who belongs to which
community can change. At start-up, JupyterHub hands every user in its
database to ``Authenticator.add_user``; for each one, hubext

- removes the JupyterHub groups that are no longer communities (once, for
  the whole hub: with ``manage_groups`` hubext owns every group), so nobody
  keeps a removed community's membership, and
- recomputes the person's communities and community-admin roles from the
  identity recorded at their last sign-in or refresh
  (``auth_state["hubext"]["atoms"]``), against the current rules, so a
  renamed or added community has its members at once.

A user with no recorded identity (never signed in, or signed in before
hubext recorded it) keeps the memberships of communities that still exist;
the next refresh or sign-in sets them from the provider.

The roles of removed communities are deleted by JupyterHub itself:
``reset_managed_roles_on_startup`` is on (see
:class:`~hubext.authenticator.CommunityAuthenticator`).
"""

from __future__ import annotations

import logging
from collections.abc import Container

from jupyterhub import orm
from jupyterhub.crypto import EncryptionUnavailable, InvalidToken, decrypt
from sqlalchemy.orm import object_session

from .accounts import AUTH_STATE_KEY
from .identity import atoms_from_json
from .roles import community_admin_role_name, community_of_admin_role
from .rules import RuleIndex

log = logging.getLogger(__name__)


def remove_stale_groups(db, communities: Container[str]) -> list[str]:
    """Delete every JupyterHub group that is not a community; return their names."""
    removed = []
    for group in db.query(orm.Group).order_by(orm.Group.name):
        if group.name not in communities:
            removed.append(group.name)
            db.delete(group)
    return removed


async def recorded_atoms(orm_user: orm.User) -> set[tuple[str, str]] | None:
    """The identity recorded at the user's last sign-in, or None."""
    if orm_user.encrypted_auth_state is None:
        return None
    try:
        auth_state = await decrypt(orm_user.encrypted_auth_state)
    except (ValueError, InvalidToken, EncryptionUnavailable) as e:
        log.warning(
            "hubext: cannot read the recorded identity of %r at start-up (%s); "
            "their communities are kept until their next sign-in",
            orm_user.name,
            type(e).__name__,
        )
        return None
    state = (auth_state or {}).get(AUTH_STATE_KEY) or {}
    return atoms_from_json(state.get("atoms"))


async def reconcile_user_at_startup(
    orm_user: orm.User, rule_index: RuleIndex, communities: Container[str]
) -> None:
    """Set the user's community groups and admin roles from their recorded identity."""
    atoms = await recorded_atoms(orm_user)
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
    before = sorted(g.name for g in orm_user.groups)
    if before != member_of:
        log.info(
            "hubext: %s: communities %s -> %s (current rules, recorded identity)",
            orm_user.name,
            before,
            member_of,
        )
        orm_user.groups = groups
    wanted = {community_admin_role_name(s) for s in memberships.admin_of}
    roles = [
        r
        for r in orm_user.roles
        if community_of_admin_role(r.name) is None or r.name in wanted
    ]
    held = {r.name for r in roles}
    for name in sorted(wanted - held):
        role = orm.Role.find(db, name)
        if role is not None:
            roles.append(role)
    if {r.name for r in roles} != {r.name for r in orm_user.roles}:
        log.info(
            "hubext: %s: community-admin roles set to %s",
            orm_user.name,
            sorted(r.name for r in roles if community_of_admin_role(r.name)),
        )
        orm_user.roles = roles
