"""Start-up checks that span several plugins' configuration.

JupyterHub builds the authenticator when it starts, but a spawner only when a
server starts; the authenticator therefore runs the spawner's checks
(``check_hub_config``) too, so that an error in, say, a community's
``default_profile`` stops the hub at start-up, not at the first spawn.

:func:`check_configuration` runs every check on the configuration and reports
every error at once (:class:`~hubext._validation.ConfigErrors`), each with
its key path: the communities, the providers, the rules' providers, the
spawner's own checks, the profiles' ``allowed_groups``, settings the hub
would ignore (:mod:`hubext.ignored_settings`) and, in the hub, auth_state's
encryption key. ``hubext
check-config`` and the authenticator run the same function; in the hub,
:func:`config_errors_stop_the_hub` logs one line per error and exits with
status 1, without a traceback.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from jupyterhub.crypto import CryptKeeper
from traitlets.config import Application, Config

from ._validation import (
    ConfigError,
    ErrorCollector,
    KeyPath,
    errors_of,
)
from .communities import (
    Communities,
    Community,
    configured_communities,
    parse_communities,
)
from .config_reading import (
    check_trait_values,
    configured_section,
    configured_value,
    resolve_class,
)
from .ignored_settings import check_authenticator_sections, check_spawner_sections
from .profiles import check_allowed_groups


def check_spawner_config(
    config: Config, communities: Communities, spawner_class
) -> None:
    """Check a hubext spawner's configured values, then run its ``check_hub_config``.

    A spawner without ``check_hub_config`` (not hubext's) is left alone.
    The values' types are checked first (:func:`check_trait_values`); the
    spawner's own checks read well-typed values only, so they run when
    every value has the right type.
    """
    spawner_class = resolve_class(spawner_class, "jupyterhub.spawners")
    check = getattr(spawner_class, "check_hub_config", None)
    if check is not None:
        check_trait_values(spawner_class, config)
        check(config, communities)


#: The environment variable JupyterHub reads auth_state's encryption keys from.
CRYPT_KEY_ENV = "JUPYTERHUB_CRYPT_KEY"

_MAKE_A_KEY = (
    "a key is 32 random bytes, hex-encoded (64 characters: make one with "
    "`openssl rand -hex 32`) or base64url-encoded (44 characters)"
)


def crypt_key_problem(key: Any) -> str | None:
    """Why JupyterHub cannot use ``key`` to encrypt auth_state, or None.

    Accepts what JupyterHub's ``CryptKeeper`` accepts: 32 bytes, hex-encoded
    (64 characters), base64url-encoded (44 characters) or raw. The answer
    never holds any part of the key.
    """
    if isinstance(key, str):
        try:
            key = key.encode("ascii")
        except UnicodeEncodeError:
            return f"has characters that are not ASCII; {_MAKE_A_KEY}"
    if not isinstance(key, bytes):
        return f"expected a string, got {type(key).__name__}; {_MAKE_A_KEY}"
    raw = key
    try:
        if len(key) == 44:
            raw = base64.urlsafe_b64decode(key)
        elif len(key) == 64:
            raw = binascii.a2b_hex(key)
    except ValueError:
        pass
    if len(raw) != 32:
        return f"is not a key JupyterHub can use ({len(key)} characters); {_MAKE_A_KEY}"
    return None


def check_crypt_keys(config: Config, environ: Mapping[str, str]) -> None:
    """auth_state, where hubext keeps each account's identity, needs a key.

    The keys are ``c.CryptKeeper.keys`` when configured, else the
    ``;``-separated keys of ``JUPYTERHUB_CRYPT_KEY`` in ``environ``, as
    JupyterHub reads them. Raises ConfigErrors naming the setting, never
    echoing a key.
    """
    configured = configured_value(CryptKeeper, config, "keys", None)
    if configured is not None:
        where, keys = "CryptKeeper.keys", list(configured)
    else:
        where = CRYPT_KEY_ENV
        keys = [k for k in environ.get(CRYPT_KEY_ENV, "").split(";") if k.strip()]
    if not keys:
        raise ConfigError(
            where,
            "no key: hubext keeps the identity each account is bound to, and the "
            "provider's tokens, in auth_state, which JupyterHub encrypts with it. "
            f"Set {CRYPT_KEY_ENV} to a key made with `openssl rand -hex 32`, and "
            "keep it: with another key, stored auth_state cannot be read "
            "(zero-to-jupyterhub makes and keeps one)",
        )
    errors = ErrorCollector()
    for i, key in enumerate(keys):
        problem = crypt_key_problem(key.strip() if isinstance(key, str) else key)
        if problem is None:
            continue
        if configured is not None:
            errors.add(ConfigError(KeyPath(where)[i], f"the key {problem}"))
        elif len(keys) > 1:
            which = f"key {i + 1} of {len(keys)} (';'-separated)"
            errors.add(ConfigError(where, f"{which} {problem}"))
        else:
            errors.add(ConfigError(where, f"the key {problem}"))
    errors.raise_errors()


def check_configuration(
    config: Config,
    *,
    authenticator_class=None,
    spawner_class=None,
    environ: Mapping[str, str] | None = None,
) -> Mapping[str, Community]:
    """Run every start-up check on ``config``; return the communities.

    Raises :class:`~hubext._validation.ConfigErrors` with every error found.
    ``authenticator_class`` and ``spawner_class`` are classes, entry point
    names or import paths (as in ``c.JupyterHub``). Each plugin with a
    ``check_hub_config(config, communities)`` classmethod runs its own
    checks (hubext's authenticator: its settings, providers and rules, and
    with ``environ``, the hub's environment variables, its auth_state key:
    :func:`check_crypt_keys`; hubext's spawners: their profiles, shared
    folders, limits ...); the profiles' ``allowed_groups`` are checked
    against the communities when such an authenticator manages the groups.
    """
    errors = ErrorCollector()
    raw = configured_communities(config, errors)
    registry = parse_communities(raw, errors=errors)
    communities = Communities.from_registry(registry, config=Config())
    authenticator = resolve_class(authenticator_class, "jupyterhub.authenticators")
    # hubext's authenticator checks its own settings, providers and rules
    check_authenticator = getattr(authenticator, "check_hub_config", None)
    if check_authenticator is not None:
        with errors.check():
            check_authenticator(config, communities, environ=environ)
    elif isinstance(authenticator, type):
        with errors.check():
            check_authenticator_sections(config, authenticator, set(), hubext=False)
    if spawner_class is not None:
        spawner = resolve_class(spawner_class, "jupyterhub.spawners")
        if isinstance(spawner, type):
            with errors.check():
                check_spawner_sections(config, spawner)
        with errors.check():
            check_spawner_config(config, communities, spawner_class)
        manage_groups = check_authenticator is not None and configured_value(
            authenticator, config, "manage_groups", True
        )
        section = spawner and configured_section(spawner, config, "profile_list")
        if manage_groups and section:
            check_allowed_groups(
                config[section]["profile_list"],
                registry,
                KeyPath(f"{section}.profile_list"),
                errors,
            )
    errors.raise_errors()
    return registry


def check_authenticator_config(authenticator_class, kwargs: dict[str, Any]) -> None:
    """The start-up checks of an authenticator built with ``cls(**kwargs)``.

    What ``CommunityAuthenticator.__init__`` runs first: the configuration
    is the one the authenticator is built with (``config``, or its
    ``parent``'s, the JupyterHub application), the spawner the parent's,
    and in the hub (``parent`` an Application) its environment's
    ``JUPYTERHUB_CRYPT_KEY``. Raises ConfigErrors.
    """
    parent = kwargs.get("parent")
    config = kwargs.get("config")
    if config is None:
        config = getattr(parent, "config", None) or Config()
    check_configuration(
        config,
        authenticator_class=authenticator_class,
        spawner_class=getattr(parent, "spawner_class", None),
        # in the hub: its environment holds the key (JupyterHub reads it later)
        environ=os.environ if isinstance(parent, Application) else None,
    )


@contextmanager
def config_errors_stop_the_hub(parent) -> Iterator[None]:
    """In the hub, a ConfigError logs each error on one line and exits with status 1.

    ``parent`` is the authenticator's parent. When it is an
    :class:`~traitlets.config.Application` (the JupyterHub application), each
    error is logged at CRITICAL level, ``"hubext: invalid configuration:
    <key path>: <reason>"``, followed by a count, and ``SystemExit(1)`` ends
    the process: JupyterHub logs any other exception from the authenticator
    with its traceback (``launch_instance_async`` catches ``Exception``),
    about 80 lines that would hide the one line that matters. Elsewhere (a
    test, ``hubext check-config``) the error is raised as it is.
    """
    try:
        yield
    except ConfigError as e:
        if not isinstance(parent, Application):
            raise
        errors = errors_of(e)
        for error in errors:
            parent.log.critical("hubext: invalid configuration: %s", error)
        parent.log.critical(
            "hubext: %d configuration error%s; the hub does not start. "
            "`hubext check-config PATH` runs the same checks without starting it.",
            len(errors),
            "" if len(errors) == 1 else "s",
        )
        raise SystemExit(1) from None
