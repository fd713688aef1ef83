"""The shape of a profile list, walked in one place. Pure, no I/O.

KubeSpawner's ``profile_list`` is a tree four levels deep::

    profile_list[0]                              a profile
        .profile_options['image']                an option of it
            .choices['base']                     a choice of the option
            .unlisted_choice                     its free-text choice

:func:`walk` visits it in that order, each place as a :class:`Position`:
its kind, the entry there, its key path and the places above it.
Everything hubext does with a profile list is such a walk, with its own
rule at each kind of place: the start-up checks, KubeSpawner's
initialization, one user's visible list, the entries whose
``allowed_groups`` and ``kubespawner_override`` other start-up checks
read. Where the options of a profile and the choices of an option are,
and what happens when they are not mappings, is written only here.

KubeSpawner's ``_get_initialized_profile_list``, for instance, is this walk
(:func:`hubext.profiles.initialize_profile_list`)::

    profiles = copy.deepcopy(profile_list)
    for at in walk(profiles):
        if at.kind is Kind.PROFILE:
            at.entry["slug"] = profile_slug(at.entry)
        elif at.kind is Kind.OPTION:
            ...  # the first choice the default; a disabled unlisted_choice
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._validation import KeyPath

#: The key path of a walk that reports nothing (no configuration key to name).
PROFILE_LIST = KeyPath("profile_list")


class Kind(enum.Enum):
    """The kinds of place in a profile list."""

    PROFILE = "profile"
    OPTION = "option"
    CHOICE = "choice"
    UNLISTED_CHOICE = "unlisted_choice"


@dataclass(frozen=True)
class Position:
    """One place in a profile list.

    ``key`` is the profile's index, the option's name or the choice's key
    (None for an unlisted choice); ``entry`` the value there, as it is (it
    may not be a mapping: a check reports that); ``parents`` the positions
    above, outermost first (a choice's are its profile and its option).
    """

    kind: Kind
    key: int | str | None
    entry: Any
    path: KeyPath
    parents: tuple[Position, ...] = ()

    @property
    def parent(self) -> Position | None:
        """The position just above (a choice's option), None for a profile."""
        return self.parents[-1] if self.parents else None

    def _child(self, kind: Kind, key: Any, entry: Any, path: KeyPath) -> Position:
        return Position(kind, key, entry, path, (*self.parents, self))


Descend = Callable[[Position], bool]


def walk(
    profile_list: Any, path: KeyPath = PROFILE_LIST, *, descend: Descend | None = None
) -> Iterator[Position]:
    """Every position of ``profile_list``, in order, each before what is below it.

    - Every entry is yielded, a mapping or not; the walk goes below mappings
      only (a ``profile_options`` or ``choices`` that is not a mapping has
      nothing below it).
    - Every option has an unlisted choice: one that is not configured is
      yielded as ``{}``, the disabled one KubeSpawner gives it.
    - Top-down, like :func:`os.walk`: what is below a position is read when
      the walk resumes after yielding it. On its own copy of the list, a
      caller may change an entry's ``profile_options``, ``choices`` or
      ``unlisted_choice`` when it gets the entry, and the walk goes through
      what the caller left there.
    - ``descend(position)`` false: the walk skips what is below it.
    """
    if not isinstance(profile_list, list | tuple):
        return
    for i, profile in enumerate(profile_list):
        at = Position(Kind.PROFILE, i, profile, path[i])
        yield at
        for option in _options(at, descend):
            yield option
            if _goes_below(option, descend):
                yield from _choices(option)


def options_of(profile: Any, path: KeyPath = PROFILE_LIST) -> Iterator[Position]:
    """The options of one profile (the first level below it)."""
    return _options(Position(Kind.PROFILE, None, profile, path), None)


def _options(at: Position, descend: Descend | None) -> Iterator[Position]:
    if not _goes_below(at, descend):
        return
    options = at.entry.get("profile_options")
    opath = at.path.attr("profile_options")
    for name, option in options.items() if isinstance(options, Mapping) else ():
        yield at._child(Kind.OPTION, name, option, opath[name])


def _choices(option: Position) -> Iterator[Position]:
    """The choices of an option, then its unlisted choice."""
    choices = option.entry.get("choices")
    cpath = option.path.attr("choices")
    for key, choice in choices.items() if isinstance(choices, Mapping) else ():
        yield option._child(Kind.CHOICE, key, choice, cpath[key])
    unlisted = option.entry.get("unlisted_choice", {})
    upath = option.path.attr("unlisted_choice")
    yield option._child(Kind.UNLISTED_CHOICE, None, unlisted, upath)


def _goes_below(at: Position, descend: Descend | None) -> bool:
    return isinstance(at.entry, Mapping) and (descend is None or descend(at))


def profile_entries(
    profile_list: Any, path: KeyPath
) -> Iterator[tuple[Mapping, KeyPath]]:
    """Every entry that may hold ``allowed_groups`` or a ``kubespawner_override``
    (each profile, choice and unlisted choice), with its key path.

    What the start-up checks of ``allowed_groups``, hubext-local's overrides
    and service accounts read; entries that are not mappings are skipped
    (:func:`check_profile_list` reports them), and an option without an
    ``unlisted_choice`` gives an empty one (the walk's ``{}``).
    """
    for at in walk(profile_list, path):
        if at.kind is not Kind.OPTION and isinstance(at.entry, Mapping):
            yield at.entry, at.path
