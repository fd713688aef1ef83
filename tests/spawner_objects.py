"""The user and hub objects a spawner is built with, without JupyterHub's database.

JupyterHub builds spawners with its ``User`` and ``Hub`` objects; spawners
read only these attributes of them.
"""

from __future__ import annotations

from types import SimpleNamespace

from hubext.roles import community_admin_role_name

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
