"""What a spawner is built with, without JupyterHub's database.

JupyterHub builds spawners with its ``User`` and ``Hub`` objects; spawners
read only these attributes of them. The configuration of a KubeSpawner test
is built by :func:`kube_spawner_config` (the ``kube_spawner_config`` fixture
of tests/conftest.py binds it to the test's own directory), and its pod by
:func:`pod_manifest`, as ``start()`` builds it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

from traitlets.config import Config

from hubext.roles import community_admin_role_name

#: KubeSpawner's own waits on the in-memory cluster, bounded well below the
#: tests' timeouts.
CLUSTER_WAITS = {"start_timeout": 10, "k8s_api_request_retry_timeout": 10}

HUB = SimpleNamespace(
    public_host="hub.example.org",
    url="http://hub:8081/hub/",
    base_url="/hub/",
    api_url="http://hub:8081/hub/api",
)


def hub_user(name: str, groups=(), admin: bool = False, admin_of=()) -> SimpleNamespace:
    """A hub user in ``groups`` (JupyterHub group names), holding the
    community-admin roles of ``admin_of`` next to the default ``user`` role
    (as hubext's authenticator assigns them)."""
    return SimpleNamespace(
        name=name,
        id=int.from_bytes(name.encode()) % 10_000,
        url=f"/user/{name}/",
        escaped_name=name,
        admin=admin,
        groups=[SimpleNamespace(name=g) for g in groups],
        roles=[SimpleNamespace(name="user")]
        + [SimpleNamespace(name=community_admin_role_name(s)) for s in admin_of],
    )


def kube_spawner(config, name="ann", groups=(), admin_of=(), *, admin=False, **kwargs):
    """A CommunityKubeSpawner as JupyterHub builds it, minus the database objects."""
    from hubext.spawners.kube import CommunityKubeSpawner

    return CommunityKubeSpawner(
        config=config,
        user=hub_user(name, groups, admin=admin, admin_of=admin_of),
        hub=HUB,
        api_token="not-a-token",
        oauth_client_id=f"jupyterhub-user-{name}",
        **kwargs,
    )


async def pod_manifest(spawner, options=None) -> dict:
    """The pod of a CommunityKubeSpawner given ``options`` (the user's
    submission), built as ``start()`` builds it, as JSON data sent over the wire."""
    from kubernetes_asyncio.client import ApiClient

    await spawner.apply_community_options(options or {})
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    api = ApiClient()
    try:
        return api.sanitize_for_serialization(pod)
    finally:
        await api.close()


def kube_spawner_config(
    profiles, communities, *, ledger: Path, namespace: str | None = None, **traits
) -> Config:
    """A hub configuration for CommunityKubeSpawner.

    ``profiles`` and ``communities`` are copied (a test may change its own);
    sessions are recorded in the SQLite file ``ledger``; ``traits`` are
    KubeSpawner's. With a ``namespace``, the spawner works in it on the
    in-memory cluster, with its waits bounded (:data:`CLUSTER_WAITS`).
    """
    config = Config()
    config.UsageLedger.db_url = f"sqlite:///{ledger}"
    config.KubeSpawner.profile_list = copy.deepcopy(profiles)
    config.Communities.communities = copy.deepcopy(communities)
    if namespace is not None:
        config.KubeSpawner.namespace = namespace
        traits = {**CLUSTER_WAITS, **traits}
    for name, value in traits.items():
        config.KubeSpawner[name] = value
    return config
