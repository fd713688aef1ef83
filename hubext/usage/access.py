"""Who may read which usage: JupyterHub scopes to a filter (pure: no I/O).

The usage page is guarded by one custom scope, :data:`USAGE_SCOPE`, and
JupyterHub's own filters on it decide what a person sees:

- ``custom:hubext-usage:read`` (unfiltered; the ``admin`` role): every
  community, the hub-wide account included;
- ``custom:hubext-usage:read!group=<slug>`` (the role
  ``community-admin-<slug>``): the sessions charged to that community;
- ``custom:hubext-usage:read!user=<name>`` (``!user`` in the ``user`` role):
  that person's own sessions, whichever community they were charged to.

The scopes are those of the person's OAuth token for the page, as the hub
resolves them (the ``scopes`` of ``/hub/api/user``). Filters add up: a
community admin who is also a member sees their community and their own
sessions elsewhere. Any other filter (``!server=``, ``!service=``) grants
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: The custom scope that lets a token read usage (filtered or not).
USAGE_SCOPE = "custom:hubext-usage:read"


@dataclass(frozen=True)
class Access:
    """What one token may read: everything, or some communities and users."""

    everything: bool = False
    communities: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    @property
    def anything(self) -> bool:
        return self.everything or bool(self.communities or self.users)

    def filter(self, community: str | None = None) -> Filter:
        """The sessions this access reads, narrowed to ``community`` if given.

        Narrowing never widens: a member who asks for a community they do
        not administer gets their own sessions in it, and nothing of anyone
        else's.
        """
        clauses: list[Clause] = []
        if not self.everything:
            clauses.append(Clause(self.communities, self.users))
        if community is not None:
            clauses.append(Clause(frozenset({community}), frozenset()))
        return Filter(tuple(clauses))


@dataclass(frozen=True)
class Clause:
    """Sessions charged to one of ``communities`` or used by one of ``users``."""

    communities: frozenset[str]
    users: frozenset[str]

    def admits(self, community: str, user: str) -> bool:
        return community in self.communities or user in self.users


@dataclass(frozen=True)
class Filter:
    """The sessions a query reads: those every clause admits (no clause:
    every session)."""

    clauses: tuple[Clause, ...] = ()

    def admits(self, community: str, user: str) -> bool:
        return all(c.admits(community, user) for c in self.clauses)


def access_from_scopes(scopes: Iterable[str]) -> Access:
    """The :class:`Access` granted by a token's (expanded) ``scopes``."""
    everything = False
    communities: set[str] = set()
    users: set[str] = set()
    for scope in scopes:
        base, _, filter_ = scope.partition("!")
        if base != USAGE_SCOPE:
            continue
        if not filter_:
            everything = True
            continue
        kind, _, value = filter_.partition("=")
        if not value:
            continue
        if kind == "group":
            communities.add(value)
        elif kind == "user":
            users.add(value)
    if everything:
        return Access(everything=True)
    return Access(communities=frozenset(communities), users=frozenset(users))
