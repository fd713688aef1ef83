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
  (:func:`hubext.spawners.limits.start_hub_limits`);
- open the communities' delegated state once, its schema created or
  upgraded (:func:`hubext.console.config.start_hub_console`, called by
  :func:`hubext.console.hub.hub_console`), and log what of each community's
  stored settings applies, and each stored value today's bounds no longer
  allow, with its key path: not applied
  (:func:`hubext.spawners.delegation.report_stored_settings`);
- gather what the console serves (:class:`hubext.console.hub.HubConsole`:
  that store, with the servers the limits count) and the invitations
  (:func:`hubext.console.join.hub_invitations`, in that store): returned
  to the authenticator (:class:`HubStart`), which serves the console when
  the hub registered it, and the join page.

It sits above the spawners and the services in hubext's layers: the
authenticator imports it, nothing below imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .communities import Communities, merge_additions
from .config_reading import configured_value
from .console.config import Console
from .console.hub import HubConsole, hub_console
from .console.join import HubInvitations, hub_invitations
from .limits import default_limits
from .service_data import hand_to_services, spawner_settings
from .spawners.delegation import report_stored_settings
from .spawners.limits import UsageLimits, hub_limits, ledger_url_of, start_hub_limits
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
        state_url=Console(parent=app).resolved_db_url(app.db_url),
    )


def report_delegated_state(app, store, communities: Communities, log) -> None:
    """Log what of the communities' stored settings applies, and what does not.

    Each stored value today's bounds do not allow, once, with its key path
    (:func:`~hubext.spawners.delegation.report_stored_settings`). An error
    reading the state is logged; the hub starts.
    """
    try:
        documents = store.read_all()
    except Exception as e:
        log.error(
            "hubext: the communities' stored settings cannot be read: %s",
            type(e).__name__,
        )
        return
    report_stored_settings(
        documents,
        communities.registry,
        getattr(app.spawner_class, "delegated_kind", None),
        log,
    )


@dataclass(frozen=True)
class HubStart:
    """What the hub's start-up gives the authenticator to serve."""

    #: the console's data (None outside a hub)
    console: HubConsole | None = None
    #: memberships by invitation, the join page and its API (None outside a
    #: hub, or when the delegated state cannot be opened)
    invitations: HubInvitations | None = None


def at_hub_start(app, communities: Communities, log) -> HubStart:
    """The hub's start-up work (see the module's doc); nothing outside a hub.

    Handing the services their data raises ConfigError (the caller stops the
    hub with it); the ledger's, the budgets' and the delegated state's
    start log their errors and let the hub start. Returns what the console
    and the invitations serve (nothing outside a hub).
    """
    if not _is_hub(app):
        return HubStart()
    hand_to_hub_services(app, communities)
    record_hub_services(app.services)
    start_hub_usage(app, communities, log)
    start_hub_limits(app, communities, log)
    settings = UsageLimits(parent=app)
    # the store is opened here, once (hub_console calls start_hub_console)
    console = hub_console(
        app,
        communities.registry,
        log,
        default_limits=default_limits(settings.default),
        # the servers and budgets the spawners' limits count (one per hub)
        servers=hub_limits(
            ledger_url_of(UsageLedger(parent=app), app.db_url), settings, log
        ),
    )
    if console.store is not None:
        report_delegated_state(app, console.store, communities, log)
    return HubStart(
        console=console,
        invitations=hub_invitations(app, communities.registry, console.store),
    )
