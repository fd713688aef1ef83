"""A community's members as the hub records them, with the identity each
signed in with (read from the hub's database, decrypted in a thread).

The members are the JupyterHub group of the community; its admins hold the
role ``community-admin-<slug>``. Why each is a member is read from the
identity hubext recorded at their last sign-in or refresh
(``auth_state["hubext"]["atoms"]``, encrypted with the hub's
``JUPYTERHUB_CRYPT_KEY``) and the community's rules
(:func:`hubext.console.view.why`). Nothing else of the auth_state (the
provider's tokens) leaves this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jupyterhub import orm
from jupyterhub.crypto import CryptKeeper
from sqlalchemy import select

from ..accounts import AUTH_STATE_KEY
from ..identity import atoms_from_json
from ..roles import community_admin_role_name
from .view import Member

_USER_GROUPS = orm.User.groups.property.secondary
_USER_ROLES = orm.User.roles.property.secondary

#: What :func:`read_members` gives :func:`members_of`: ``(name, admin,
#: encrypted auth_state or None)`` per member.
Row = tuple[str, bool, bytes | None]


def read_members(db, community: str) -> list[Row]:
    """The members of ``community`` and its admins, from the hub's database
    (two queries; run them where the hub runs its own, on its event loop).

    Each reads the ids in the group (the role) first and then those users by
    their primary key: the hub's tables have no index that starts with the
    group's id, and a join from ``users`` makes SQLite read every user (with
    their encrypted auth_state) to find the few in the community. So the cost
    follows the community's size (plus a narrow scan of the membership
    table's covering index), not the hub's."""
    group_ids = (
        select(_USER_GROUPS.c.user_id)
        .join(orm.Group, orm.Group.id == _USER_GROUPS.c.group_id)
        .where(orm.Group.name == community)
    )
    in_group = db.execute(
        select(orm.User.name, orm.User.encrypted_auth_state).where(
            orm.User.id.in_(group_ids)
        )
    ).all()
    role_ids = (
        select(_USER_ROLES.c.user_id)
        .join(orm.Role, orm.Role.id == _USER_ROLES.c.role_id)
        .where(orm.Role.name == community_admin_role_name(community))
    )
    admins = {
        name
        for (name,) in db.execute(
            select(orm.User.name).where(orm.User.id.in_(role_ids))
        ).all()
    }
    rows = [(name, name in admins, encrypted) for name, encrypted in in_group]
    # an admin is a member (the rules make them one); one not in the group
    # (roles and groups out of step) is shown all the same
    known = {name for name, _, _ in rows}
    rows += [(name, True, None) for name in sorted(admins - known)]
    return sorted(rows)


def _decrypter() -> Callable[[bytes], Any] | None:
    """Decrypt an auth_state with the hub's keys, in this thread (as
    :func:`hubext.reconcile.auth_state_decrypter`); None without keys."""
    keeper = CryptKeeper.instance()
    try:
        keeper.check_available()
    except Exception:
        return None
    fernet = keeper.fernet
    return lambda encrypted: json.loads(fernet.decrypt(encrypted).decode("utf8"))


def _atoms(decrypt, encrypted: bytes | None) -> frozenset | None:
    if encrypted is None or decrypt is None:
        return None
    try:
        state = decrypt(encrypted)
    except Exception:
        return None
    record = state.get(AUTH_STATE_KEY) if isinstance(state, dict) else None
    atoms = atoms_from_json(record.get("atoms")) if isinstance(record, dict) else None
    return frozenset(atoms) if atoms is not None else None


def members_of(rows: list[Row]) -> list[Member]:
    """The members with their recorded identities (blocking: decrypts; run
    it in a thread)."""
    decrypt = _decrypter()
    return [
        Member(name, admin, _atoms(decrypt, encrypted))
        for name, admin, encrypted in rows
    ]
