"""Helpers to validate plain configuration data with exact key paths.

Everything hubext reads from ``jupyterhub_config.py`` or a z2jh ``values.yaml``
is plain data (dicts, lists, strings, numbers). These helpers check such data
and raise :class:`ConfigError` whose message starts with the path of the bad
value, written the way an admin would type it::

    Communities.communities['ocean-lab'].display_name: expected a string, got 42 (int)

No I/O happens here.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable, Mapping
from typing import Any

from traitlets import TraitError

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 4
_short.maxdict = 4
_short.maxlevel = 2


def show(value: Any) -> str:
    """A short, single-line, escaped repr of a user-supplied value for messages."""
    # reprlib escapes control characters in strings (repr does), and truncates.
    return _short.repr(value)


class ConfigError(TraitError, ValueError):
    """A configuration value is invalid.

    ``path`` is the key path of the bad value and ``reason`` what is wrong;
    ``str(error)`` is ``"{path}: {reason}"``, one line.
    """

    def __init__(self, path: KeyPath | str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class KeyPath:
    """An immutable key path such as ``Communities.communities['a'].x[2]``."""

    __slots__ = ("_parts",)

    def __init__(self, root: str, parts: tuple[str, ...] = ()):
        self._parts = (root, *parts)

    def __getitem__(self, key: str | int) -> KeyPath:
        return KeyPath(self._parts[0], (*self._parts[1:], f"[{key!r}]"))

    def attr(self, name: str) -> KeyPath:
        """The path of a key inside a mapping, written as an attribute: ``.name``."""
        return KeyPath(self._parts[0], (*self._parts[1:], f".{name}"))

    def __str__(self) -> str:
        return "".join(self._parts)

    def __repr__(self) -> str:
        return f"KeyPath({str(self)!r})"


def type_name(value: Any) -> str:
    return type(value).__name__


def expect(value: Any, types: type | tuple[type, ...], path: KeyPath, what: str) -> Any:
    """Return ``value`` if it is an instance of ``types``, else raise.

    ``bool`` is never accepted where a number is expected.
    """
    wanted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in wanted:
        ok = False
    else:
        ok = isinstance(value, wanted)
    if not ok:
        raise ConfigError(
            path, f"expected {what}, got {show(value)} ({type_name(value)})"
        )
    return value


def expect_mapping(value: Any, path: KeyPath) -> Mapping:
    return expect(value, Mapping, path, "a mapping (dict)")


def expect_list(value: Any, path: KeyPath, what: str = "a list") -> list:
    # A string is iterable, but a rule list given as one string is a mistake.
    return list(expect(value, (list, tuple), path, what))


def expect_text(
    value: Any, path: KeyPath, *, max_length: int = 1000, allow_empty: bool = False
) -> str:
    """A printable, single-line string of bounded length."""
    expect(value, str, path, "a string")
    if not value and not allow_empty:
        raise ConfigError(path, "must not be empty")
    if len(value) > max_length:
        raise ConfigError(
            path, f"is {len(value)} characters long; at most {max_length}"
        )
    if not value.isprintable():
        raise ConfigError(path, f"contains control characters: {show(value)}")
    return value


def check_keys(
    mapping: Mapping,
    path: KeyPath,
    known: Iterable[str],
    required: Iterable[str] = (),
    *,
    list_known: bool = True,
) -> None:
    """Reject unknown and missing keys, suggesting the closest known key.

    ``list_known=False`` leaves the list of known keys out of the message
    (for long lists such as a class's traits).
    """
    known = sorted(known)
    for key in mapping:
        if not isinstance(key, str):
            raise ConfigError(path, f"keys must be strings, got {show(key)}")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            listing = f"; known keys: {', '.join(known)}" if list_known else ""
            raise ConfigError(
                path.attr(key) if key.isidentifier() else path[key],
                f"unknown key{hint}{listing}",
            )
    for key in required:
        if key not in mapping:
            raise ConfigError(path, f"missing required key {key!r}")
