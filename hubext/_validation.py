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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from traitlets import TraitError

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 4
_short.maxdict = 4
_short.maxlevel = 2


#: Words that mark a setting or an error text as possibly holding a secret.
SECRET_WORDS = ("secret", "token", "password", "key")


def describe_trait_error(error: Exception, name: str = "") -> str:
    """The first line of a trait's error, without the value when it may be secret.

    ``name`` is the setting's name: a value of a setting named like a secret
    is never echoed, nor is one whose error text mentions a secret.
    """
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if any(word in f"{name} {text}".lower() for word in SECRET_WORDS):
        # Never echo a value that may be a secret.
        return f"invalid value ({type(error).__name__}); check the types of the values"
    return text


def plural(count: float, one: str, many: str | None = None) -> str:
    """``one`` for exactly 1 (a count or an amount), else ``many`` (``one`` + s).

    For messages: ``f"{n} {plural(n, 'community', 'communities')}"``.
    """
    return one if count == 1 else (many or one + "s")


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


class ConfigErrors(ConfigError):
    """Several independent configuration errors, reported together.

    ``errors`` holds each :class:`ConfigError` (flattened, duplicates
    dropped, in the order found); ``path`` and ``reason`` are the first
    one's, and ``str(error)`` is one ``"{path}: {reason}"`` line per error.
    A start-up check collects every error of the configuration this way, so
    an admin fixes all of them in one go (see :class:`ErrorCollector`).
    """

    def __init__(self, errors: Iterable[ConfigError]):
        flat: list[ConfigError] = []
        seen: set[str] = set()
        for error in errors:
            for one in error.errors if isinstance(error, ConfigErrors) else (error,):
                if str(one) not in seen:
                    seen.add(str(one))
                    flat.append(one)
        if not flat:
            raise ValueError("ConfigErrors needs at least one error")
        self.errors: tuple[ConfigError, ...] = tuple(flat)
        super().__init__(flat[0].path, flat[0].reason)
        self.args = ("\n".join(str(e) for e in flat),)

    def __str__(self) -> str:
        return self.args[0]


def errors_of(error: ConfigError) -> tuple[ConfigError, ...]:
    """The single errors in ``error`` (itself, or those of a ConfigErrors)."""
    return error.errors if isinstance(error, ConfigErrors) else (error,)


class ErrorCollector:
    """Collects the errors of independent checks instead of stopping at the first.

    Each independent key is checked in its own ``with errors.check():``
    block: its first error is recorded and ends that block only, so its
    siblings are still checked. ``raise_errors()`` then raises one
    :class:`ConfigErrors` with everything found::

        errors = ErrorCollector()
        for key, value in mapping.items():
            with errors.check():
                parse(value, path.attr(key))
        errors.raise_errors()
    """

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    @contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as e:
            self.errors.extend(errors_of(e))

    def add(self, error: ConfigError) -> None:
        self.errors.extend(errors_of(error))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_errors(self) -> None:
        """Raise :class:`ConfigErrors` if any error was collected."""
        if self.errors:
            raise ConfigErrors(self.errors)


@contextmanager
def collecting(errors: ErrorCollector | None = None) -> Iterator[ErrorCollector]:
    """Collect into ``errors`` (the caller then raises), or into a new collector
    whose errors are raised when the block ends.

    The pattern of a parser that may run alone or as part of a larger check::

        def parse_things(raw, path, errors=None):
            with collecting(errors) as errors:
                ...
    """
    if errors is not None:
        yield errors
        return
    own = ErrorCollector()
    with own.check():
        yield own
    own.raise_errors()


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

    Every unknown or missing key is reported (one :class:`ConfigErrors`),
    except a missing key that an unknown key looks like (its misspelling).
    ``list_known=False`` leaves the list of known keys out of the message
    (for long lists such as a class's traits).
    """
    known = sorted(known)
    errors = ErrorCollector()
    suggested = set()
    for key in mapping:
        if not isinstance(key, str):
            errors.add(ConfigError(path, f"keys must be strings, got {show(key)}"))
        elif key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            suggested.update(close)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            listing = f"; known keys: {', '.join(known)}" if list_known else ""
            errors.add(
                ConfigError(
                    path.attr(key) if key.isidentifier() else path[key],
                    f"unknown key{hint}{listing}",
                )
            )
    for key in required:
        # A misspelling of it was reported already: one error for one mistake.
        if key not in mapping and key not in suggested:
            errors.add(ConfigError(path, f"missing required key {key!r}"))
    errors.raise_errors()
