"""Start-up checks that span several plugins' configuration.

JupyterHub builds the authenticator when it starts, but a spawner only when a
server starts; the authenticator therefore runs the spawner's checks
(``check_hub_config``) too, so that an error in, say, a community's
``default_profile`` stops the hub at start-up, not at the first spawn.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from traitlets.config import Config
from traitlets.utils.importstring import import_item

from .communities import Communities


def resolve_class(value, group: str):
    """A class configured as JupyterHub does: a class, an entry point name or a path.

    ``group`` is the entry point group (``jupyterhub.spawners``,
    ``jupyterhub.authenticators``). None if it cannot be resolved.
    """
    if isinstance(value, type):
        return value
    if not isinstance(value, str):
        return None
    for entry_point in entry_points(group=group):
        if entry_point.name == value:
            return entry_point.load()
    if "." in value:
        try:
            return import_item(value)
        except Exception:
            return None
    return None


def check_spawner_config(
    config: Config, communities: Communities, spawner_class
) -> None:
    """Run the spawner class's ``check_hub_config`` if it has one."""
    spawner_class = resolve_class(spawner_class, "jupyterhub.spawners")
    check = getattr(spawner_class, "check_hub_config", None)
    if check is not None:
        check(config, communities)


def configured_value(cls, config: Config, name: str, default):
    """A trait's configured value for ``cls``, as traitlets resolves it (by MRO).

    Read from the config without building the class (a spawner cannot be
    built before the hub has a user for it).
    """
    value = default
    for klass in reversed(cls.__mro__):
        section = config.get(klass.__name__) if hasattr(config, "get") else None
        if section is not None and name in section:
            value = section[name]
    return value
