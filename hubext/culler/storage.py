"""Whether deleting a user from the hub would delete their storage.

Deleting a JupyterHub user (``DELETE /hub/api/users/:name``) calls the
spawner's ``delete_forever()`` for each of the user's servers. KubeSpawner's
deletes the user's PersistentVolumeClaim (their home) unless
``delete_pvc`` is False. The culler deletes users only when the hub's
spawner settings show that storage is kept: the settings the hub hands to
its services (:func:`hubext.service_data.spawner_settings`), or those read
from a zero-to-jupyterhub values file (:func:`config_spawner_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets.config import Config

from ..config_reading import resolve_class
from ..service_data import spawner_settings

#: JupyterHub's own default spawner.
DEFAULT_SPAWNER = "localprocess"


def storage_verdict(settings: Mapping[str, Any]) -> tuple[str, str]:
    """``(verdict, message)`` for deleting users, from the hub's spawner settings.

    verdict is ``"keeps"`` (deleting users keeps storage), ``"deletes"``
    (it would delete storage: the culler must not delete users) or
    ``"unknown"`` (the culler cannot tell; it warns).
    """
    value = settings.get("class")
    if not isinstance(value, str):
        return "unknown", "the hub handed no spawner settings"
    name = value.rpartition(".")[2] or value
    if "delete_pvc" in settings:
        if settings["delete_pvc"]:
            return "deletes", (
                f"deleting a user makes {name} delete their volume claim "
                f"(delete_pvc is True): set c.{name}.delete_pvc = False "
                "(zero-to-jupyterhub: hub.config." + name + ".delete_pvc: false)"
            )
        return "keeps", f"{name}.delete_pvc is False"
    if "delete_forever" not in settings:
        return "unknown", f"cannot import the hub's spawner class {value!r}"
    if settings["delete_forever"]:
        return "unknown", (
            f"deleting a user calls {name}.delete_forever(), which may delete "
            "their storage; check that it does not"
        )
    return "keeps", f"{name} keeps nothing to delete"


def config_spawner_settings(config: Config) -> dict[str, Any]:
    """The spawner settings of a hub ``config`` read as data (a values file's
    ``hub.config``); only ``{"class": ...}`` if the class cannot be imported."""
    value = DEFAULT_SPAWNER
    jupyterhub = config.get("JupyterHub") if hasattr(config, "get") else None
    if jupyterhub is not None and "spawner_class" in jupyterhub:
        value = jupyterhub["spawner_class"]
    cls = resolve_class(value, "jupyterhub.spawners")
    if cls is None:
        return {"class": str(value)}
    return spawner_settings(cls, config)
