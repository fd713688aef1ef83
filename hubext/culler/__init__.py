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


def register(c, *, hub_config: str, name: str = "hubext-culler", args=()) -> None:
    """Run the culler as a hub-managed service with its least-privilege role.

    In ``jupyterhub_config.py``::

        from hubext.culler import register
        register(c, hub_config=__file__, args=["--timeout=3600"])

    ``hub_config`` is the hub's configuration file, from which the culler
    reads the communities' ``culling`` policies.
    """
    command = [
        sys.executable,
        "-m",
        "hubext.culler",
        f"--hub-config={hub_config}",
        *args,
    ]
    # append: works whether or not other services or roles are configured
    # (before or after this call). Call it once.
    c.JupyterHub.services.append({"name": name, "command": command})
    c.JupyterHub.load_roles.append(
        {"name": name, "scopes": list(CULLER_SCOPES), "services": [name]}
    )


__all__ = ["CULLER_SCOPES", "Culler", "register"]
