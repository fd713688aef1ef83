"""hubext's idle culler: a JupyterHub service with per-community policy."""

from __future__ import annotations

import sys

from .app import Culler

#: The least-privilege scopes the culler needs.
CULLER_SCOPES = [
    "list:users",
    "read:users:name",
    "read:users:groups",
    "read:users:activity",
    "read:servers",
    "delete:servers",
]

#: Added to the role only when the culler deletes users (``cull_users``).
CULLER_USER_SCOPES = ["delete:users"]


def register(
    c,
    *,
    hub_config: str,
    name: str = "hubext-culler",
    args=(),
    environment=None,
    cull_users: bool = False,
) -> None:
    """Run the culler as a hub-managed service with its least-privilege role.

    In ``jupyterhub_config.py``::

        from hubext.culler import register
        register(c, hub_config=__file__, args=["--timeout=3600"])

    ``cull_users=True`` (or ``--cull-users`` in ``args``) also deletes users
    with no server after ``--cull-users-after`` seconds without activity, and
    only then adds ``delete:users`` to the role.

    ``hub_config`` is the hub's configuration file, from which the culler
    reads the communities' ``culling`` policies. The culler runs it with the
    environment JupyterHub gives services (a few variables, not the hub's
    whole environment): give any variable the configuration reads in
    ``environment`` (e.g. ``{"GITHUB_CLIENT_SECRET": os.environ[...]}``).
    """
    args = list(args)
    cull_users = cull_users or "--cull-users" in args
    if cull_users and "--cull-users" not in args:
        args.append("--cull-users")
    command = [
        sys.executable,
        "-m",
        "hubext.culler",
        f"--hub-config={hub_config}",
        *args,
    ]
    # append: works whether or not other services or roles are configured
    # (before or after this call). Call it once.
    service = {"name": name, "command": command}
    if environment:
        service["environment"] = dict(environment)
    c.JupyterHub.services.append(service)
    c.JupyterHub.load_roles.append(
        {
            "name": name,
            "scopes": CULLER_SCOPES + (CULLER_USER_SCOPES if cull_users else []),
            "services": [name],
        }
    )


__all__ = ["CULLER_SCOPES", "CULLER_USER_SCOPES", "Culler", "register"]
