"""Reading traitlets configuration without building the classes. Pure, no I/O.

A spawner cannot be built before the hub has a user for it, and a service
reads the hub's settings as data; these helpers answer "what did the admin
configure for this class" as traitlets would, and "which class does this
``*_class`` setting name" as JupyterHub would. The start-up checks
(:mod:`hubext.startup`), the spawners, the culler and the services use them.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from traitlets.config import Config
from traitlets.utils.importstring import import_item


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


def configured_value(cls, config: Config, name: str, default):
    """A trait's configured value for ``cls``, as traitlets resolves it (by MRO).

    Read from the config without building the class (a spawner cannot be
    built before the hub has a user for it).
    """
    section = configured_section(cls, config, name)
    return default if section is None else config[section][name]


def configured_section(cls, config: Config, name: str) -> str | None:
    """The config section (class name) whose ``name`` applies to ``cls``, or None.

    The most derived class of ``cls``'s MRO that sets it, as traitlets
    resolves it: ``"KubeSpawner"`` for ``c.KubeSpawner.profile_list`` on
    CommunityKubeSpawner. Error messages name it as the admin wrote it.
    """
    for klass in cls.__mro__:
        section = config.get(klass.__name__) if hasattr(config, "get") else None
        if section is not None and name in section:
            return klass.__name__
    return None
