"""Per-community profile lists: visibility and validation. Pure, no I/O.

The profile list is KubeSpawner's ``profile_list`` format, unchanged, plus
``allowed_groups`` at three levels: a profile, a choice of one of its
``profile_options``, and an option's ``unlisted_choice``. No
``allowed_groups`` means everyone. Group names are compared casefolded.

The checks and the lists are walks of the tree
(:func:`hubext.profile_tree.walk`), each with its own rule at each profile,
option, choice and unlisted choice; a submission is read option by option
(:func:`hubext.profile_tree.options_of`):

- :func:`check_profile_list` validates a list once, at start-up.
- :func:`initialize_profile_list` fills in what KubeSpawner fills in (slugs,
  default profile and choices) so that the hub and KubeSpawner agree.
- :func:`visible_profile_list` computes one user's list: a new list of
  standard profile dicts (so jupyterhub-fancy-profiles renders it), without
  the ``allowed_groups`` keys, never mutating the configured list.
- :func:`validate_user_options` checks a submission (form or REST) against
  the user's list and returns explicit ``user_options`` or raises
  :class:`OptionsError` with the HTTP status and a message that names the
  option.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from slugify import slugify

from ._validation import (
    ConfigError,
    ErrorCollector,
    KeyPath,
    collecting,
    expect,
    expect_list,
    expect_mapping,
    expect_text,
    show,
)
from .communities import ROOT_PATH as COMMUNITIES_PATH
from .profile_tree import Kind, Position, options_of, profile_entries, walk

#: What the form's select sends when the free-text choice is picked.
UNLISTED = "unlisted-choice"
UNLISTED_SUFFIX = "--unlisted-choice"
#: The ``user_options`` key naming the community a server is charged to; a
#: profile option may not take this name.
COMMUNITY_OPTION = "community"
MAX_UNLISTED_LENGTH = 1000

_OPTION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_PROFILE_KEYS = {
    "display_name",
    "slug",
    "description",
    "default",
    "kubespawner_override",
    "profile_options",
    "allowed_groups",
}
_OPTION_KEYS = {"display_name", "choices", "unlisted_choice"}
_CHOICE_KEYS = {
    "display_name",
    "description",
    "default",
    "kubespawner_override",
    "allowed_groups",
}
_UNLISTED_KEYS = {
    "enabled",
    "display_name",
    "display_name_in_choices",
    "validation_regex",
    "validation_message",
    "kubespawner_override",
    "allowed_groups",
}


class OptionsError(Exception):
    """A submission of server options that cannot be accepted."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


# -- start-up validation ----------------------------------------------------------


def _check_keys_loosely(entry: Mapping, known: set[str], path: KeyPath) -> None:
    """Refuse keys that look like misspellings of known ones (all of them).

    Other unknown keys are passed through: profile lists carry keys for
    other tools (jupyterhub-fancy-profiles, custom templates).
    """
    errors = ErrorCollector()
    for key in entry:
        if key in known or not isinstance(key, str):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        if close:
            errors.add(
                ConfigError(path.attr(key), f"unknown key (did you mean {close[0]!r}?)")
            )
    errors.raise_errors()


def _check_groups(value: Any, path: KeyPath) -> None:
    errors = ErrorCollector()
    for i, group in enumerate(expect_list(value, path, "a list of group names")):
        with errors.check():
            expect_text(group, path[i], max_length=256)
    errors.raise_errors()


def check_profile_list(value: Any, path: KeyPath) -> None:
    """Validate a profile list (not a callable) at start-up.

    Raises :class:`~hubext._validation.ConfigErrors` with every error found:
    each profile, option, choice and key is checked on its own. What is
    below an option whose name is refused is not checked.
    """
    expect_list(value, path, "a list of profiles")
    errors = ErrorCollector()
    slugs: dict[str, int] = {}
    for at in walk(value, path, descend=_has_usable_name):
        with errors.check():
            if at.kind is Kind.PROFILE:
                _check_profile(at, slugs, errors)
            elif at.kind is Kind.OPTION:
                _check_option(at, errors)
            elif at.kind is Kind.CHOICE:
                _check_choice(at, errors)
            else:
                _check_unlisted_choice(at, errors)
    errors.raise_errors()


def _check_profile(at: Position, slugs: dict[str, int], errors: ErrorCollector):
    profile, ppath = expect_mapping(at.entry, at.path), at.path
    with errors.check():
        _check_keys_loosely(profile, _PROFILE_KEYS, ppath)
    with errors.check():
        expect_text(
            profile.get("display_name"), ppath.attr("display_name"), max_length=500
        )
    with errors.check():
        slug = profile_slug(profile)
        if not slug:
            raise ConfigError(ppath.attr("slug"), "profile slug is empty")
        if slug in slugs:
            raise ConfigError(
                ppath.attr("slug"),
                f"duplicate profile slug {slug!r} (also profile {slugs[slug]})",
            )
        slugs[slug] = at.key
    if "allowed_groups" in profile:
        with errors.check():
            _check_groups(profile["allowed_groups"], ppath.attr("allowed_groups"))
    expect_mapping(profile.get("profile_options", {}), ppath.attr("profile_options"))


def _option_name_problem(name: Any) -> str | None:
    if (
        not isinstance(name, str)
        or not _OPTION_NAME.fullmatch(name)
        or UNLISTED_SUFFIX in name
    ):
        return "option names are letters, digits, '_', '.' and '-'"
    if name == COMMUNITY_OPTION:
        return (
            f"{COMMUNITY_OPTION!r} is reserved: it names the community a server "
            "is charged to; give the option another name"
        )
    return None


def _has_usable_name(at: Position) -> bool:
    """Whether to check what is below: not below an option with a refused name."""
    return at.kind is not Kind.OPTION or _option_name_problem(at.key) is None


def _check_option(at: Position, errors: ErrorCollector) -> None:
    problem = _option_name_problem(at.key)
    if problem:
        raise ConfigError(at.path, problem)
    option = expect_mapping(at.entry, at.path)
    with errors.check():
        _check_keys_loosely(option, _OPTION_KEYS, at.path)
    expect_mapping(option.get("choices", {}), at.path.attr("choices"))


def _check_choice(at: Position, errors: ErrorCollector) -> None:
    expect(at.key, str, at.path, "a string choice key")
    if at.key == UNLISTED:
        raise ConfigError(at.path, f"{UNLISTED!r} is reserved for the free-text choice")
    choice = expect_mapping(at.entry, at.path)
    with errors.check():
        _check_keys_loosely(choice, _CHOICE_KEYS, at.path)
    if "allowed_groups" in choice:
        _check_groups(choice["allowed_groups"], at.path.attr("allowed_groups"))


def _check_unlisted_choice(at: Position, errors: ErrorCollector) -> None:
    unlisted, upath = expect_mapping(at.entry, at.path), at.path
    with errors.check():
        _check_keys_loosely(unlisted, _UNLISTED_KEYS, upath)
    if "allowed_groups" in unlisted:
        with errors.check():
            _check_groups(unlisted["allowed_groups"], upath.attr("allowed_groups"))
    regex = unlisted.get("validation_regex")
    if regex is not None:
        with errors.check():
            expect(regex, str, upath.attr("validation_regex"), "a regular expression")
            try:
                re.compile(regex)
            except re.error as e:
                raise ConfigError(
                    upath.attr("validation_regex"), f"invalid regex: {e}"
                ) from None
    # Last of its option: the option as a whole must offer something.
    option = at.parent
    choices = option.entry.get("choices", {})
    if isinstance(choices, Mapping) and not choices and not unlisted.get("enabled"):
        raise ConfigError(option.path, "has no choices and no enabled unlisted_choice")


def check_default_profiles(communities, profile_list) -> None:
    """Every community's ``default_profile`` must name a configured profile."""
    if callable(profile_list):
        return  # computed per user: nothing to check at start-up
    slugs = profile_slugs(profile_list)
    errors = ErrorCollector()
    for community in communities:
        default = community.default_profile
        if default is not None and default not in slugs:
            errors.add(
                ConfigError(
                    COMMUNITIES_PATH[community.slug].attr("default_profile"),
                    f"no profile with slug {show(default)}; profiles: {', '.join(slugs) or 'none'}",
                )
            )
    errors.raise_errors()


def _group_entries(profile_list: Any, path: KeyPath):
    """``(allowed_groups value, its path)`` at every level of a profile list."""
    for entry, epath in profile_entries(profile_list, path):
        yield entry.get("allowed_groups"), epath.attr("allowed_groups")


def check_allowed_groups(
    profile_list: Any,
    community_slugs: Iterable[str],
    path: KeyPath,
    errors: ErrorCollector | None = None,
) -> None:
    """Every name in an ``allowed_groups`` must be a community's slug.

    With ``CommunityAuthenticator`` (``manage_groups``), the authenticator
    sets every user's groups to exactly the communities they match, so a
    group that is not a community never has a member: a profile allowed only
    to it is shown to nobody, and a typo (``astro101``) silently takes the
    profile away from the community it was meant for. Names are compared
    casefolded, as when profiles are filtered. A callable ``profile_list``
    is computed per user and not checked. The shape of the list is checked
    by :func:`check_profile_list`; malformed entries are skipped here.
    """
    if callable(profile_list):
        return
    slugs = sorted(community_slugs)
    known = {slug.casefold() for slug in slugs}
    with collecting(errors) as errors:
        for groups, gpath in _group_entries(profile_list, path):
            if not isinstance(groups, list | tuple):
                continue
            for j, group in enumerate(groups):
                if not isinstance(group, str) or group.casefold() in known:
                    continue
                close = difflib.get_close_matches(group.casefold(), slugs, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.add(
                    ConfigError(
                        gpath[j],
                        f"no community {show(group)}{hint}; communities: "
                        f"{', '.join(slugs) or 'none'} (with CommunityAuthenticator "
                        "a user's groups are exactly their communities, so this "
                        "name matches nobody)",
                    )
                )


def profile_slug(profile: Mapping) -> str:
    """The profile's slug as KubeSpawner computes it."""
    slug = profile.get("slug")
    if slug is None:
        return slugify(str(profile.get("display_name", "")))
    return str(slug)


def profile_slugs(profile_list: Iterable[Mapping]) -> list[str]:
    return [profile_slug(p) for p in profile_list]


# -- per-user lists -------------------------------------------------------------------


def initialize_profile_list(profile_list: Iterable[Mapping]) -> list[dict]:
    """A deep copy with slugs, one default profile and default choices set.

    The same defaults KubeSpawner's ``_get_initialized_profile_list`` applies:
    a slug from the display name, the first choice the default of an option
    without one, a disabled ``unlisted_choice`` where there is none.
    """
    profiles = copy.deepcopy(list(profile_list))
    for at in walk(profiles):
        if at.kind is Kind.PROFILE:
            at.entry["slug"] = profile_slug(at.entry)
            # A callable's list is not checked at start-up: fail here, as
            # KubeSpawner does, rather than walk past options it cannot read.
            options = at.entry.get("profile_options", {})
            expect_mapping(options, at.path.attr("profile_options"))
        elif at.kind is Kind.OPTION:
            option = at.entry
            _default_to_first(list((option.get("choices") or {}).values()))
            unlisted = option.setdefault("unlisted_choice", {})
            unlisted.setdefault("enabled", False)
            if unlisted["enabled"]:
                unlisted.setdefault("display_name_in_choices", "Other...")
    _default_to_first(profiles)
    return profiles


def _default_to_first(entries: list) -> None:
    """KubeSpawner's rule: with no default among ``entries``, the first one is."""
    if entries and not any(e.get("default") for e in entries):
        entries[0]["default"] = True


def _allowed(entry: Mapping, groups: frozenset[str], see_all: bool) -> bool:
    if see_all or "allowed_groups" not in entry:
        return True
    return any(str(g).casefold() in groups for g in entry["allowed_groups"])


def visible_profile_list(
    profile_list: Iterable[Mapping],
    groups: Iterable[str],
    *,
    see_all: bool = False,
    default_profile: str | None = None,
) -> list[dict]:
    """The profiles, choices and unlisted choices a user with ``groups`` may use.

    ``profile_list`` must be initialized (:func:`initialize_profile_list`).
    A copy of the profiles the user may use, without the choices they may
    not use, with an unlisted choice they may not use disabled, and without
    ``allowed_groups`` keys. An option whose choices are all hidden, and
    whose unlisted choice is hidden or disabled, is dropped.
    ``default_profile`` (a slug), when visible, becomes the only default.
    """
    groups = frozenset(g.casefold() for g in groups)

    def allowed(entry: Mapping) -> bool:
        return _allowed(entry, groups, see_all)

    visible = [copy.deepcopy(p) for p in profile_list if allowed(p)]
    nothing_to_pick = []
    for at in walk(visible):
        if at.kind is Kind.OPTION:
            # before the walk goes to the choices: only the allowed ones stay
            option = at.entry
            choices = option.get("choices") or {}
            option["choices"] = {k: c for k, c in choices.items() if allowed(c)}
            unlisted = option.get("unlisted_choice") or {"enabled": False}
            if unlisted.get("enabled") and not allowed(unlisted):
                unlisted["enabled"] = False
            option["unlisted_choice"] = unlisted
            _default_to_first(list(option["choices"].values()))
            if not option["choices"] and not unlisted.get("enabled"):
                nothing_to_pick.append(at)
        else:
            at.entry.pop("allowed_groups", None)
    for at in nothing_to_pick:  # dropped after the walk went through them
        del at.parent.entry["profile_options"][at.key]
    if visible:
        slugs = [p["slug"] for p in visible]
        if default_profile in slugs:
            for p in visible:
                p["default"] = p["slug"] == default_profile
        else:
            _default_to_first(visible)
    return visible


def find_profile(profile_list: Iterable[Mapping], slug: str) -> Mapping | None:
    return next((p for p in profile_list if p.get("slug") == slug), None)


# -- validation of a submission ---------------------------------------------------------


def validate_user_options(
    full: list[Mapping], visible: list[Mapping], user_options: Any
) -> dict:
    """Check ``user_options`` against the user's visible profiles.

    ``full`` is the initialized list of all profiles (to tell "not allowed",
    403, from "does not exist", 400). Returns explicit user_options: the
    profile and every option's choice or unlisted value.
    """
    if not isinstance(user_options, dict):
        raise OptionsError(
            400, f"Server options must be an object, not {type(user_options).__name__}."
        )
    if not visible:
        raise OptionsError(403, "No server options are available to you.")
    slug = user_options.get("profile")
    if slug in (None, ""):
        stray = sorted(set(user_options) - {"profile"})
        if stray:
            raise OptionsError(
                400,
                f"Option {show(stray[0])} was sent without 'profile': "
                "name the profile it belongs to.",
            )
        profile = next(p for p in visible if p.get("default"))
        return _explicit_options(profile, {})
    if not isinstance(slug, str):
        raise OptionsError(
            400, f"'profile' must be a string, not {type(slug).__name__}."
        )
    profile = find_profile(visible, slug)
    if profile is None:
        if find_profile(full, slug) is not None:
            raise OptionsError(
                403, f"The profile {show(slug)} is not available to your communities."
            )
        names = ", ".join(p["slug"] for p in visible)
        raise OptionsError(
            400, f"There is no profile {show(slug)}. Choose one of: {names}."
        )
    return _explicit_options(profile, user_options, find_profile(full, slug))


def _explicit_options(
    profile: Mapping, sent: Mapping, full_profile: Mapping | None = None
) -> dict:
    options = list(options_of(profile))
    all_options = (full_profile or profile).get("profile_options", {})
    expected = {"profile"}
    for at in options:
        expected |= {at.key, at.key + UNLISTED_SUFFIX}
    for key in sorted(set(sent) - expected, key=str):
        base = str(key).removesuffix(UNLISTED_SUFFIX)
        if base in all_options:
            raise OptionsError(
                403, f"The option {show(base)} is not available to your communities."
            )
        raise OptionsError(
            400,
            f"Unexpected option {show(key)} for the profile {show(profile['slug'])}.",
        )
    result = {"profile": profile["slug"]}
    for at in options:
        name, option = at.key, at.entry
        choice = sent.get(name)
        text = sent.get(name + UNLISTED_SUFFIX)
        label = option.get("display_name") or name
        for value, what in ((choice, name), (text, name + UNLISTED_SUFFIX)):
            if value is not None and not isinstance(value, str):
                raise OptionsError(
                    400, f"{show(what)} must be a string, not {type(value).__name__}."
                )
        if choice == UNLISTED or (choice in (None, "") and text not in (None, "")):
            result[name + UNLISTED_SUFFIX] = _check_unlisted(
                name, label, option, text, all_options.get(name, option)
            )
        elif choice not in (None, ""):
            if text not in (None, ""):
                raise OptionsError(
                    400,
                    f"For {show(label)}, send either a choice or a value of your own, not both.",
                )
            if choice not in option["choices"]:
                full_choices = (all_options.get(name) or {}).get("choices") or {}
                if choice in full_choices:
                    raise OptionsError(
                        403,
                        f"The choice {show(choice)} for {show(label)} is not available to your communities.",
                    )
                known = ", ".join(option["choices"]) or "none"
                raise OptionsError(
                    400,
                    f"There is no choice {show(choice)} for {show(label)}. Choose one of: {known}.",
                )
            result[name] = choice
        else:
            default = next(
                (k for k, c in option["choices"].items() if c.get("default")), None
            )
            if default is None:
                raise OptionsError(400, f"{show(label)} needs a value.")
            result[name] = default
    return result


def _check_unlisted(name, label, option, text, full_option) -> str:
    unlisted = option.get("unlisted_choice") or {}
    if not unlisted.get("enabled"):
        if (full_option.get("unlisted_choice") or {}).get("enabled"):
            raise OptionsError(
                403,
                f"A value of your own for {show(label)} is not available to your communities.",
            )
        raise OptionsError(400, f"{show(label)} does not accept a value of your own.")
    if not text:
        raise OptionsError(400, f"Give a value for {show(label)}.")
    if len(text) > MAX_UNLISTED_LENGTH:
        raise OptionsError(
            400,
            f"The value for {show(label)} is longer than {MAX_UNLISTED_LENGTH} characters.",
        )
    if "{" in text or "}" in text:
        raise OptionsError(
            400, f"The value for {show(label)} must not contain '{{' or '}}'."
        )
    if not text.isprintable():
        raise OptionsError(
            400, f"The value for {show(label)} contains control characters."
        )
    regex = unlisted.get("validation_regex")
    if regex and not re.fullmatch(regex, text):
        message = unlisted.get("validation_message") or f"must match {regex}"
        raise OptionsError(400, f"The value for {show(label)} is not valid: {message}")
    return text


# -- the community charged -----------------------------------------------------------


def chosen(profile: Mapping, user_options: Mapping) -> list[tuple[Mapping, str | None]]:
    """The profile, then each option's chosen entry, with the free text if any.

    ``[(profile, None), (choice or unlisted_choice, text or None), ...]`` in
    the profile's option order; ``user_options`` are explicit (see
    :func:`validate_user_options`). The one walk of a submission that
    overrides, charging and limits all use.
    """
    entries: list[tuple[Mapping, str | None]] = [(profile, None)]
    for at in options_of(profile):
        name, option = at.key, at.entry
        text = user_options.get(name + UNLISTED_SUFFIX)
        if text is not None:
            entries.append((option.get("unlisted_choice") or {}, text))
        elif name in user_options:
            entries.append(((option.get("choices") or {})[user_options[name]], None))
    return entries


def chosen_entries(profile: Mapping, user_options: Mapping) -> list[Mapping]:
    """The profile and the choice or unlisted choice of each option chosen."""
    return [entry for entry, _ in chosen(profile, user_options)]


def _grants(entry: Mapping, community: str) -> bool:
    return "allowed_groups" not in entry or community.casefold() in {
        str(g).casefold() for g in entry["allowed_groups"]
    }


def charge_candidates(
    profile: Mapping | None, user_options: Mapping, member_of: Iterable[str]
) -> list[str]:
    """The communities a server may be charged to, first the default.

    ``profile`` is the chosen profile as configured (with its
    ``allowed_groups``; None when the spawner has no profiles),
    ``user_options`` explicit, ``member_of`` the user's communities in
    registry order. A community qualifies when it grants the profile and
    every choice made; when no single community grants them all (a profile
    of one community with a choice of another), each community granting the
    profile does. Empty: no community of the user grants the profile (a hub
    admin using any profile), so the hub-wide account is charged.
    """
    member_of = list(member_of)
    if profile is None:
        return member_of
    entries = chosen_entries(profile, user_options)
    every = [c for c in member_of if all(_grants(e, c) for e in entries)]
    return every or [c for c in member_of if _grants(profile, c)]


def choose_charged(
    candidates: list[str],
    requested: Any,
    member_of: Iterable[str],
    known: Iterable[str],
) -> str | None:
    """The community charged: ``requested`` (checked) or the first candidate.

    Returns None for the hub-wide account (no candidate). Raises
    :class:`OptionsError` 400 for a value that is not a community, 403 for a
    community the user is not in or that does not offer what was chosen.
    """
    if requested is None or requested == "":
        return candidates[0] if candidates else None
    if not isinstance(requested, str):
        raise OptionsError(
            400,
            f"{show(COMMUNITY_OPTION)} must be a string, not {type(requested).__name__}.",
        )
    if requested not in set(known):
        raise OptionsError(400, f"There is no community {show(requested)}.")
    if requested not in set(member_of):
        raise OptionsError(
            403, f"You are not a member of the community {show(requested)}."
        )
    if requested not in candidates:
        offered = ", ".join(candidates) or "none of your communities"
        raise OptionsError(
            403,
            f"The community {show(requested)} does not offer these server options, "
            f"so the server cannot be charged to it. Choose one of: {offered}.",
        )
    return requested
