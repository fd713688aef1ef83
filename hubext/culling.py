"""Idle-culling policy per community. Pure, no I/O.

Each community may set ``culling`` in ``c.Communities.communities``::

    "culling": {
        "idle_timeout": 3600,          # seconds idle before a server is stopped; null: never
        "max_age": 86400,              # seconds since start before it is stopped; null: never
        "cull_named_servers": True,    # also stop named servers
        "remove_named_servers": False, # delete named servers once stopped
        "cull_users_after": 90 * 86400, # seconds inactive, with no server, before
                                        # the user is deleted (only with the
                                        # culler's cull_users on); null: never
    }

Keys left out take the hub-wide default policy of the culler service. A
member of several communities gets the most generous policy of them: the
longest timeouts (null, never, beats any number), and named servers are
culled or removed only if every one of their communities says so. Nobody is
culled earlier than any of their communities allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ._validation import (
    ConfigError,
    ErrorCollector,
    KeyPath,
    check_keys,
    expect,
    expect_mapping,
)

_DURATION_KEYS = ("idle_timeout", "max_age")
_USER_KEYS = ("cull_users_after",)
_FLAG_KEYS = ("cull_named_servers", "remove_named_servers")
#: Shortest timeout accepted: less would stop servers while they start.
MIN_SECONDS = 60
#: Shortest user timeout accepted: less would delete people while they sign
#: in and choose a server.
MIN_USER_SECONDS = 3600


@dataclass(frozen=True)
class CullingPolicy:
    """When servers are stopped. ``None`` timeouts mean never."""

    idle_timeout: int | None = 3600
    max_age: int | None = None
    cull_named_servers: bool = True
    remove_named_servers: bool = False
    #: Seconds since the user's last activity, with no server, before the
    #: user is deleted from the hub (only when the culler's ``cull_users`` is
    #: on). ``None``: never.
    cull_users_after: int | None = None

    def most_generous(self, other: CullingPolicy) -> CullingPolicy:
        return CullingPolicy(
            idle_timeout=_longest(self.idle_timeout, other.idle_timeout),
            max_age=_longest(self.max_age, other.max_age),
            cull_named_servers=self.cull_named_servers and other.cull_named_servers,
            remove_named_servers=self.remove_named_servers
            and other.remove_named_servers,
            cull_users_after=_longest(self.cull_users_after, other.cull_users_after),
        )


def _longest(a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return None
    return max(a, b)


def parse_culling(value: Any, path: KeyPath, slug: str = "") -> Mapping[str, Any]:
    """Validate a community's ``culling`` mapping; return the keys it sets."""
    expect_mapping(value, path)
    errors = ErrorCollector()
    with errors.check():
        check_keys(value, path, _DURATION_KEYS + _USER_KEYS + _FLAG_KEYS)
    parsed: dict[str, Any] = {}
    for key in _DURATION_KEYS:
        if key in value:
            with errors.check():
                parsed[key] = check_duration(value[key], path.attr(key))
    for key in _USER_KEYS:
        if key in value:
            with errors.check():
                parsed[key] = check_duration(
                    value[key], path.attr(key), minimum=MIN_USER_SECONDS
                )
    for key in _FLAG_KEYS:
        if key in value:
            with errors.check():
                parsed[key] = expect(value[key], bool, path.attr(key), "true or false")
    errors.raise_errors()
    return parsed


def check_duration(
    value: Any, path: KeyPath | str, minimum: int = MIN_SECONDS
) -> int | None:
    if value is None:
        return None
    expect(
        value,
        int,
        path if isinstance(path, KeyPath) else KeyPath(path),
        "seconds (an integer) or null",
    )
    if value < minimum:
        raise ConfigError(
            path,
            f"must be at least {minimum} seconds, or null for never; got {value}",
        )
    return value


def policy_for(
    groups: Iterable[str],
    community_settings: Mapping[str, Mapping[str, Any]],
    default: CullingPolicy,
) -> CullingPolicy:
    """The policy for a user in ``groups``.

    ``community_settings`` maps a community slug to the keys its ``culling``
    sets. Users in no community with ``culling`` get ``default``.
    """
    policies = [
        replace(default, **community_settings[g])
        for g in groups
        if g in community_settings
    ]
    if not policies:
        return default
    policy = policies[0]
    for other in policies[1:]:
        policy = policy.most_generous(other)
    return policy
