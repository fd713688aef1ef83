"""Who stopped a server, and so how its session ended.

JupyterHub does not tell a spawner who asked for a stop (see
docs/upstream/jupyterhub.md, "No accumulated usage, and a spawner cannot
tell who stopped it"). This module is the one place hubext reads it:

- :func:`stop_requester` reads the request handler that began the stop's
  task (JupyterHub's ``stop_single_user`` task, or the request itself) from
  the task's coroutine frame, an implementation detail of JupyterHub, tested
  on every JupyterHub version hubext supports (tests/test_usage_recording.py
  runs in both CI legs);
- :func:`end_reason` turns it, and what the hub's own code declared
  (:data:`~hubext.usage.model.stop_reason`), into an
  :class:`~hubext.usage.model.EndReason`;
- hubext's services are known by the kind they were registered with
  (:data:`~hubext.service_data.SERVICE_ENV`: the culler, the budget
  enforcer), recorded from the hub's configuration when it starts
  (:func:`record_hub_services`), not by their names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from ..service_data import BUDGETS_KIND, CULLER_KIND, SERVICE_ENV
from ..usage.model import EndReason, stop_reason

#: The end reason of a stop by each kind of hubext service.
REASON_OF_KIND: Mapping[str, EndReason] = {
    CULLER_KIND: EndReason.CULLED,
    BUDGETS_KIND: EndReason.STOPPED_FOR_BUDGET,
}

#: Service name -> end reason of its stops, for this hub's hubext services.
_hub_services: dict[str, EndReason] = {}


def record_hub_services(services: Iterable) -> None:
    """Note the hub's services registered with a hubext kind (``JupyterHub.services``)."""
    _hub_services.clear()
    for service in services:
        if not isinstance(service, Mapping):
            continue
        environment = service.get("environment")
        kind = (
            environment.get(SERVICE_ENV) if isinstance(environment, Mapping) else None
        )
        if kind in REASON_OF_KIND and isinstance(service.get("name"), str):
            _hub_services[service["name"]] = REASON_OF_KIND[kind]


def stop_requester() -> tuple[str, str] | None:
    """``(kind, name)`` of who asked for the stop running in this task, or None.

    A stop requested through the hub (REST API, the home and admin pages, a
    service) runs in a task begun by the request's handler: JupyterHub's own
    ``stop_single_user`` task, or the request itself. Its handler's
    ``current_user`` (a user or a service) asked. None when no request began
    the task (the hub shutting down with ``cleanup_servers``).
    """
    try:
        from jupyterhub.handlers.base import BaseHandler

        task = asyncio.current_task()
        coro = task.get_coro() if task is not None else None
        frame = getattr(coro, "cr_frame", None)
        handler = frame.f_locals.get("self") if frame is not None else None
        if not isinstance(handler, BaseHandler):
            return None
        who = handler.current_user
        if who is None:
            return None
        return (getattr(who, "kind", "user"), who.name)
    except Exception:
        return None


def end_reason_for(
    requester: tuple[str, str] | None,
    owner: str,
    culler_services: Iterable[str] = (),
    services: Mapping[str, EndReason] | None = None,
) -> EndReason:
    """The end reason of a stop asked by ``requester`` for ``owner``'s server.

    ``services``: the hub's hubext services and their reasons (by default
    those :func:`record_hub_services` noted); ``culler_services``: other
    services whose stops are culling (``c.UsageLedger.culler_services``).
    """
    if requester is None:
        return EndReason.HUB_RESTART
    kind, name = requester
    if kind == "service":
        services = _hub_services if services is None else services
        if name in services:
            return services[name]
        return (
            EndReason.CULLED if name in culler_services else EndReason.STOPPED_BY_ADMIN
        )
    return EndReason.STOPPED_BY_USER if name == owner else EndReason.STOPPED_BY_ADMIN


def end_reason(owner: str, culler_services: Iterable[str] = ()) -> EndReason:
    """How the stop running now ends ``owner``'s session.

    What the hub's own code declared for it (a member who left every
    community: :data:`~hubext.usage.model.stop_reason`), else who asked.
    """
    declared = stop_reason.get()
    if declared is not None:
        return declared
    return end_reason_for(stop_requester(), owner, culler_services)
