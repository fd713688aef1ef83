"""Settings the hub would ignore, refused at start-up. Pure, no I/O.

traitlets applies ``c.SomeClass.name`` to ``SomeClass`` and its subclasses
only, and ignores (with a warning, when the class is built) a name the class
does not have. A spawner is built at the first spawn, so the warning comes
late, or never reaches the admin. These checks find, from the configuration
alone, every setting the hub's spawner, authenticator and identity providers
would not read: a section of a class none of them inherits from
(``c.KubeSpawner.profile_list`` with ``hubext-local``), and a name none of
them has (``c.LocalCommunitySpawner.profile_lists``). Each error names the
setting as written and where it belongs.
"""

from __future__ import annotations

import difflib

from traitlets.config import Config

from ._validation import ConfigError, ErrorCollector
from .config_reading import entry_point_classes, sections_read_by
from .providers import PROVIDER_KINDS

#: Spawner classes whose settings only a spawner inheriting from them reads,
#: besides those of the ``jupyterhub.spawners`` entry points.
SPAWNER_SECTIONS = frozenset(
    {
        "LocalCommunitySpawner",
        "LocalProcessSpawner",
        "CommunityKubeSpawner",
        "KubeSpawner",
    }
)


#: hubext's spawners' entry point names, by class.
HUBEXT_SPAWNERS = {
    "LocalCommunitySpawner": "hubext-local",
    "CommunityKubeSpawner": "hubext-kube",
}


def _not_read(section: str, key: str, reader: type, what: str) -> ConfigError:
    """A setting in a section ``reader`` (the hub's ``what``) does not read."""
    if section in HUBEXT_SPAWNERS and reader.__name__ not in HUBEXT_SPAWNERS:
        name = HUBEXT_SPAWNERS[section]
        instead = f"to use {name}, set c.JupyterHub.spawner_class = {name!r}"
    elif key in reader.class_traits(config=True):
        instead = f"set it as c.{reader.__name__}.{key}"
    else:
        instead = f"{reader.__name__} has no such setting"
    return ConfigError(
        f"{section}.{key}",
        f"ignored: the hub's {what}, {reader.__name__} "
        f"(JupyterHub.{what}_class), does not read {section} settings; {instead}",
    )


def check_spawner_sections(config: Config, spawner: type) -> None:
    """Settings of another spawner's class are refused, not ignored.

    ``c.KubeSpawner.profile_list`` with ``hubext-local`` (or
    ``c.LocalCommunitySpawner.*`` with ``hubext-kube``, or either with
    JupyterHub's default spawner) would be ignored: the hub's spawner reads
    the sections of its own class and its bases only. Each such setting is
    refused, naming the section to use. Raises ConfigErrors.
    """
    read = sections_read_by(spawner)
    others = (SPAWNER_SECTIONS | entry_point_classes("jupyterhub.spawners")) - read
    errors = ErrorCollector()
    for section, values in config.items():
        if section in others and isinstance(values, Config):
            for key in values:
                errors.add(_not_read(section, key, spawner, "spawner"))
    errors.raise_errors()


def check_authenticator_sections(
    config: Config, authenticator: type, kinds: set[str], *, hubext: bool
) -> None:
    """Settings of an authenticator's class that nothing in the hub reads are refused.

    hubext's authenticator reads its own sections, and each provider its
    OAuthenticator class's (``c.GenericOAuthenticator`` for ``oidc``
    providers, ...): ``c.GitHubOAuthenticator.*`` without a ``github``
    provider, or ``c.PAMAuthenticator.*``, would be ignored. ``kinds`` are
    the configured providers' kinds; ``hubext``: ``authenticator`` is
    hubext's. With another authenticator (``hubext check-config`` only: the
    hub runs no hubext code then), settings of hubext's are refused. Raises
    ConfigErrors.
    """
    readers = [authenticator]
    if hubext:
        readers += [PROVIDER_KINDS[kind] for kind in kinds if kind in PROVIDER_KINDS]
    read = sections_read_by(*readers)
    others = (
        entry_point_classes("jupyterhub.authenticators")
        | {"CommunityAuthenticator"}
        | sections_read_by(*PROVIDER_KINDS.values())
    ) - read
    errors = ErrorCollector()
    if hubext:
        with errors.check():
            _check_unknown_settings(config, readers)
    for section, values in config.items():
        if section not in others or not isinstance(values, Config):
            continue
        for key in values:
            kind = [
                k
                for k, cls in PROVIDER_KINDS.items()
                if section in sections_read_by(cls)
            ]
            if hubext and kind:
                reason = (
                    f"ignored: no provider in CommunityAuthenticator.providers reads "
                    f"{section} settings (kind {' or '.join(map(repr, kind))}); a "
                    "provider's settings go in CommunityAuthenticator.providers"
                    "[<name>]['config']"
                )
                errors.add(ConfigError(f"{section}.{key}", reason))
            else:
                error = _not_read(section, key, authenticator, "authenticator")
                if not hubext:
                    error = ConfigError(
                        error.path,
                        f"{error.reason.split('; ')[0]}; for hubext's, set "
                        "c.JupyterHub.authenticator_class = 'hubext'",
                    )
                errors.add(error)
    errors.raise_errors()


def _check_unknown_settings(config: Config, readers: list[type]) -> None:
    """A name in a section ``readers`` read that none of them has is refused.

    hubext's authenticator and its providers are built at start-up, where
    traitlets would only warn that it ignores the name.
    """
    provider_traits = set().union(
        *(cls.class_traits(config=True) for cls in PROVIDER_KINDS.values())
    )
    errors = ErrorCollector()
    for section, values in config.items():
        owners = [r for r in readers if section in sections_read_by(r)]
        if not owners or not isinstance(values, Config):
            continue
        known = set().union(*(r.class_traits(config=True) for r in owners))
        for key, value in values.items():
            if key in known or isinstance(value, Config):
                continue
            if key in provider_traits:
                hint = (
                    "; a provider's setting goes in "
                    "CommunityAuthenticator.providers[<name>]['config']"
                )
            else:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.add(
                ConfigError(
                    f"{section}.{key}",
                    f"{' and '.join(r.__name__ for r in owners)} "
                    f"{'have' if len(owners) > 1 else 'has'} no such setting and "
                    f"would ignore it{hint}",
                )
            )
    errors.raise_errors()
