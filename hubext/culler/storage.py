"""Whether deleting a user from the hub would delete their storage.

Deleting a JupyterHub user (``DELETE /hub/api/users/:name``) calls the
spawner's ``delete_forever()`` for each of the user's servers. KubeSpawner's
deletes the user's PersistentVolumeClaim (their home) unless
``delete_pvc`` is False. The culler deletes users only when the hub's
configuration shows that storage is kept.
"""

from __future__ import annotations

from jupyterhub.spawner import Spawner
from traitlets.config import Config

from ..startup import configured_value, resolve_class

#: JupyterHub's own default spawner.
DEFAULT_SPAWNER = "localprocess"


def storage_check(config: Config) -> tuple[str, str]:
    """``(verdict, message)`` for deleting users under this hub ``config``.

    verdict is ``"keeps"`` (deleting users keeps storage), ``"deletes"``
    (it would delete storage: the culler must not delete users) or
    ``"unknown"`` (the culler cannot tell; it warns).
    """
    value = DEFAULT_SPAWNER
    jupyterhub = config.get("JupyterHub") if hasattr(config, "get") else None
    if jupyterhub is not None and "spawner_class" in jupyterhub:
        value = jupyterhub["spawner_class"]
    cls = resolve_class(value, "jupyterhub.spawners")
    if cls is None:
        return "unknown", f"cannot import the hub's spawner class {value!r}"
    name = cls.__name__
    if "delete_pvc" in cls.class_traits():
        default = cls.class_traits()["delete_pvc"].default()
        if configured_value(cls, config, "delete_pvc", default):
            return "deletes", (
                f"deleting a user makes {name} delete their volume claim "
                f"(delete_pvc is True): set c.{name}.delete_pvc = False "
                "(zero-to-jupyterhub: hub.config." + name + ".delete_pvc: false)"
            )
        return "keeps", f"{name}.delete_pvc is False"
    if getattr(cls, "delete_forever", None) is not Spawner.delete_forever:
        return "unknown", (
            f"deleting a user calls {name}.delete_forever(), which may delete "
            "their storage; check that it does not"
        )
    return "keeps", f"{name} keeps nothing to delete"
