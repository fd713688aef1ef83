"""What hubext's services get from the hub: data, in one variable, never code.

A hubext service (the idle culler, the usage page, the budget enforcer)
needs a few facts of the hub's configuration: each community's name, idle
policy, prices and limits, the limits of communities without their own, for
the culler the spawner's storage settings, for the usage page and the
enforcer the usage ledger's address. It gets them as data, in one
environment variable the hub fills in when it starts, so that no service
executes the hub's configuration (which needs the hub's environment, its
identity providers' secrets included) and none needs a secret of the hub
but its own API token (and, where it reads the ledger, the ledger's URL).

The contract:

1. a service's ``register(c, ...)`` marks the service it adds to
   ``c.JupyterHub.services`` with ``environment[SERVICE_ENV] = kind``
   (``"culler"``, ``"usage"``, ``"budgets"``);
2. when the hub starts (:mod:`hubext.hub_start`, once the whole
   configuration is validated), :func:`hand_to_services` gives every marked
   service ``environment[COMMUNITIES_ENV]``, JSON of::

       {"communities": {slug: {"display_name": ..., "culling": ..., "usage": ...,
                               "limits": ...}},
        "spawner": {"class": "kubespawner.spawner.KubeSpawner", "delete_pvc": false},
        "limits": {"default": {...}},
        "ledger": {"url": "sqlite:////srv/jupyterhub/hubext-usage.sqlite"}}

   with only the keys of :data:`SERVICE_KEYS` a community sets (never its
   identity rules, shared folders or environment, never a provider's
   configuration), in the registry's order; ``"ledger"`` only for the kinds
   that read the ledger (:data:`LEDGER_KINDS`), and only when the hub keeps
   one;
3. the service reads them back with :func:`read_handover` (or
   :func:`read_communities`, :func:`read_spawner`), which validates the
   definitions again with :func:`hubext.communities.parse_communities` and
   the default limits with :func:`hubext.limits.default_limits`: the hub and
   its services use one parser.

JupyterHub builds the authenticator before it reads ``JupyterHub.services``
(``init_users`` runs before ``init_services`` in ``JupyterHub.initialize``),
so the services it starts have the data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._validation import ConfigError, KeyPath, expect, expect_mapping
from .communities import Community, parse_communities
from .config_reading import configured_value
from .limits import Limits, default_limits

#: Marks a hubext service in its ``environment``; the value is its kind.
SERVICE_ENV = "HUBEXT_SERVICE"
#: The data the hub hands to marked services (JSON, see the module's doc).
COMMUNITIES_ENV = "HUBEXT_COMMUNITIES"
#: The community keys handed to services.
SERVICE_KEYS = ("display_name", "culling", "usage", "limits")
#: The kinds of hubext service (the value of ``SERVICE_ENV``).
CULLER_KIND = "culler"
USAGE_PAGE_KIND = "usage"
BUDGETS_KIND = "budgets"
#: The kinds of service that read the usage ledger, and get its URL.
LEDGER_KINDS = frozenset({USAGE_PAGE_KIND, BUDGETS_KIND})
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
    raw_communities: Mapping,
    spawner: Mapping[str, Any] | None = None,
    *,
    default_limits: Mapping | None = None,
    ledger_url: str | None = None,
) -> str:
    """The JSON handed to a service: the :data:`SERVICE_KEYS` of each
    community (raw, already validated definitions), the ``spawner``
    settings, the default limits (``c.UsageLimits.default``) and, when
    given, the ledger's URL."""
    communities = {}
    for slug, definition in raw_communities.items():
        definition = definition or {}
        communities[slug] = {k: definition[k] for k in SERVICE_KEYS if k in definition}
    data: dict[str, Any] = {
        "communities": communities,
        "spawner": dict(spawner or {}),
        "limits": {"default": dict(default_limits or {})},
    }
    if ledger_url:
        data["ledger"] = {"url": ledger_url}
    return json.dumps(data, allow_nan=False, separators=(",", ":"))


def hand_to_services(
    services: list[dict],
    raw_communities: Mapping,
    spawner: Mapping[str, Any] | None = None,
    *,
    default_limits: Mapping | None = None,
    ledger_url: str | None = None,
) -> None:
    """Give every hubext service (``SERVICE_ENV`` in its ``environment``) the
    hub's data: sets ``environment[COMMUNITIES_ENV]`` in ``services``
    (``JupyterHub.services``), in place. ``ledger_url`` goes only to the
    services that read the ledger (:data:`LEDGER_KINDS`).

    Raises ConfigError, naming ``JupyterHub.services[i].environment``, if
    the payload is too large for an environment variable.
    """
    for i, service in enumerate(services):
        if not (
            isinstance(service, dict)
            and isinstance(service.get("environment"), Mapping)
            and SERVICE_ENV in service["environment"]
        ):
            continue
        kind = service["environment"][SERVICE_ENV]
        payload = communities_payload(
            raw_communities,
            spawner,
            default_limits=default_limits,
            ledger_url=ledger_url if kind in LEDGER_KINDS else None,
        )
        size = len(payload.encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ConfigError(
                KeyPath("JupyterHub.services")[i].attr("environment"),
                f"the communities handed to service {service.get('name')!r} "
                f"({COMMUNITIES_ENV}) are {size} bytes, more than the "
                f"{MAX_PAYLOAD_BYTES} an environment variable can safely hold",
            )
        # A new dict: the configured one may be shared with the config object.
        service["environment"] = {**service["environment"], COMMUNITIES_ENV: payload}


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


@dataclass(frozen=True)
class HandOver:
    """What the hub handed to this service (:func:`read_handover`)."""

    communities: dict[str, Community]
    spawner: dict[str, Any] = field(default_factory=dict)
    #: ``c.UsageLimits.default``: the limits of communities without their own
    default_limits: Limits = field(default_factory=Limits)
    #: the usage ledger's URL (services that read it), or None
    ledger_url: str | None = None


def read_handover(environ: Mapping[str, str] | None = None) -> HandOver:
    """Everything the hub handed to this service, validated again.

    ``environ`` defaults to ``os.environ``. Raises ConfigError (naming
    ``$HUBEXT_COMMUNITIES`` and the key) when the variable is missing or
    invalid.
    """
    data = _load(environ)
    communities = parse_communities(
        data.get("communities", {}), _ROOT.attr("communities")
    )
    spawner = data.get("spawner", {})
    expect_mapping(spawner, _ROOT.attr("spawner"))
    limits = data.get("limits", {})
    expect_mapping(limits, _ROOT.attr("limits"))
    default = default_limits(
        limits.get("default") or {}, _ROOT.attr("limits").attr("default")
    )
    ledger = data.get("ledger", {})
    expect_mapping(ledger, _ROOT.attr("ledger"))
    url = ledger.get("url")
    if url is not None:
        expect(url, str, _ROOT.attr("ledger").attr("url"), "a database URL")
    return HandOver(communities, dict(spawner), default, url or None)


def read_communities(environ: Mapping[str, str] | None = None) -> dict[str, Community]:
    """The communities the hub handed to this service, validated again.

    ``environ`` defaults to ``os.environ``. Raises ConfigError (naming
    ``$HUBEXT_COMMUNITIES``) when the variable is missing or invalid.
    """
    return read_handover(environ).communities


def read_spawner(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The hub's spawner settings handed to this service (see
    :func:`spawner_settings`); ``{}`` if the hub gave none."""
    return read_handover(environ).spawner
