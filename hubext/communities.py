"""The community registry: the one place where communities are defined.

A community is a JupyterHub group whose name is the community's slug. Its
definition is plain data in one traitlets Dict,
``c.Communities.communities``, so it can be written in ``jupyterhub_config.py``
or in a zero-to-jupyterhub ``values.yaml``
(``hub.config.Communities.communities``).

Every other hubext plugin (identity, profiles, shared data, culling) reads its
facts from here. The definitions are validated once, when the registry is
loaded at hub start-up; every error names the exact key path and the bad value.

Adding a community key
----------------------
Each key a community may have is declared in :data:`COMMUNITY_KEYS`: its
validator turns the raw value into a normalized, immutable value or raises
:class:`~hubext._validation.ConfigError` with the key path. Checks that need
several keys or several communities go in :data:`REGISTRY_CHECKS`.
"""

from __future__ import annotations

import copy
import difflib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from traitlets import Dict, List, observe, validate
from traitlets.config import Config, LoggingConfigurable

from ._validation import (
    ConfigError,
    ErrorCollector,
    KeyPath,
    check_keys,
    collecting,
    expect_list,
    expect_mapping,
    expect_text,
    show,
)
from .config_reading import configured_value
from .culling import parse_culling
from .environment import parse_environment
from .kube_identity import KubeIdentity, parse_kubernetes
from .limits import Limits, parse_limits
from .prices import UnitPrices, parse_usage
from .rules import Rule, RuleIndex, parse_rules
from .shared_data import SharedFolder, check_overlaps, folder_paths, parse_shared_data
from .slugs import community_slug_problem

ROOT_PATH = KeyPath("Communities.communities")
ADDITIONS_PATH = KeyPath("Communities.additions")


@dataclass(frozen=True)
class Community:
    """One validated community definition."""

    slug: str
    display_name: str
    #: Normalized values of every other key, by key name (read-only).
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, key: str, default: Any = None) -> Any:
        """A key's normalized value (prefer the typed properties below)."""
        return self.settings.get(key, default)

    # Typed accessors, with each key's default stated once.

    @property
    def members(self) -> tuple[Rule, ...]:
        """Rules making someone a member (none: nobody)."""
        return self.settings.get("members", ())

    @property
    def admins(self) -> tuple[Rule, ...]:
        """Rules making someone a community admin."""
        return self.settings.get("admins", ())

    @property
    def default_profile(self) -> str | None:
        """The slug of the profile pre-selected for members, if any."""
        return self.settings.get("default_profile")

    @property
    def culling(self) -> Mapping[str, Any] | None:
        """The idle policy's keys it sets (None: the hub-wide default)."""
        return self.settings.get("culling")

    @property
    def shared_data(self) -> tuple[SharedFolder, ...]:
        return self.settings.get("shared_data", ())

    @property
    def environment(self) -> Mapping[str, str]:
        return self.settings.get("environment", MappingProxyType({}))

    @property
    def prices(self) -> UnitPrices | None:
        """Prices per unit of usage (None: not priced)."""
        usage = self.settings.get("usage")
        return usage["prices"] if usage is not None else None

    @property
    def limits(self) -> Limits | None:
        """Its own limits (None: ``c.UsageLimits.default`` applies)."""
        return self.settings.get("limits")

    @property
    def kubernetes(self) -> KubeIdentity | None:
        return self.settings.get("kubernetes")


#: A key validator: ``(raw value, path of the value, slug) -> normalized value``.
KeyValidator = Callable[[Any, KeyPath, str], Any]


def _display_name(value: Any, path: KeyPath, slug: str) -> str:
    return expect_text(value, path, max_length=200)


def _default_profile(value: Any, path: KeyPath, slug: str) -> str:
    # That the profile exists is checked against the spawner's profile_list
    # when the hub starts (hubext.profiles.check_default_profiles).
    return expect_text(value, path, max_length=200)


#: The keys a community definition may have, and how each is validated.
COMMUNITY_KEYS: dict[str, KeyValidator] = {
    "display_name": _display_name,
    "default_profile": _default_profile,
    "members": parse_rules,
    "admins": parse_rules,
    "culling": parse_culling,
    "shared_data": parse_shared_data,
    "environment": parse_environment,
    "usage": parse_usage,
    "limits": parse_limits,
    "kubernetes": parse_kubernetes,
}


def _check_mount_paths(registry: Mapping[str, Community]) -> None:
    check_overlaps(folder_paths(registry, ROOT_PATH))


#: Checks over the whole validated registry, e.g. uniqueness across communities.
#: Each takes ``{slug: Community}`` and raises ConfigError.
REGISTRY_CHECKS: list[Callable[[Mapping[str, Community]], None]] = [_check_mount_paths]


def parse_communities(
    raw: Any, path: KeyPath = ROOT_PATH, errors: ErrorCollector | None = None
) -> dict[str, Community]:
    """Validate raw community definitions; return ``{slug: Community}``.

    Every independent key is checked, so one call finds every error. Without
    ``errors`` they are raised together as
    :class:`~hubext._validation.ConfigErrors`; with ``errors`` they are added
    to it and the communities whose slug is valid are returned, each with the
    keys that passed (for the start-up checks that build on the registry).
    """
    with collecting(errors) as errors:
        expect_mapping(raw, path)
        parsed: dict[str, Community] = {}
        for slug, definition in raw.items():
            problem = community_slug_problem(slug)
            if problem:
                errors.add(
                    ConfigError(path[slug] if isinstance(slug, str) else path, problem)
                )
                continue
            parsed[slug] = _parse_community(slug, definition, path[slug], errors)
        for check in REGISTRY_CHECKS:
            with errors.check():
                check(parsed)
    return parsed


def _parse_community(
    slug: str, definition: Any, path: KeyPath, errors: ErrorCollector
) -> Community:
    if definition is None:
        definition = {}
    settings = {}
    with errors.check():
        expect_mapping(definition, path)
        with errors.check():
            check_keys(definition, path, COMMUNITY_KEYS)
        for key, value in definition.items():
            if key in COMMUNITY_KEYS:
                with errors.check():
                    settings[key] = COMMUNITY_KEYS[key](value, path.attr(key), slug)
    display_name = settings.pop("display_name", slug)
    return Community(
        slug=slug, display_name=display_name, settings=MappingProxyType(settings)
    )


# -- keys added from another configuration file ------------------------------------


def add_to_community(c: Config, slug: str, **keys: Any) -> None:
    """Add keys to a community defined in another configuration file.

    In a ``jupyterhub_config.d/`` file loaded with ``load_subconfig()``,
    ``c`` starts empty: ``c.Communities.communities["astro-101"]`` is not
    the community another file defined (traitlets raises ``TypeError:
    'LazyConfigValue' object is not subscriptable``). This records the keys
    in ``c.Communities.additions`` instead; when the hub starts, they are
    merged into the community's definition as zero-to-jupyterhub merges
    ``hub.config`` from several values files: a mapping key by key, any
    other value (a list, a number) replacing the one before. Any file may
    call it, in any order; the community must be defined in some file (an
    unknown slug stops the hub, naming this call's file and line)::

        from hubext import add_to_community

        c = get_config()
        add_to_community(c, "astro-101", limits={"max_servers": 30})

    .. versionadded:: 0.1
    """
    caller = sys._getframe(1)
    c.Communities.additions.append(
        {
            "community": slug,
            "keys": keys,
            "where": f"{caller.f_code.co_filename}, line {caller.f_lineno}",
        }
    )


def merge_additions(
    communities: Any, additions: Any, errors: ErrorCollector | None = None
) -> Any:
    """``communities`` (raw) with ``additions`` merged in (see :func:`add_to_community`).

    Returns ``communities`` itself when there is nothing to add or it is not
    a mapping (its own check reports that). Every addition that cannot be
    made is an error naming its file and line: raised (ConfigErrors), or,
    with ``errors``, added to it, the others merged (so that the checks
    after it see the communities as they are).
    """
    if not additions or not isinstance(communities, Mapping):
        return communities
    merged = copy.deepcopy(dict(communities))
    with collecting(errors) as errors, errors.check():
        for i, addition in enumerate(expect_list(additions, ADDITIONS_PATH)):
            with errors.check():
                _merge_one(merged, addition, ADDITIONS_PATH[i])
    return merged


def configured_communities(config: Config, errors: ErrorCollector | None = None) -> Any:
    """The communities ``config`` defines, raw, with their additions merged.

    What ``Communities(config=config)`` will hold, read without building it
    (the start-up checks, ``hubext usage report --hub-config``). Additions
    that cannot be made are raised as ConfigErrors, or added to ``errors``.
    """
    raw = configured_value(Communities, config, "communities", {})
    additions = configured_value(Communities, config, "additions", [])
    return merge_additions(raw, additions, errors)


def _merge_one(merged: dict, addition: Any, path: KeyPath) -> None:
    expect_mapping(addition, path)
    check_keys(addition, path, ("community", "keys", "where"), ("community", "keys"))
    slug = addition["community"]
    keys = expect_mapping(addition["keys"], path.attr("keys"))
    where = addition.get("where")
    call = f"add_to_community({show(slug)}) in {where}" if where else show(slug)
    if slug not in merged:
        known = sorted(s for s in merged if isinstance(s, str))
        close = difflib.get_close_matches(str(slug), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            path.attr("community"),
            f"{call}: no community {show(slug)} is defined{hint}; communities: "
            f"{', '.join(known) or 'none'}. A new community goes in "
            "c.Communities.communities (another file: "
            "c.Communities.communities.update({slug: {...}}))",
        )
    definition = merged[slug] if merged[slug] is not None else {}
    if not isinstance(definition, Mapping):
        return  # its own check reports it
    merged[slug] = _deep_merge(definition, keys)


def _deep_merge(base: Mapping, extra: Mapping) -> dict:
    """Mappings merged key by key; any other value of ``extra`` replaces."""
    result = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class Communities(LoggingConfigurable):
    """The communities of this hub, keyed by slug.

    Each hubext plugin loads the registry with ``Communities(parent=self)``,
    so the definitions come from the same configuration everywhere.
    """

    communities = Dict(
        config=True,
        help="""
        The communities of this hub, keyed by community slug.

        A slug is lowercase letters, digits and ``-`` (starting and ending with
        a letter or digit), at most 63 characters. It is also the name of the
        JupyterHub group that holds the community's members.

        Each value is a mapping with these keys, all optional:

        ``display_name``
            The name shown to people (defaults to the slug).
        ``default_profile``
            The slug of the profile pre-selected for the community's
            members (a member of several communities gets the first of
            their communities, in this mapping's order, that names one).
        ``culling``
            The idle policy of the community's servers for the
            ``hubext.culler`` service: ``idle_timeout`` and ``max_age`` in
            seconds (null: never), ``cull_named_servers`` and
            ``remove_named_servers`` (true/false). Keys left out take the
            culler's hub-wide default; a member of several communities gets
            the most generous policy. See :mod:`hubext.culling`.
        ``shared_data``
            The community's shared folders: a list of ``{name, mount_path,
            source, members, admins}``. ``source`` is ``{"nfs": {"server",
            "path", "sub_path"}}``, ``{"pvc": {"claim", "sub_path"}}`` or
            ``{"host_path": "/srv/..."}``; ``members`` and ``admins`` are
            ``read-only``, ``read-write`` or ``none`` (defaults:
            ``read-only`` and ``read-write``). Mount paths are absolute,
            never nested in each other (hub-wide), never on or above the
            home, never in system paths. See :mod:`hubext.shared_data`.
        ``environment``
            Environment variables for the servers of the members, e.g. a
            scratch bucket prefix (``{"SCRATCH_BUCKET": "gs://..."}``). For
            a member of several communities, the first community in this
            mapping's order that sets a variable wins.
        ``kubernetes``
            hubext-kube only: ``service_account``, the Kubernetes service
            account of the pods of servers charged to the community, and
            ``admin_service_account``, that of its community admins' pods
            (default: ``service_account``). See :mod:`hubext.kube_identity`.
        ``usage``
            ``{"prices": {"cpu_hour": ..., "gib_hour": ..., "gpu_hour": ...,
            "server_hour": ...}}``: the price of an hour of each unit, for
            the costs of ``hubext usage report --prices`` and the usage
            page. See :mod:`hubext.prices`.
        ``limits``
            What the servers charged to the community may take, decided
            before a server starts: ``max_servers``,
            ``max_servers_per_member``, ``max_cpu``, ``max_memory``
            (``"256G"``), ``max_gpu``, and ``budget`` (server-, CPU-, GiB-
            and GPU-hours per calendar month or ``{"days": N}``, for the
            community and ``per_member``). Without it,
            ``c.UsageLimits.default`` applies. See :mod:`hubext.limits`.
        ``members``, ``admins``
            Lists of rules saying who belongs to the community and who
            administers it (admins are members too). A person matches a list
            if ANY rule matches; a rule matches if ALL its keys match. Rule
            keys: ``provider``, ``username``, ``idp``, ``email_domain``
            (verified emails only), ``github`` (``org`` or ``org:team``),
            ``group`` (the provider's groups claim). See
            :mod:`hubext.rules`.

        Example::

            c.Communities.communities = {
                "ocean-lab": {
                    "display_name": "Ocean Modelling Lab",
                    "members": [
                        {"github": "ocean-lab"},
                        {"provider": "cilogon", "email_domain": "ocean.example.org"},
                    ],
                    "admins": [{"github": "ocean-lab:hub-admins"}],
                },
                "astro-101": {
                    "display_name": "Astronomy 101 (workshop)",
                    "members": [{"provider": "uni", "group": "astro-101"}],
                },
            }

        The definitions are validated when the hub starts; an unknown key, a
        bad slug or a value of the wrong type stops the hub with a message
        naming the key, e.g. ``Communities.communities['Ocean Lab']: slug
        must match ...``. Every error is reported at once, one line each.
        ``hubext check-config`` runs the same checks.

        .. versionadded:: 0.1
        """,
    )

    additions = List(
        config=True,
        help="""
        Keys added to communities defined in ``communities``, by
        :func:`hubext.add_to_community` (a configuration file, such as one
        of ``jupyterhub_config.d/``, cannot index the dictionary another
        file set). Each item is ``{"community": slug, "keys": {...}}``;
        mappings are merged key by key, other values replace, in order.
        Use ``add_to_community(c, slug, key=value)`` rather than setting
        this.

        .. versionadded:: 0.1
        """,
    )

    @validate("communities")
    def _validate_communities(self, proposal):
        value = proposal["value"]
        # Raises ConfigError (a TraitError) naming the exact key path.
        self._parsed = parse_communities(merge_additions(value, self.additions))
        return value

    @validate("additions")
    def _validate_additions(self, proposal):
        value = proposal["value"]
        self._parsed = parse_communities(merge_additions(self.communities, value))
        return value

    @observe("communities", "additions")
    def _communities_changed(self, change):
        # the validators have parsed the new value already
        self._registry = MappingProxyType(self._parsed)

    @property
    def registry(self) -> Mapping[str, Community]:
        """Validated communities, ``{slug: Community}``, read-only."""
        try:
            return self._registry
        except AttributeError:
            # The default (empty) value is never passed through the validator.
            self._registry = MappingProxyType(
                parse_communities(merge_additions(self.communities, self.additions))
            )
            return self._registry

    @property
    def rule_index(self) -> RuleIndex:
        """Every community's ``members``/``admins`` rules, compiled for matching."""
        registry = self.registry
        cached = getattr(self, "_rule_index", None)
        if cached is None or cached[0] is not registry:
            index = RuleIndex(
                {
                    slug: {
                        "members": c.members,
                        "admins": c.admins,
                    }
                    for slug, c in registry.items()
                }
            )
            self._rule_index = cached = (registry, index)
        return cached[1]

    @classmethod
    def from_registry(cls, registry: Mapping[str, Community], **kwargs) -> Communities:
        """Communities already parsed (by :func:`parse_communities`), not from config.

        For the start-up checks, which run on the communities that parsed
        even when others did not.
        """
        communities = cls(**kwargs)
        communities._registry = MappingProxyType(dict(registry))
        return communities

    def __iter__(self) -> Iterator[Community]:
        return iter(self.registry.values())

    def __len__(self) -> int:
        return len(self.registry)

    def __contains__(self, slug: object) -> bool:
        return slug in self.registry

    def __getitem__(self, slug: str) -> Community:
        return self.registry[slug]
