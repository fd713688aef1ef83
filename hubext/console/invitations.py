"""Invitations, their redemptions and the memberships they give, in the state's database.

Three tables beside the delegated state and its audit log (migration
``0002``):

- ``hubext_invitations``: per invitation its community, kind (``personal``
  or ``code``), the SHA-256 of its code only (:func:`hubext.invitations.code_hash`),
  who made it and when, expiry, uses allowed and made, the end date of the
  memberships it gives, and when and by whom it was revoked;
- ``hubext_redemptions``: every attempt to redeem a code by a signed-in
  person, joined or refused (the hub account, bound to the provider and
  subject it records, and the result);
- ``hubext_memberships``: the memberships invitations gave: account,
  community, the invitation, its end date, when it ended (end date reached
  or removed by a community admin) and when the hub applied the loss.

Every write takes the audit log's lock (:func:`hubext.database.exclusive_write`)
and appends its audit row in the same transaction: invitations made and
revoked, redemptions and refusals, memberships ended and removed. The lock
serializes redemptions, so that a code with N uses gives exactly N
memberships whatever the number of people redeeming it at once, on SQLite
and PostgreSQL. Blocking calls: the hub runs them in a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    and_,
    insert,
    or_,
    select,
    update,
)

from .. import invitations as pure
from ..database import UTCDateTime, exclusive_write
from ..slugs import COMMUNITY_SLUG_MAX_LENGTH
from .model import ACTOR_MAX_LENGTH, AUDIT_TABLE, metadata
from .store import StateStore, _check_community, _moment

INVITATIONS_TABLE = "hubext_invitations"
REDEMPTIONS_TABLE = "hubext_redemptions"
MEMBERSHIPS_TABLE = "hubext_memberships"

#: The actor of the ends the hub applies by itself (an end date reached).
HUB_ACTOR = "hubext"

invitations = Table(
    INVITATIONS_TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("community", String(COMMUNITY_SLUG_MAX_LENGTH), nullable=False),
    Column("kind", String(16), nullable=False),
    # SHA-256 of the code, hex; the code itself is never stored
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("note", String(pure.NOTE_MAX_LENGTH), nullable=False),
    Column("created_by", String(ACTOR_MAX_LENGTH), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("max_uses", Integer, nullable=False),
    Column("uses", Integer, nullable=False),
    Column("membership_ends_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", String(ACTOR_MAX_LENGTH), nullable=True),
    Index("ix_hubext_invitations_community", "community"),
)

redemptions = Table(
    REDEMPTIONS_TABLE,
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    # None: a code that is no invitation
    Column(
        "invitation_id", Integer, ForeignKey(f"{INVITATIONS_TABLE}.id"), nullable=True
    ),
    Column("community", String(COMMUNITY_SLUG_MAX_LENGTH), nullable=True),
    Column("username", String(ACTOR_MAX_LENGTH), nullable=False),
    Column("provider", String(ACTOR_MAX_LENGTH), nullable=True),
    Column("subject", String(ACTOR_MAX_LENGTH), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("result", String(32), nullable=False),
    Index("ix_hubext_redemptions_invitation", "invitation_id"),
)

memberships = Table(
    MEMBERSHIPS_TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(ACTOR_MAX_LENGTH), nullable=False),
    Column("community", String(COMMUNITY_SLUG_MAX_LENGTH), nullable=False),
    Column(
        "invitation_id", Integer, ForeignKey(f"{INVITATIONS_TABLE}.id"), nullable=False
    ),
    Column("provider", String(ACTOR_MAX_LENGTH), nullable=False),
    Column("subject", String(ACTOR_MAX_LENGTH), nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=True),
    # when it ended: its end date reached, or removed (removed_by)
    Column("ended_at", UTCDateTime, nullable=True),
    Column("removed_by", String(ACTOR_MAX_LENGTH), nullable=True),
    # when the hub took the community away from the account
    Column("applied_at", UTCDateTime, nullable=True),
    Index("ix_hubext_memberships_user", "username", "community"),
    Index("ix_hubext_memberships_community", "community"),
)


@dataclass(frozen=True)
class Made:
    """An invitation just made: its row and its code (shown once)."""

    invitation: dict[str, Any]
    code: str


@dataclass(frozen=True)
class Redemption:
    """What a redemption gave: ``result`` is ``joined`` or a refusal's key."""

    result: str
    community: str | None
    invitation_id: int | None = None
    membership_ends_at: datetime | None = None


class NotFound(LookupError):
    """No such invitation, or no such membership, in this community."""


def public(row) -> dict[str, Any]:
    """An invitation as the console shows it (never its code's hash)."""
    return {
        "id": row.id,
        "community": row.community,
        "kind": row.kind,
        "note": row.note,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "max_uses": row.max_uses,
        "uses": row.uses,
        "membership_ends_at": row.membership_ends_at.isoformat()
        if row.membership_ends_at
        else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "revoked_by": row.revoked_by,
    }


def _active(now: datetime):
    return and_(
        memberships.c.ended_at.is_(None),
        or_(memberships.c.ends_at.is_(None), memberships.c.ends_at > now),
    )


class InvitationStore:
    """Invitations and the memberships they give, in ``state``'s database,
    logged in ``state``'s audit log. Every method blocks."""

    def __init__(self, state: StateStore) -> None:
        self.state = state
        self.engine = state.engine
        self.clock = state.clock
        self._generation = 0

    def _now(self, at: datetime | None) -> datetime:
        return _moment(self.clock() if at is None else at)

    def _changed(self) -> None:
        self._generation += 1

    # -- invitations ----------------------------------------------------------

    def create(
        self,
        community: str,
        request: pure.Request,
        *,
        actor: str,
        actor_kind: str = "user",
        at: datetime | None = None,
        code: str | None = None,
    ) -> Made:
        """Make an invitation (``request`` checked by
        :func:`hubext.invitations.check_request`); its code is returned once."""
        _check_community(community)
        at = self._now(at)
        code = code or pure.new_code()
        with exclusive_write(self.engine, AUDIT_TABLE) as connection:
            new_id = connection.execute(
                insert(invitations)
                .values(
                    community=community,
                    kind=request.kind,
                    code_hash=pure.code_hash(code),
                    note=request.note,
                    created_by=actor,
                    created_at=at,
                    expires_at=request.expires_at,
                    max_uses=request.max_uses,
                    uses=0,
                    membership_ends_at=request.membership_ends_at,
                )
                .returning(invitations.c.id)
            ).scalar_one()
            row = connection.execute(
                select(invitations).where(invitations.c.id == new_id)
            ).one()
            made = public(row)
            audit_row = self.state._append(
                connection,
                at=at,
                actor=actor,
                actor_kind=actor_kind,
                community=community,
                action="invitation.create",
                version=None,
                before=None,
                after=made,
            )
        self.state._logged(audit_row)
        return Made(made, code)

    def revoke(
        self,
        community: str,
        invitation_id: int,
        *,
        actor: str,
        actor_kind: str = "user",
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Revoke an invitation of ``community`` (:class:`NotFound` otherwise);
        revoking a revoked one changes nothing and logs nothing."""
        at = self._now(at)
        with exclusive_write(self.engine, AUDIT_TABLE) as connection:
            row = connection.execute(
                select(invitations).where(
                    invitations.c.id == invitation_id,
                    invitations.c.community == community,
                )
            ).first()
            if row is None:
                raise NotFound(f"no invitation {invitation_id} in {community}")
            if row.revoked_at is not None:
                return public(row)
            connection.execute(
                update(invitations)
                .where(invitations.c.id == invitation_id)
                .values(revoked_at=at, revoked_by=actor)
            )
            after = public(
                connection.execute(
                    select(invitations).where(invitations.c.id == invitation_id)
                ).one()
            )
            audit_row = self.state._append(
                connection,
                at=at,
                actor=actor,
                actor_kind=actor_kind,
                community=community,
                action="invitation.revoke",
                version=None,
                before=public(row),
                after=after,
            )
        self.state._logged(audit_row)
        return after

    def list(self, community: str) -> list[dict[str, Any]]:
        """The invitations of ``community``, newest first, each with who
        redeemed it (``redeemed_by``: account, when, result)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(invitations)
                .where(invitations.c.community == community)
                .order_by(invitations.c.id.desc())
            ).all()
            found = connection.execute(
                select(redemptions)
                .where(redemptions.c.community == community)
                .order_by(redemptions.c.id)
            ).all()
        by_invitation: dict[int, list] = {}
        for r in found:
            by_invitation.setdefault(r.invitation_id, []).append(
                {"user": r.username, "at": r.at.isoformat(), "result": r.result}
            )
        return [
            {**public(row), "redeemed_by": by_invitation.get(row.id, [])}
            for row in rows
        ]

    def lookup(self, code: str, at: datetime | None = None) -> Redemption:
        """What redeeming ``code`` would give now, with no change and nothing
        logged (the join page's GET: which community)."""
        at = self._now(at)
        with self.engine.connect() as connection:
            row = connection.execute(
                select(invitations).where(
                    invitations.c.code_hash == pure.code_hash(code)
                )
            ).first()
        if row is None or not pure.matches(code, row.code_hash):
            return Redemption("unknown", None)
        refusal = pure.refusal_of(
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            uses=row.uses,
            max_uses=row.max_uses,
            now=at,
        )
        return Redemption(
            refusal or pure.JOINED, row.community, row.id, row.membership_ends_at
        )

    # -- redemption -----------------------------------------------------------

    def redeem(
        self,
        code: str,
        *,
        username: str,
        provider: str,
        subject: str,
        offered: Container[str],
        at: datetime | None = None,
    ) -> Redemption:
        """Redeem ``code`` for the account ``username``, bound to ``provider``
        and ``subject``: a membership, or a refusal; recorded and logged
        either way, in one transaction.

        ``offered``: the communities whose bounds allow invitations today.
        """
        at = self._now(at)
        who = {"user": username, "provider": provider, "subject": subject}
        with exclusive_write(self.engine, AUDIT_TABLE) as connection:
            row = connection.execute(
                select(invitations).where(
                    invitations.c.code_hash == pure.code_hash(code)
                )
            ).first()
            if row is None or not pure.matches(code, row.code_hash):
                row = None
                result = "unknown"
            else:
                result = pure.refusal_of(
                    expires_at=row.expires_at,
                    revoked_at=row.revoked_at,
                    uses=row.uses,
                    max_uses=row.max_uses,
                    now=at,
                )
                if result is None and row.community not in offered:
                    result = "not_offered"
                if result is None:
                    held = connection.execute(
                        select(memberships.c.id).where(
                            memberships.c.username == username,
                            memberships.c.community == row.community,
                            _active(at),
                        )
                    ).first()
                    if held is not None:
                        result = "already_member"
            community = row.community if row is not None else None
            connection.execute(
                insert(redemptions).values(
                    invitation_id=row.id if row is not None else None,
                    community=community,
                    username=username,
                    provider=provider,
                    subject=subject,
                    at=at,
                    result=result or pure.JOINED,
                )
            )
            if result is None:
                # one more use, never past max_uses (the lock serializes
                # redemptions; the condition holds without it too)
                counted = connection.execute(
                    update(invitations)
                    .where(
                        invitations.c.id == row.id,
                        invitations.c.uses < invitations.c.max_uses,
                    )
                    .values(uses=invitations.c.uses + 1)
                ).rowcount
                if counted != 1:
                    result = "used_up"
            if result is None:
                connection.execute(
                    insert(memberships).values(
                        username=username,
                        community=row.community,
                        invitation_id=row.id,
                        provider=provider,
                        subject=subject,
                        granted_at=at,
                        ends_at=row.membership_ends_at,
                    )
                )
            audit_row = self.state._append(
                connection,
                at=at,
                actor=username,
                actor_kind="user",
                community=community,
                action="invitation.redeem" if result is None else "invitation.refuse",
                version=None,
                before=None,
                after={
                    **who,
                    "invitation": row.id if row is not None else None,
                    "result": result or pure.JOINED,
                },
            )
        self.state._logged(audit_row)
        if result is None:
            self._changed()
            return Redemption(pure.JOINED, community, row.id, row.membership_ends_at)
        return Redemption(result, community, row.id if row is not None else None)

    def record_refusal(
        self,
        *,
        username: str,
        result: str,
        provider: str | None = None,
        subject: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record an attempt refused before any code was looked up
        (throttled, or no account bound to a provider)."""
        at = self._now(at)
        with exclusive_write(self.engine, AUDIT_TABLE) as connection:
            connection.execute(
                insert(redemptions).values(
                    username=username,
                    provider=provider,
                    subject=subject,
                    at=at,
                    result=result,
                )
            )
            audit_row = self.state._append(
                connection,
                at=at,
                actor=username,
                actor_kind="user",
                community=None,
                action="invitation.refuse",
                version=None,
                before=None,
                after={
                    "user": username,
                    "provider": provider,
                    "subject": subject,
                    "invitation": None,
                    "result": result,
                },
            )
        self.state._logged(audit_row)

    # -- memberships ----------------------------------------------------------

    def active(self, at: datetime | None = None) -> dict[str, frozenset[str]]:
        """Every account's communities by invitation now (one query)."""
        at = self._now(at)
        held: dict[str, set[str]] = {}
        with self.engine.connect() as connection:
            for username, community in connection.execute(
                select(memberships.c.username, memberships.c.community).where(
                    _active(at)
                )
            ):
                held.setdefault(username, set()).add(community)
        return {name: frozenset(c) for name, c in held.items()}

    def members(self, community: str, at: datetime | None = None) -> list[dict]:
        """The active memberships by invitation of ``community``."""
        at = self._now(at)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(memberships)
                .where(memberships.c.community == community, _active(at))
                .order_by(memberships.c.username)
            ).all()
        return [
            {
                "user": r.username,
                "source": "invitation",
                "invitation": r.invitation_id,
                "provider": r.provider,
                "granted_at": r.granted_at.isoformat(),
                "ends_at": r.ends_at.isoformat() if r.ends_at else None,
            }
            for r in rows
        ]

    def remove(
        self,
        community: str,
        username: str,
        *,
        actor: str,
        actor_kind: str = "user",
        at: datetime | None = None,
    ) -> None:
        """End ``username``'s membership by invitation of ``community`` now
        (:class:`NotFound` when they have none)."""
        at = self._now(at)
        with exclusive_write(self.engine, AUDIT_TABLE) as connection:
            rows = connection.execute(
                select(memberships).where(
                    memberships.c.username == username,
                    memberships.c.community == community,
                    _active(at),
                )
            ).all()
            if not rows:
                raise NotFound(f"{username} is no member of {community} by invitation")
            connection.execute(
                update(memberships)
                .where(memberships.c.id.in_([r.id for r in rows]))
                .values(ended_at=at, removed_by=actor)
            )
            audit_row = self.state._append(
                connection,
                at=at,
                actor=actor,
                actor_kind=actor_kind,
                community=community,
                action="membership.remove",
                version=None,
                before={
                    "user": username,
                    "invitations": [r.invitation_id for r in rows],
                },
                after=None,
            )
        self.state._logged(audit_row)
        self._changed()

    def end_due(self, at: datetime | None = None) -> list[tuple[str, str]]:
        """End the memberships whose end date has come, each logged
        (``membership.end``); returns their ``(username, community)``."""
        at = self._now(at)
        ended: list[tuple[str, str]] = []
        with exclusive_write(self.engine, AUDIT_TABLE) as connection:
            rows = connection.execute(
                select(memberships).where(
                    memberships.c.ended_at.is_(None),
                    memberships.c.ends_at.is_not(None),
                    memberships.c.ends_at <= at,
                )
            ).all()
            rows_logged = []
            for r in rows:
                connection.execute(
                    update(memberships)
                    .where(memberships.c.id == r.id)
                    .values(ended_at=r.ends_at)
                )
                rows_logged.append(
                    self.state._append(
                        connection,
                        at=at,
                        actor=HUB_ACTOR,
                        actor_kind="service",
                        community=r.community,
                        action="membership.end",
                        version=None,
                        before={"user": r.username, "invitation": r.invitation_id},
                        after={"ended_at": r.ends_at.isoformat()},
                    )
                )
                ended.append((r.username, r.community))
        for row in rows_logged:
            self.state._logged(row)
        if ended:
            self._changed()
        return ended

    def unapplied(self) -> list[tuple[int, str, str]]:
        """Ended memberships the hub has not applied yet: ``(id, username,
        community)``."""
        with self.engine.connect() as connection:
            return [
                (r.id, r.username, r.community)
                for r in connection.execute(
                    select(
                        memberships.c.id,
                        memberships.c.username,
                        memberships.c.community,
                    ).where(
                        memberships.c.ended_at.is_not(None),
                        memberships.c.applied_at.is_(None),
                    )
                )
            ]

    def mark_applied(self, ids: Iterable[int], at: datetime | None = None) -> None:
        """Note that the hub took these ended memberships away."""
        ids = list(ids)
        if not ids:
            return
        at = self._now(at)
        with self.engine.begin() as connection:
            connection.execute(
                update(memberships)
                .where(memberships.c.id.in_(ids))
                .values(applied_at=at)
            )


class MembershipCache:
    """The accounts' communities by invitation, as the hub process reads them.

    At most ``max_age`` seconds old; a change through the same
    :class:`InvitationStore` makes the next read go to the database. A read
    of a fresh cache does no I/O (:meth:`is_fresh`): a caller on the event
    loop reads a stale one in a thread.
    """

    def __init__(
        self,
        store: InvitationStore,
        *,
        max_age: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, frozenset[str]] | None = None
        self._read_at = float("-inf")
        self._seen = -1

    def is_fresh(self) -> bool:
        return (
            self._held is not None
            and self._seen == self.store._generation
            and self.clock() - self._read_at < self.max_age
        )

    def of(self, username: str) -> frozenset[str]:
        """``username``'s communities by invitation now."""
        return self.all().get(username, frozenset())

    def all(self) -> dict[str, frozenset[str]]:
        if self.is_fresh():
            return self._held
        with self._lock:
            if self.is_fresh():
                return self._held
            started, generation = self.clock(), self.store._generation
            self._held = self.store.active()
            self._read_at, self._seen = started, generation
            return self._held
