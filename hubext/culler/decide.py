"""What to do with one server or user: pure decisions from the hub's REST models.

Never a cull on doubtful data: a pending or not-ready server, or one whose
timestamps cannot be read, is left alone (and reported). A user is deleted
only when the model shows, beyond doubt, someone who is not a hub admin,
has no server at all (running, pending or stopping), and has been inactive
for the policy's ``cull_users_after``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..culling import CullingPolicy


@dataclass(frozen=True)
class Cull:
    """Stop (and maybe remove) one server."""

    user: str
    server: str  # "" for the default server
    reason: str  # "idle" or "max_age"
    inactive: float  # seconds
    age: float | None  # seconds
    remove: bool = False

    @property
    def log_name(self) -> str:
        return f"{self.user}/{self.server}" if self.server else self.user


@dataclass(frozen=True)
class CullUser:
    """Delete one user from the hub."""

    user: str
    inactive: float  # seconds since the user's last activity


@dataclass(frozen=True)
class Skip:
    """A server left alone for a reason worth reporting."""

    user: str
    server: str
    reason: str


def parse_timestamp(value) -> datetime | None:
    """An ISO 8601 timestamp from the hub, as an aware datetime; None if absent.

    Raises ValueError for anything else.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {type(value).__name__}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def decide(
    user: str, server_name: str, server: dict, policy: CullingPolicy, now: datetime
) -> Cull | Skip | None:
    """Cull, Skip (left alone, with why), or None (fine as it is)."""
    if server.get("pending"):
        return Skip(user, server_name, f"pending {server['pending']}")
    if not server.get("ready"):
        return Skip(user, server_name, "not ready")
    if server_name and not policy.cull_named_servers:
        return None
    try:
        started = parse_timestamp(server.get("started"))
        last_activity = parse_timestamp(server.get("last_activity"))
    except ValueError as e:
        return Skip(user, server_name, f"unreadable timestamps ({e})")
    reference = last_activity or started
    if reference is None:
        return Skip(user, server_name, "no last_activity and no started")
    inactive = (now - reference).total_seconds()
    age = (now - started).total_seconds() if started else None
    if inactive < 0 or (age is not None and age < 0):
        return Skip(user, server_name, "timestamps in the future")
    remove = bool(server_name) and policy.remove_named_servers
    if policy.idle_timeout is not None and inactive >= policy.idle_timeout:
        return Cull(user, server_name, "idle", inactive, age, remove)
    if policy.max_age is not None and age is not None and age >= policy.max_age:
        return Cull(user, server_name, "max_age", inactive, age, remove)
    return None


def decide_user(
    user: dict, policy: CullingPolicy, now: datetime
) -> CullUser | Skip | None:
    """CullUser (delete), Skip (left alone, with why), or None (kept).

    ``user`` is a user model from the hub with its ``servers`` (scope
    ``read:servers``), ``admin`` (``read:users:name``) and ``last_activity``
    (``read:users:activity``).
    """
    name = user.get("name")
    if not isinstance(name, str):
        return Skip(str(name)[:60], "", "malformed user model")
    if policy.cull_users_after is None:
        return None
    if "admin" not in user or not isinstance(user["admin"], bool):
        return Skip(name, "", "cannot tell whether the user is an admin")
    if user["admin"]:
        return None  # hub admins are never deleted
    servers = user.get("servers")
    if not isinstance(servers, dict):
        return Skip(name, "", "cannot see the user's servers")
    if servers:
        return None  # any server, running, pending or stopping: kept
    try:
        last_activity = parse_timestamp(user.get("last_activity"))
    except ValueError as e:
        return Skip(name, "", f"unreadable last_activity ({e})")
    if last_activity is None:
        # Never active: created on purpose by an admin or the API, not by a
        # sign-in; kept.
        return None
    inactive = (now - last_activity).total_seconds()
    if inactive < 0:
        return Skip(name, "", "last_activity in the future")
    if inactive >= policy.cull_users_after:
        return CullUser(name, inactive)
    return None
