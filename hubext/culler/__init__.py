"""hubext's idle culler: a JupyterHub service with per-community policy."""

from __future__ import annotations

import sys

from ..service_data import SERVICE_ENV
from .app import Culler
from .decide import Cull
from .hub_config import NOT_EXECUTED, is_values_file

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

#: The kind of service :func:`register` marks (``$HUBEXT_SERVICE``).
SERVICE_KIND = "culler"


def register(
    c,
    *,
    name: str = "hubext-culler",
    args=(),
    environment=None,
    cull_users: bool = False,
    hub_config: str | None = None,
) -> None:
    """Run the culler as a hub-managed service with its least-privilege role.

    In ``jupyterhub_config.py``::

        from hubext.culler import register
        register(c, args=["--timeout=3600"])

    ``cull_users=True`` (or ``--cull-users`` in ``args``) also deletes users
    with no server after ``--cull-users-after`` seconds without activity, and
    only then adds ``delete:users`` to the role.

    The communities' ``culling`` policies (and the spawner's storage
    settings) are handed to the culler by the hub when it starts, as data
    (:mod:`hubext.service_data`): the service is marked with
    ``$HUBEXT_SERVICE`` in its ``environment``. The culler executes nothing
    of the hub's configuration and needs no secret but the token JupyterHub
    gives it: ``environment`` is for anything else the service needs (a
    proxy, ...), never the identity providers' secrets.

    ``hub_config`` may only name a zero-to-jupyterhub values file (as
    ``--hub-config`` does); a Python configuration file is refused.

    .. versionchanged:: 0.1
       ``hub_config`` (the hub's ``jupyterhub_config.py``) is no longer
       taken: the hub hands the policies over.
    """
    args = list(args)
    if hub_config is not None:
        if not isinstance(hub_config, str) or not is_values_file(hub_config):
            raise ValueError(
                f"register(hub_config={hub_config!r}): {NOT_EXECUTED}; "
                "remove hub_config=__file__"
            )
        args.append(f"--hub-config={hub_config}")
    cull_users = cull_users or "--cull-users" in args
    if cull_users and "--cull-users" not in args:
        args.append("--cull-users")
    command = [sys.executable, "-m", "hubext.culler", *args]
    # append: works whether or not other services or roles are configured
    # (before or after this call). Call it once.
    service = {
        "name": name,
        "command": command,
        "environment": {**dict(environment or {}), SERVICE_ENV: SERVICE_KIND},
    }
    c.JupyterHub.services.append(service)
    c.JupyterHub.load_roles.append(
        {
            "name": name,
            "scopes": CULLER_SCOPES + (CULLER_USER_SCOPES if cull_users else []),
            "services": [name],
        }
    )


__all__ = [
    "CULLER_SCOPES",
    "CULLER_USER_SCOPES",
    "SERVICE_KIND",
    "Cull",
    "Culler",
    "register",
]
