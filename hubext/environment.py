"""A community's ``environment``: variables set in its members' servers. Pure, no I/O.

``environment`` maps variable names to strings. Names JupyterHub or the
spawner set (``JUPYTERHUB_*``, ``JPY_*``, ``HOME``, ``USER``, ``LOGNAME``,
``SHELL``) are refused at start-up. A person in several communities gets,
for each variable, the value of the first community in registry order that
sets it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._validation import ConfigError, KeyPath, expect, expect_mapping, expect_text, show

_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_ENV_PREFIXES = ("JUPYTERHUB_", "JPY_")
#: Who the server runs as: set by the spawner, never by a community.
_RESERVED_ENV_NAMES = ("HOME", "USER", "LOGNAME", "SHELL")


def parse_environment(value: Any, path: KeyPath, slug: str) -> Mapping[str, str]:
    """The ``environment`` key: variables set in the servers of the members."""
    expect_mapping(value, path)
    parsed = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _ENV_NAME_RE.fullmatch(name):
            raise ConfigError(path, f"{show(name)} is not an environment variable name")
        if name.startswith(_RESERVED_ENV_PREFIXES) or name in _RESERVED_ENV_NAMES:
            raise ConfigError(
                path[name], "is set by JupyterHub or the spawner; choose another name"
            )
        parsed[name] = expect_text(
            expect(text, str, path[name], "a string"),
            path[name],
            max_length=4096,
            allow_empty=True,
        )
    return parsed


def environment_for(communities: Iterable[Any], member_of: Iterable[str]) -> dict:
    """The community variables of a person: the first community (registry
    order) that sets a variable wins."""
    member_of = set(member_of)
    env: dict[str, str] = {}
    for community in communities:
        if community.slug in member_of:
            for name, value in community.environment.items():
                env.setdefault(name, value)
    return env
