"""Who may read and change which community in the console: JupyterHub scopes.

Two custom scopes, defined by :func:`hubext.console.register_console`:

- ``custom:hubext-console:read``: read a community's settings, members,
  limits and use, and its audit log;
- ``custom:hubext-console:admin``: change its settings, within the
  operator's bounds; it implies ``read`` (a JupyterHub subscope, so a
  filter on it carries over).

hubext's roles grant ``admin`` with ``!group=<slug>`` to each community's
admins (``community-admin-<slug>``) and unfiltered to hub admins
(``hubext-hub-admin``); a hub may grant ``read`` to a service (an auditor
reading every community's log) in ``c.JupyterHub.load_roles``.

Every check is JupyterHub's own: :func:`require` applies
:func:`jupyterhub.scopes.needs_scope` with the community as ``group_name``,
at the request (the decorator refuses a scope not defined yet, and custom
scopes are defined only when the hub starts). So JupyterHub decides, with
the code that guards its own REST API: no credentials or no console scope,
403; a console scope filtered to other communities, 404, the answer for a
community that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from jupyterhub.scopes import needs_scope

#: Read a community's settings, members, limits and use, and its audit log.
READ_SCOPE = "custom:hubext-console:read"
#: Change a community's settings within the operator's bounds (implies read).
ADMIN_SCOPE = "custom:hubext-console:admin"

#: The scopes' definitions (``c.JupyterHub.custom_scopes``).
CUSTOM_SCOPES = {
    READ_SCOPE: {
        "description": "Read a community's settings, members, limits and use, "
        "and its audit log, in the hubext console",
    },
    ADMIN_SCOPE: {
        "description": "Change a community's environments, sizes and idle "
        "timeout, within the bounds the hub's operator set, in the hubext console",
        "subscopes": [READ_SCOPE],
    },
}

#: What JupyterHub answers for a community the caller may not see, and
#: the console for one that does not exist: the same words.
NOT_FOUND = "No access to resources or resources not found"


def _granted(handler, group_name: str) -> bool:
    return True


def _granted_somewhere(handler) -> bool:
    return True


def require(handler, scope: str, community: str) -> None:
    """Raise JupyterHub's 403 or 404 unless ``handler``'s request holds
    ``scope`` on the group ``community`` (``needs_scope``, at the request)."""
    needs_scope(scope)(_granted)(handler, group_name=community)


def require_some(handler, scope: str) -> None:
    """Raise JupyterHub's 403 unless the request holds ``scope`` on something
    (filtered or not)."""
    needs_scope(scope, post_filter=True)(_granted_somewhere)(handler)


def require_all(handler, scope: str) -> None:
    """Raise JupyterHub's 403 unless the request holds ``scope`` unfiltered."""
    needs_scope(scope)(_granted_somewhere)(handler)


def holds(handler, scope: str, community: str) -> bool:
    """Whether the request holds ``scope`` on ``community`` (JupyterHub's
    ``has_scope``)."""
    return bool(handler.has_scope(f"{scope}!group={community}"))


def holds_all(handler, scope: str) -> bool:
    """Whether the request holds ``scope`` unfiltered."""
    return bool(handler.has_scope(scope))


def readable(handler, communities: Iterable[str]) -> list[str]:
    """The communities of ``communities`` the request may read, in order."""
    return [slug for slug in communities if holds(handler, READ_SCOPE, slug)]


def actor_of(handler) -> tuple[str, str]:
    """``(name, kind)`` of whoever makes the request: a hub user (``user``)
    or a service with a token of its own (``service``)."""
    who = handler.current_user
    kind = getattr(who, "kind", "user")
    return who.name, "service" if kind == "service" else "user"
