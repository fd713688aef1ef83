"""Reading traitlets configuration without building the classes. Pure, no I/O.

A spawner cannot be built before the hub has a user for it, and a service
reads the hub's settings as data; these helpers answer "what did the admin
configure for this class" as traitlets would, and "which class does this
``*_class`` setting name" as JupyterHub would. The start-up checks
(:mod:`hubext.startup`), the spawners, the culler and the services use them.
"""

from __future__ import annotations

import copy
import difflib
from importlib.metadata import entry_points

from traitlets import TraitError
from traitlets.config import Config, LazyConfigValue
from traitlets.utils.importstring import import_item

from ._validation import ConfigError, ErrorCollector, describe_trait_error


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
    built before the hub has a user for it). A value given as changes
    (``c.X.y.append(...)``, ``.update(...)``, e.g. in a file loaded with
    ``load_subconfig()``) is applied to ``default``, as traitlets applies it
    to the trait's default value; the config is left as it is.
    """
    section = configured_section(cls, config, name)
    if section is None:
        return default
    value = config[section][name]
    if isinstance(value, LazyConfigValue):
        # on copies: get_value() keeps its first result
        return copy.deepcopy(value).get_value(copy.deepcopy(default))
    return value


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


def entry_point_classes(group: str) -> set[str]:
    """The names of the classes a group's entry points name (``module:Class``).

    Read from the entry points' values: nothing is imported.
    """
    names = set()
    for entry_point in entry_points(group=group):
        _, _, attr = entry_point.value.partition(":")
        if attr:
            names.add(attr.split(".")[-1].strip())
    return names


def sections_read_by(*classes: type) -> set[str]:
    """The config sections ``classes`` read: the names of their MROs' classes."""
    return {klass.__name__ for cls in classes for klass in cls.__mro__}


def check_trait_values(cls, config: Config) -> None:
    """Start-up: every value configured for ``cls`` is one its trait accepts,
    for a setting it has.

    JupyterHub builds a spawner only when a server starts, so a value of the
    wrong type (``c.KubeSpawner.cpu_limit = "lots"``) would otherwise fail
    every spawn instead of stopping the hub. Each value is validated by the
    class's own trait, as traitlets would when building it, on a bare
    instance (no ``__init__``: no Kubernetes client, no I/O); the error names
    the section the admin wrote (``KubeSpawner.cpu_limit``). Values the
    trait's own validators (``@validate``) check are left to them: the
    spawners' start-up checks read those. ``c.X.y.append(...)`` values are
    not checked. A name that is not a setting of ``cls``
    (``c.LocalCommunitySpawner.profile_lists``), which traitlets would
    ignore with a warning at each spawn, is refused. Raises
    :class:`~hubext._validation.ConfigErrors` with every bad value.
    """
    traits = cls.class_traits(config=True)
    probe = cls.__new__(cls)
    # No cross-validation (@validate methods): they may need a built object.
    probe._cross_validation_lock = True
    errors = ErrorCollector()
    seen: set[str] = set()
    for klass in cls.__mro__:
        section = config.get(klass.__name__) if hasattr(config, "get") else None
        if not isinstance(section, Config):
            continue
        # names a class still honours in its own section (KubeSpawner's
        # deprecated ones, moved to their new names when it is built)
        honoured = klass.__dict__.get("_deprecated_traits") or {}
        for name, value in section.items():
            if (
                name not in traits
                and name not in honoured
                and not isinstance(value, Config)
            ):
                close = difflib.get_close_matches(name, list(traits), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.add(
                    ConfigError(
                        f"{klass.__name__}.{name}",
                        f"{cls.__name__} has no such setting and would ignore it{hint}",
                    )
                )
                continue
            if name in seen or name not in traits:
                continue
            seen.add(name)
            if isinstance(value, LazyConfigValue):
                continue
            try:
                traits[name]._validate(probe, value)
            except TraitError as e:
                errors.add(
                    ConfigError(
                        f"{klass.__name__}.{name}", describe_trait_error(e, name)
                    )
                )
            except Exception:
                # A trait whose validation needs a built object: it is
                # checked when the spawner is built, as without this check.
                continue
    errors.raise_errors()
