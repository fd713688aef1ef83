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


def register(
    c, *, hub_config: str, name: str = "hubext-culler", args=(), environment=None
) -> None:
    """Run the culler as a hub-managed service with its least-privilege role.

    In ``jupyterhub_config.py``::

        from hubext.culler import register
        register(c, hub_config=__file__, args=["--timeout=3600"])

    ``hub_config`` is the hub's configuration file, from which the culler
    reads the communities' ``culling`` policies. The culler runs it with the
    environment JupyterHub gives services (a few variables, not the hub's
    whole environment): give any variable the configuration reads in
    ``environment`` (e.g. ``{"GITHUB_CLIENT_SECRET": os.environ[...]}``).
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
    service = {"name": name, "command": command}
    if environment:
        service["environment"] = dict(environment)
    c.JupyterHub.services.append(service)
    c.JupyterHub.load_roles.append(
        {"name": name, "scopes": list(CULLER_SCOPES), "services": [name]}
    )


__all__ = ["CULLER_SCOPES", "Culler", "register"]
