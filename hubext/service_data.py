"""The communities handed to hubext's services as data, never as code.

A hubext service (the idle culler, the usage page) needs a few facts of the
hub's configuration: each community's name, idle policy and prices, and for
the culler the spawner's storage settings. It gets them as data, in one
environment variable the hub fills in when it starts, so that no service
executes the hub's configuration (which needs the hub's environment, its
identity providers' secrets included) and none needs a secret but its own
API token.

The contract:

1. a service's ``register(c, ...)`` marks the service it adds to
   ``c.JupyterHub.services`` with ``environment[SERVICE_ENV] = kind``
   (``"culler"``, ``"usage"``);
2. when the hub starts, :class:`~hubext.authenticator.CommunityAuthenticator`,
   once it has validated the whole configuration, calls
   :func:`hand_to_services`: every marked service gets
   ``environment[COMMUNITIES_ENV]``, JSON of::

       {"communities": {slug: {"display_name": ..., "culling": ..., "usage": ...}},
        "spawner": {"class": "kubespawner.spawner.KubeSpawner", "delete_pvc": false}}

   with only the keys of :data:`SERVICE_KEYS` a community sets (never its
   identity rules, shared folders or environment, never a provider's
   configuration), in the registry's order;
3. the service reads them back with :func:`read_communities` (and
   :func:`read_spawner`), which validates the definitions again with
   :func:`hubext.communities.parse_communities`: the hub and its services
   use one parser.

JupyterHub builds the authenticator before it reads ``JupyterHub.services``
(``init_users`` runs before ``init_services`` in ``JupyterHub.initialize``),
so the services it starts have the data.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from ._validation import ConfigError, KeyPath, expect_mapping
from .communities import Community, parse_communities
from .config_reading import configured_value

#: Marks a hubext service in its ``environment``; the value is its kind.
SERVICE_ENV = "HUBEXT_SERVICE"
#: The data the hub hands to marked services (JSON, see the module's doc).
COMMUNITIES_ENV = "HUBEXT_COMMUNITIES"
#: The community keys handed to services.
SERVICE_KEYS = ("display_name", "culling", "usage", "limits")
#: The largest payload handed over: an environment variable of more than
#: 128 KiB cannot be passed to a process on Linux (MAX_ARG_STRLEN).
MAX_PAYLOAD_BYTES = 100_000

_ROOT = KeyPath(f"${COMMUNITIES_ENV}")


def spawner_settings(spawner_class: type, config: Mapping) -> dict[str, Any]:
    """The spawner facts a service may need, from the hub's class and config.

    ``{"class": "module.Class", "delete_forever": bool}`` (whether the class
    overrides ``Spawner.delete_forever``, which deleting a user calls), plus
    ``"delete_pvc"`` (as traitlets resolves it for that class) when the class
    has that trait: what deleting a user deletes (see
    :mod:`hubext.culler.storage`).
    """
    from jupyterhub.spawner import Spawner

    settings: dict[str, Any] = {
        "class": f"{spawner_class.__module__}.{spawner_class.__qualname__}",
        "delete_forever": getattr(spawner_class, "delete_forever", None)
        is not Spawner.delete_forever,
    }
    traits = spawner_class.class_traits()
    if "delete_pvc" in traits:
        default = traits["delete_pvc"].default()
        settings["delete_pvc"] = bool(
            configured_value(spawner_class, config, "delete_pvc", default)
        )
    return settings


def communities_payload(
    raw_communities: Mapping, spawner: Mapping[str, Any] | None = None
) -> str:
    """The JSON handed to services: the :data:`SERVICE_KEYS` of each community
    (raw, already validated definitions) and the ``spawner`` settings."""
    communities = {}
    for slug, definition in raw_communities.items():
        definition = definition or {}
        communities[slug] = {k: definition[k] for k in SERVICE_KEYS if k in definition}
    return json.dumps(
        {"communities": communities, "spawner": dict(spawner or {})},
        allow_nan=False,
        separators=(",", ":"),
    )


def hand_to_services(
    services: list[dict],
    raw_communities: Mapping,
    spawner: Mapping[str, Any] | None = None,
) -> None:
    """Give every hubext service (``SERVICE_ENV`` in its ``environment``) the
    communities: sets ``environment[COMMUNITIES_ENV]`` in ``services``
    (``JupyterHub.services``), in place.

    Raises ConfigError, naming ``JupyterHub.services[i].environment``, if
    the payload is too large for an environment variable.
    """
    marked = [
        (i, service)
        for i, service in enumerate(services)
        if isinstance(service, dict)
        and isinstance(service.get("environment"), Mapping)
        and SERVICE_ENV in service["environment"]
    ]
    if not marked:
        return
    payload = communities_payload(raw_communities, spawner)
    size = len(payload.encode())
    for i, service in marked:
        if size > MAX_PAYLOAD_BYTES:
            raise ConfigError(
                KeyPath("JupyterHub.services")[i].attr("environment"),
                f"the communities handed to service {service.get('name')!r} "
                f"({COMMUNITIES_ENV}) are {size} bytes, more than the "
                f"{MAX_PAYLOAD_BYTES} an environment variable can safely hold",
            )
        # A new dict: the configured one may be shared with the config object.
        service["environment"] = {**service["environment"], COMMUNITIES_ENV: payload}


def hand_to_hub_services(parent: Any, raw_communities: Mapping) -> None:
    """:func:`hand_to_services` for the JupyterHub application ``parent``,
    with its spawner's settings; nothing for any other parent (a test,
    ``hubext check-config``)."""
    app_module = sys.modules.get("jupyterhub.app")  # not imported: not a hub
    if app_module is None or not isinstance(parent, app_module.JupyterHub):
        return
    hand_to_services(
        parent.services,
        raw_communities,
        spawner_settings(parent.spawner_class, parent.config),
    )


def _load(environ: Mapping[str, str] | None) -> dict:
    environ = os.environ if environ is None else environ
    text = environ.get(COMMUNITIES_ENV)
    if text is None:
        raise ConfigError(
            _ROOT,
            "not set: the hub hands the communities to a service only when the "
            "service is registered with hubext's register() (e.g. "
            "hubext.culler.register(c, ...)) and the hub uses hubext's "
            "CommunityAuthenticator",
        )
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(_ROOT, f"not valid JSON ({e})") from None
    expect_mapping(data, _ROOT)
    return data


def read_communities(environ: Mapping[str, str] | None = None) -> dict[str, Community]:
    """The communities the hub handed to this service, validated again.

    ``environ`` defaults to ``os.environ``. Raises ConfigError (naming
    ``$HUBEXT_COMMUNITIES``) when the variable is missing or invalid.
    """
    data = _load(environ)
    raw = data.get("communities", {})
    return parse_communities(raw, _ROOT.attr("communities"))


def read_spawner(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The hub's spawner settings handed to this service (see
    :func:`spawner_settings`); ``{}`` if the hub gave none."""
    data = _load(environ)
    spawner = data.get("spawner", {})
    expect_mapping(spawner, _ROOT.attr("spawner"))
    return dict(spawner)
