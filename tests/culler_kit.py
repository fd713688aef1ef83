"""What the culler tests share: a culler with a fixed clock, and one pass of it."""

from __future__ import annotations

import logging
from datetime import datetime

from hubext.culler.app import Culler
from hubext.culler.engine import CullPass, PassSettings
from hubext.culling import CullingPolicy
from hubext.service_data import SERVICE_ENV, hand_to_services
from hubext.services.client import HubAPI


def fake_hub_culler(
    url: str, token: str, now: datetime, policies=None, **traits
) -> Culler:
    """A culler of the hub at ``url`` whose clock stands at ``now``.

    ``policies`` are the communities' policies (none by default): the
    culler's own, without reading a hub configuration.
    """
    culler = Culler(
        url=url,
        api_token=token,
        idle_timeout=traits.pop("idle_timeout", 3600),
        log=logging.getLogger("hubext.culler.test"),
        **traits,
    )
    culler.policies = policies or {}
    culler.default = culler.default_policy()
    culler.now = lambda: now
    return culler


async def one_pass(culler: Culler, **api_kwargs):
    """One culling pass with a fresh API client, closed afterwards."""
    api = HubAPI(culler.url, culler.api_token, **api_kwargs)
    try:
        return await culler.cull_pass(api)
    finally:
        api.close()


async def engine_pass(
    url: str,
    token: str,
    now: datetime,
    settings: PassSettings,
    policies=None,
    default: CullingPolicy | None = None,
):
    """One pass of the engine alone (no Application), from explicit inputs."""
    engine = CullPass(
        settings,
        policies or {},
        default or CullingPolicy(idle_timeout=3600),
        now=lambda: now,
        log=logging.getLogger("hubext.culler.test"),
    )
    api = HubAPI(url, token)
    try:
        return await engine.run(api)
    finally:
        api.close()


def service_env(communities=None, spawner=None) -> dict[str, str]:
    """The variables the hub gives a culler registered with ``register()``:
    its kind and the communities (``{}`` by default), as the hub hands them."""
    services = [{"name": "hubext-culler", "environment": {SERVICE_ENV: "culler"}}]
    hand_to_services(services, communities or {}, spawner)
    return services[0]["environment"]
