"""What the hub does once hubext's configuration is validated, as it starts.

JupyterHub has no start-up hook for plugins; it builds the authenticator
early in its start-up (in ``init_users``, before ``init_services`` starts
the services), and hubext's authenticator, once every start-up check has
passed, calls :func:`at_hub_start` with the JupyterHub application. This is
the one place that does hub-wide work at start-up:

- hand the services their data (:mod:`hubext.service_data`): the
  communities, the spawner's storage settings, ``c.UsageLimits.default``
  and, for the services that read it, the usage ledger's URL;
- note which services are hubext's culler and budget enforcer, for the end
  reasons of their stops (:mod:`hubext.spawners.stops`);
- open the usage ledger (closing the previous hub's open sessions) and its
  metrics (:func:`hubext.spawners.usage.start_hub_usage`);
- read the budgets' usage, so that no start waits for the ledger
  (:func:`hubext.spawners.limits.start_hub_limits`).

It sits above the spawners and the services in hubext's layers: the
authenticator imports it, nothing below imports it.
"""

from __future__ import annotations

from typing import Any

from .communities import Communities, merge_additions
from .config_reading import configured_value
from .service_data import hand_to_services, spawner_settings
from .spawners.limits import UsageLimits, start_hub_limits
from .spawners.stops import record_hub_services
from .spawners.usage import start_hub_usage
from .usage.config import UsageLedger


def _is_hub(app: Any) -> bool:
    """Whether ``app`` is the JupyterHub application (not a test, not check-config)."""
    import sys

    app_module = sys.modules.get("jupyterhub.app")  # not imported: not a hub
    return app_module is not None and isinstance(app, app_module.JupyterHub)


def ledger_url(app) -> str | None:
    """The usage ledger's URL as this hub resolves it (None: the ledger is off)."""
    settings = UsageLedger(parent=app)
    return settings.resolved_db_url(app.db_url) if settings.enabled else None


def hand_to_hub_services(app, communities: Communities) -> None:
    """:func:`hubext.service_data.hand_to_services` for the hub ``app``.

    Raises ConfigError (naming the service) if the data is too large.
    """
    hand_to_services(
        app.services,
        merge_additions(communities.communities, communities.additions),
        spawner_settings(app.spawner_class, app.config),
        default_limits=configured_value(UsageLimits, app.config, "default", {}),
        ledger_url=ledger_url(app),
    )


def at_hub_start(app, communities: Communities, log) -> None:
    """The hub's start-up work (see the module's doc); nothing outside a hub.

    Handing the services their data raises ConfigError (the caller stops the
    hub with it); the ledger's and the budgets' start log their errors and
    let the hub start.
    """
    if not _is_hub(app):
        return
    hand_to_hub_services(app, communities)
    record_hub_services(app.services)
    start_hub_usage(app, communities, log)
    start_hub_limits(app, communities, log)
