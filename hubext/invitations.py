"""Invitations and join codes: their codes, and what a community admin may ask. Pure.

A community admin (where the operator's ``self_service.invitations``
bounds allow it, :class:`hubext.self_service.InvitationBounds`) makes an
invitation: a *personal* link (one use) or a *join code* for a group (up to
``max_uses`` uses), with an expiry and optionally an end date of the
memberships it gives.

The code: 16 characters of Crockford's base32 (``0-9`` and ``A-Z`` without
``I L O U``), shown as four groups (``7K3M-Q9XA-2HVD-TR4B``): 80 random bits
from :mod:`secrets`. Typing it is forgiving (lowercase, spaces, dashes, and
``O``/``I``/``L`` read as ``0``/``1``/``1``). It is shown once, when it is
made; only its SHA-256 is stored (:func:`code_hash`), and a code given is
compared with a stored hash in constant time (:func:`matches`). A salt or a
slow hash would add nothing: 80 random bits are not a password, and a
stolen table of hashes gives nothing to try but the 2**80 codes.

Guessing is hopeless: with a million live codes, each guess finds one with
probability 2**-60 (10**6 / 2**80 < 10**-18); the hub lets an account make
:data:`ACCOUNT_ATTEMPTS` attempts with unknown codes and an address
:data:`ADDRESS_ATTEMPTS` per :data:`ATTEMPT_WINDOW` seconds
(:mod:`hubext.console.join`): a million addresses trying for a year make
about 10**12 guesses, a chance below 10**-6.

This module does no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ._validation import show
from .self_service import InvitationBounds

#: Crockford's base32: no I, L, O, U (read as 1, 1, 0; U left out).
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Characters of a code (5 bits each): 80 bits.
CODE_LENGTH = 16
CODE_BITS = CODE_LENGTH * 5
_TYPED = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s-]+")

#: The kinds of invitation: a personal link (one use) and a join code.
KINDS = ("personal", "code")

#: Attempts with a code that is no invitation an account, and an address,
#: may make per window.
ACCOUNT_ATTEMPTS = 10
ADDRESS_ATTEMPTS = 100
ATTEMPT_WINDOW = 15 * 60

#: The longest note an admin may give an invitation ("Workshop, 4 March").
NOTE_MAX_LENGTH = 200

#: Why a code gives no membership (the redemption's ``result``) and the
#: message shown, for each (never whether another code exists).
REFUSALS = {
    "unknown": "This code is not a valid invitation. Check it, or ask the "
    "person who gave it to you.",
    "expired": "This invitation has expired. Ask the community's admins for a new one.",
    "revoked": "This invitation was withdrawn by the community's admins.",
    "used_up": "This invitation has been used as many times as it allows. Ask "
    "the community's admins for a new one.",
    "already_member": "You are already a member of this community by invitation.",
    "no_account": "Sign in through one of the hub's identity providers to join.",
    "not_offered": "This community no longer takes members by invitation.",
    "throttled": "Too many attempts. Wait a few minutes and try again.",
}
#: The HTTP status of each refusal.
REFUSAL_STATUS = {
    "unknown": 404,
    "expired": 410,
    "revoked": 410,
    "used_up": 410,
    "already_member": 409,
    "no_account": 403,
    "not_offered": 410,
    "throttled": 429,
}
JOINED = "joined"


def new_code() -> str:
    """A new random code, :data:`CODE_LENGTH` characters (80 bits)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def shown(code: str) -> str:
    """The code as people read it: ``XXXX-XXXX-XXXX-XXXX``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def normalize(typed: Any) -> str | None:
    """The code someone typed, as made (None: it cannot be a code)."""
    if not isinstance(typed, str) or len(typed) > 4 * CODE_LENGTH:
        return None
    code = _SEPARATORS.sub("", typed).upper().translate(_TYPED)
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def code_hash(code: str) -> str:
    """What is stored of a code: its SHA-256, hex."""
    return hashlib.sha256(f"hubext-invitation:{code}".encode()).hexdigest()


def matches(code: str, stored_hash: str) -> bool:
    """Whether ``code`` is the one ``stored_hash`` was made from (constant time)."""
    return hmac.compare_digest(code_hash(code), stored_hash)


@dataclass(frozen=True)
class Request:
    """An invitation a community admin asks for, checked against the bounds."""

    kind: str
    max_uses: int
    expires_at: datetime
    membership_ends_at: datetime | None
    note: str


class RequestProblem(ValueError):
    """A request outside the bounds: ``field`` and why (a 400's message)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def _moment(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
    else:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise RequestProblem(
            field,
            f"a date and time with its zone (2026-03-06T17:00:00Z), got {show(value)}",
        )
    return moment


def check_request(bounds: InvitationBounds | None, body: Any, now: datetime) -> Request:
    """The invitation ``body`` asks for (the REST API's JSON), or
    :class:`RequestProblem` naming the field and the bound it breaks.

    ``body``: ``kind`` (``personal`` or ``code``), ``expires_at`` (ISO 8601
    with a zone), ``max_uses`` (a code; a personal link has one use),
    ``membership_ends_at`` (optional, or required by the bounds), ``note``.
    """
    if bounds is None:
        raise RequestProblem(
            "invitations",
            "this community's admins may not invite (the operator's bounds)",
        )
    if not isinstance(body, dict):
        raise RequestProblem("body", "a JSON object")
    known = {"kind", "max_uses", "expires_at", "membership_ends_at", "note"}
    unknown = sorted(str(k) for k in body if k not in known)
    if unknown:
        raise RequestProblem(
            unknown[0], f"unknown field; known: {', '.join(sorted(known))}"
        )
    kind = body.get("kind")
    if kind not in KINDS:
        raise RequestProblem("kind", f"one of {', '.join(KINDS)}, got {show(kind)}")
    if kind == "personal":
        uses = body.get("max_uses", 1)
        if uses != 1 or isinstance(uses, bool):
            raise RequestProblem("max_uses", "a personal invitation has one use")
    else:
        uses = body.get("max_uses")
        if isinstance(uses, bool) or not isinstance(uses, int) or uses < 1:
            raise RequestProblem(
                "max_uses", f"a whole number above 0, got {show(uses)}"
            )
        if uses > bounds.max_uses:
            raise RequestProblem(
                "max_uses",
                f"at most {bounds.max_uses} (the operator's bound), got {uses}",
            )
    if "expires_at" not in body:
        raise RequestProblem("expires_at", "required")
    expires_at = _moment(body["expires_at"], "expires_at")
    if expires_at <= now:
        raise RequestProblem("expires_at", "is in the past")
    if expires_at > now + timedelta(days=bounds.max_days):
        raise RequestProblem(
            "expires_at",
            f"at most {bounds.max_days} days from now (the operator's bound)",
        )
    ends = body.get("membership_ends_at")
    membership_ends_at = None
    if ends is None:
        if bounds.max_membership_days is not None:
            raise RequestProblem(
                "membership_ends_at",
                f"required: memberships by invitation end within "
                f"{bounds.max_membership_days} days (the operator's bound)",
            )
    else:
        membership_ends_at = _moment(ends, "membership_ends_at")
        if membership_ends_at <= now:
            raise RequestProblem("membership_ends_at", "is in the past")
        if membership_ends_at < expires_at:
            raise RequestProblem(
                "membership_ends_at", "is before the invitation expires"
            )
        if (
            bounds.max_membership_days is not None
            and membership_ends_at > now + timedelta(days=bounds.max_membership_days)
        ):
            raise RequestProblem(
                "membership_ends_at",
                f"at most {bounds.max_membership_days} days from now "
                "(the operator's bound)",
            )
    note = body.get("note", "")
    if (
        not isinstance(note, str)
        or len(note) > NOTE_MAX_LENGTH
        or not note.isprintable()
    ):
        raise RequestProblem(
            "note", f"a line of text of at most {NOTE_MAX_LENGTH} characters"
        )
    return Request(kind, uses, expires_at, membership_ends_at, note)


def refusal_of(
    *,
    expires_at: datetime,
    revoked_at: datetime | None,
    uses: int,
    max_uses: int,
    now: datetime,
) -> str | None:
    """Why an invitation gives no membership now (a key of :data:`REFUSALS`),
    or None. An invitation expires at ``expires_at`` (no use at that moment)."""
    if revoked_at is not None and revoked_at <= now:
        return "revoked"
    if now >= expires_at:
        return "expired"
    if uses >= max_uses:
        return "used_up"
    return None
