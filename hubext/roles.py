"""Community-admin roles: JupyterHub RBAC confined to one community. Pure.

Each community gets a role ``community-admin-<slug>`` whose scopes are all
filtered with ``!group=<slug>``, so its holders can act on that community's
members only:

- see and list the members, and read their activity and groups
  (``list:users``, ``read:users``, ``read:groups``, ``list:groups``);
- see, start and stop their servers (``servers``: ``read:servers``,
  ``start:servers``, ``delete:servers``);
- open the admin page, which then shows only those members (``admin-ui``);
- optionally, use the members' servers (``access:servers``), off by default;
- read their community's usage on the usage page (``custom:hubext-usage:read``)
  when the hub defines that scope (``hubext.usage.register_page``);
- read and change their community's settings, within the operator's bounds,
  in the console (``custom:hubext-console:admin``, which implies
  ``custom:hubext-console:read``) when the hub defines that scope
  (``hubext.console.register_console``).

Nothing in these roles touches users outside the community or the hub itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from .communities import Community

ROLE_PREFIX = "community-admin-"

_FILTERED_SCOPES = (
    "list:users",
    "read:users",
    "servers",
    "read:groups",
    "list:groups",
)


def community_admin_role_name(slug: str) -> str:
    """The name of the role of ``slug``'s community admins."""
    return f"{ROLE_PREFIX}{slug}"


def community_of_admin_role(role_name: str) -> str | None:
    """The community slug a community-admin role name is for, or None.

    The inverse of :func:`community_admin_role_name`.
    """
    if role_name.startswith(ROLE_PREFIX) and len(role_name) > len(ROLE_PREFIX):
        return role_name[len(ROLE_PREFIX) :]
    return None


#: hubext's custom scopes (the usage page's, the console's): community
#: admins hold them filtered to their community, hub admins unfiltered
#: (:data:`HUB_ADMIN_ROLE`), each only when the hub defines it
#: (``JupyterHub.custom_scopes``).
SERVICE_CUSTOM_SCOPES = ("custom:hubext-usage:read", "custom:hubext-console:admin")

#: The role hub admins hold besides ``admin`` (whose scopes JupyterHub does
#: not let a configuration change): hubext's custom scopes.
HUB_ADMIN_ROLE = "hubext-hub-admin"


def community_admin_role(
    community: Community, *, access_servers: bool = False, custom_scopes=()
) -> dict:
    """The role definition (``JupyterHub.load_roles`` format) for one community.

    ``custom_scopes``: the hub's custom scopes; those of
    :data:`SERVICE_CUSTOM_SCOPES` among them are added, filtered.
    """
    filtered = _FILTERED_SCOPES + tuple(
        s for s in SERVICE_CUSTOM_SCOPES if s in custom_scopes
    )
    scopes = [f"{scope}!group={community.slug}" for scope in filtered]
    if access_servers:
        scopes.append(f"access:servers!group={community.slug}")
    scopes.append("admin-ui")
    return {
        "name": community_admin_role_name(community.slug),
        "description": f"Administer the members of {community.display_name}"[:200],
        "scopes": scopes,
    }


def community_admin_roles(
    communities: Iterable[Community], *, access_servers: bool = False, custom_scopes=()
) -> list[dict]:
    return [
        community_admin_role(
            c, access_servers=access_servers, custom_scopes=custom_scopes
        )
        for c in communities
    ]


def hub_admin_roles(custom_scopes=()) -> list[dict]:
    """``[`` :data:`HUB_ADMIN_ROLE` ``]`` when the hub defines one of the
    :data:`SERVICE_CUSTOM_SCOPES` (``custom_scopes``), else ``[]``."""
    scopes = [s for s in SERVICE_CUSTOM_SCOPES if s in custom_scopes]
    if not scopes:
        return []
    return [
        {
            "name": HUB_ADMIN_ROLE,
            "description": "What hub admins hold besides the admin role: "
            "hubext's custom scopes",
            "scopes": scopes,
        }
    ]
