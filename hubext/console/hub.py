"""The console in the hub: its registration, and what its handlers work with.

In ``jupyterhub_config.py`` (z2jh: ``hub.extraConfig``)::

    from hubext.console import register_console
    register_console(c)

:func:`register_console` defines the console's scopes
(:mod:`hubext.console.access`) and adds hubext's templates to the hub's;
hubext's authenticator then grants the scopes (community admins filtered
to their community, hub admins unfiltered) and serves the console's pages
and REST API in the hub (:mod:`hubext.console.handlers`). Without it, no
console: a stored setting still applies within today's bounds, and nobody
can change it.

At start-up, :func:`hub_console` gathers what the handlers need
(:class:`HubConsole`): the communities, the store, the spawner's kind
(read from the spawner class's ``delegated_kind``), the limits, and what
the hub's servers take now.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..communities import Community
from ..delegated import Environment, SpawnerKind
from ..limits import Budget, Demand, Limits, limits_of
from ..self_service import SelfService
from ..usage.service import add_hub_templates
from .access import ADMIN_SCOPE, CUSTOM_SCOPES
from .config import start_hub_console
from .store import StateStore
from .view import delegated_parts

#: The console's page templates (names start with ``hubext-console-``).
TEMPLATES = Path(__file__).with_name("templates")

#: The spawners' kinds the console knows (``delegated_kind``).
KINDS = ("kube", "local")


def register_console(c) -> None:
    """Turn the console on: its scopes and templates, in the hub's configuration.

    Defines ``custom:hubext-console:read`` and ``custom:hubext-console:admin``
    (``c.JupyterHub.custom_scopes``), and adds hubext's templates to the
    hub's (``c.JupyterHub.template_paths``: the console's pages, and the
    "Communities" link in the hub's navigation bar). Needs hubext's
    authenticator, which grants the scopes and serves the console.
    """
    c.JupyterHub.custom_scopes.update(CUSTOM_SCOPES)
    add_hub_templates(c)
    path = str(TEMPLATES)
    paths = c.JupyterHub.template_paths  # a list, or the default appended to
    added = paths if isinstance(paths, list) else paths.to_dict().get("extend", [])
    if path not in added:
        paths.append(path)


class Servers(Protocol):
    """What the hub's servers take now (the spawners' limits keep it)."""

    def running(self, community: str) -> list[Demand]: ...

    def budget_use(
        self, community: str, user: str, budget: Budget
    ) -> Awaitable[dict[tuple[str, bool], float]]: ...


@dataclass
class HubConsole:
    """What the console's handlers work with, gathered when the hub starts."""

    communities: Mapping[str, Community]
    #: None when the delegated state could not be opened (the console
    #: answers 503 until the hub restarts with it)
    store: StateStore | None
    #: the spawner's kind (its class's ``delegated_kind``); None: a spawner
    #: that takes no stored environment
    kind: SpawnerKind | None
    default_limits: Limits = field(default_factory=Limits)
    servers: Servers | None = None
    #: the spawner's check of a community's software environment on the
    #: machine, if it has one (hubext-local's ``environment_problem``, with
    #: the hub's configuration): ``(community, environment, username) ->
    #: str | None``, why it cannot run servers here; blocking
    software_check: (
        Callable[[Community, Environment, str | None], str | None] | None
    ) = None
    log: logging.Logger | None = None

    def limits(self, slug: str) -> Limits:
        return limits_of(self.communities, slug, self.default_limits)

    def bounds(self, community: Community) -> SelfService:
        """The community's bounds as this hub can apply them (no environments
        when the spawner takes none)."""
        service = community.self_service
        if self.kind is None and service.environments is not None:
            service = replace(service, environments=None)
        return service


def spawner_kind(spawner_class: Any) -> SpawnerKind | None:
    """The kind of environments ``spawner_class`` takes (``delegated_kind``)."""
    kind = getattr(spawner_class, "delegated_kind", None)
    return kind if kind in KINDS else None


def hub_console(
    app,
    communities: Mapping[str, Community],
    log: logging.Logger,
    *,
    default_limits: Limits | None = None,
    servers: Servers | None = None,
) -> HubConsole:
    """At hub start-up: the store opened (:func:`start_hub_console`), and
    what the console's handlers need."""
    store = start_hub_console(app, log)
    registered = ADMIN_SCOPE in (getattr(app, "custom_scopes", None) or {})
    delegating = [
        c.slug for c in communities.values() if delegated_parts(c.self_service)
    ]
    if delegating and not registered:
        log.warning(
            "hubext: %s delegate%s settings to their admins (self_service), but "
            "the console is off: nobody can change them (call "
            "hubext.console.register_console(c) in the hub's configuration)",
            ", ".join(delegating),
            "s" if len(delegating) == 1 else "",
        )
    kind = spawner_kind(app.spawner_class)
    if (
        delegating
        and kind is None
        and any(
            communities[s].self_service.environments is not None for s in delegating
        )
    ):
        log.warning(
            "hubext: the spawner %s takes no stored environments: the "
            "communities' admins cannot offer any",
            getattr(app.spawner_class, "__name__", app.spawner_class),
        )
    # hubext-local: the directory on the machine, checked as its servers'
    # user would run it (hubext.software_environments.machine_problem)
    problem = getattr(app.spawner_class, "environment_problem", None)
    check = functools.partial(problem, app.config) if callable(problem) else None
    return HubConsole(
        communities=communities,
        store=store,
        kind=kind,
        default_limits=default_limits or Limits(),
        servers=servers,
        software_check=check,
        log=log,
    )
