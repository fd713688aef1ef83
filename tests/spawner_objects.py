"""The user and hub objects a spawner is built with, without JupyterHub's database.

JupyterHub builds spawners with its ``User`` and ``Hub`` objects; spawners
read only these attributes of them.
"""

from __future__ import annotations

from types import SimpleNamespace

HUB = SimpleNamespace(
    public_host="hub.example.org",
    url="http://hub:8081/hub/",
    base_url="/hub/",
    api_url="http://hub:8081/hub/api",
)


def hub_user(name: str, groups=(), admin: bool = False) -> SimpleNamespace:
    """A hub user in ``groups`` (JupyterHub group names)."""
    return SimpleNamespace(
        name=name,
        id=int.from_bytes(name.encode()) % 10_000,
        url=f"/user/{name}/",
        escaped_name=name,
        admin=admin,
        groups=[SimpleNamespace(name=g) for g in groups],
    )
