"""Communities' own environments, merged with the configured profiles.

What a community's admins store (:mod:`hubext.console.store`, within the
bounds of its ``self_service`` key) becomes, at each spawn form and each
spawn, KubeSpawner profiles (:func:`hubext.delegated.profiles_of`) appended
to the configured ``profile_list``. From there they go through the code the
configured profiles go through (:mod:`hubext.spawners.options`): the same
initialization, visibility by group, form, validation of the form and of
REST submissions, limits and charging.

- :class:`EnvironmentProfiles`: the profiles made from one set of stored
  versions, with what the spawners need besides (which profile is which
  community's environment, each community's default);
- :class:`StoredEnvironments`: how a spawner class reads them: the hub's
  store (:func:`hubext.console.config.hub_store`) through its cache, and
  the profiles kept while the stored versions are the same (a spawn form
  with nothing changed costs a lookup in memory);
- :func:`report_not_applied` and :func:`report_stored_settings`: each
  stored value today's bounds do not allow is logged once, with its key
  path, at hub start-up and when it is first read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._validation import ConfigError, KeyPath, errors_of
from ..communities import Community
from ..console.config import Console, hub_store
from ..console.store import StateStore, Stored
from ..database import password_of, redact
from ..delegated import Environment, effective, profiles_of
from ..profiles import initialize_profile_list
from ..services.redact import scrub

#: Seconds between two attempts to open a delegated state that could not be.
RETRY_SECONDS = 30.0

#: A check of a list of profiles, raising ConfigError(s): what the spawner
#: checks its configured list with.
ProfileCheck = Callable[[list, KeyPath], None]


@dataclass(frozen=True)
class EnvironmentProfiles:
    """The communities' environments as profiles, from one set of stored versions."""

    #: ``((community, version), ...)``: the documents they are made of
    key: tuple[tuple[str, int], ...] = ()
    #: KubeSpawner profiles: communities in registry order, each one's
    #: environments in its order; without ``default`` (see ``defaults``)
    profiles: tuple[dict, ...] = ()
    #: ``{profile slug: (community slug, environment)}``
    environments: Mapping[str, tuple[str, Environment]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: ``{community slug: profile slug of its default environment}``
    defaults: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


#: No community environment.
NONE = EnvironmentProfiles()

#: ``(community, version, problem)`` already logged by this process.
_reported: set[tuple[str, int, str]] = set()


def report_not_applied(
    community: str, version: int, problems: Iterable[ConfigError], log
) -> None:
    """Log each problem of a stored document once: ``hubext: <community>'s
    <key path>: <why>: not applied``."""
    for problem in problems:
        for one in errors_of(problem):
            marker = (community, version, str(one))
            if marker in _reported:
                continue
            _reported.add(marker)
            log.warning("hubext: %s's %s: not applied", community, one)


@dataclass(frozen=True)
class CommunityEnvironments:
    """One community's environments as profiles, from one version of its document."""

    version: int
    #: initialized (:func:`hubext.profiles.initialize_profile_list`), without
    #: a profile's ``default``
    profiles: tuple[dict, ...] = ()
    #: ``((profile slug, environment), ...)``
    environments: tuple[tuple[str, Environment], ...] = ()
    #: the profile slug of its default environment
    default: str | None = None


def community_environments(
    community: Community,
    stored: Stored,
    kind: str,
    log,
    check: ProfileCheck | None = None,
) -> CommunityEnvironments:
    """The profiles of ``community``'s stored document.

    What today's bounds do not allow is left out and reported
    (:func:`report_not_applied`). ``check``, the spawner's own check of a
    profile list, is run on them as on the configured list; when it
    refuses them, the community gets none (logged).
    """
    service = community.self_service
    delegated, problems = effective(stored.document, service, kind)
    report_not_applied(community.slug, stored.version, problems, log)
    made = profiles_of(community.slug, community.display_name, delegated, service, kind)
    if check is not None:
        try:
            check(made, KeyPath(f"{community.slug}'s environments"))
        except ConfigError as e:
            report_not_applied(community.slug, stored.version, [e], log)
            return CommunityEnvironments(stored.version)
    default = next((p["slug"] for p in made if p.get("default")), None)
    profiles = initialize_profile_list(made)
    for profile in profiles:
        # the members' default is the spawner's to choose (default_profile_for)
        profile.pop("default", None)
    return CommunityEnvironments(
        stored.version,
        tuple(profiles),
        tuple(
            (p["slug"], e)
            for p, e in zip(profiles, delegated.environments, strict=True)
        ),
        default,
    )


def build_environment_profiles(
    documents: Mapping[str, Stored],
    communities: Iterable[Community],
    kind: str,
    log,
    check: ProfileCheck | None = None,
    made: dict[str, CommunityEnvironments] | None = None,
) -> EnvironmentProfiles:
    """The profiles of the stored ``documents`` of ``communities``, in order.

    ``made``: each community's profiles made before, kept while its
    version is the same (updated in place with those made now): for those,
    ``documents`` may give the version only (``Stored(None, version)``).
    """
    made = {} if made is None else made
    key = []
    profiles: list[dict] = []
    environments: dict[str, tuple[str, Environment]] = {}
    defaults: dict[str, str] = {}
    for community in communities:
        stored = documents.get(community.slug)
        if stored is None:
            continue
        piece = made.get(community.slug)
        if piece is None or piece.version != stored.version:
            if stored.document is None:
                continue
            piece = community_environments(community, stored, kind, log, check)
            made[community.slug] = piece
        key.append((community.slug, stored.version))
        profiles.extend(piece.profiles)
        for slug, environment in piece.environments:
            environments[slug] = (community.slug, environment)
        if piece.default is not None:
            defaults[community.slug] = piece.default
    return EnvironmentProfiles(
        tuple(key),
        tuple(profiles),
        MappingProxyType(environments),
        MappingProxyType(defaults),
    )


def report_stored_settings(
    documents: Mapping[str, Stored],
    registry: Mapping[str, Community],
    kind: str | None,
    log,
) -> None:
    """At hub start-up: what of each community's stored settings applies.

    One line per community with stored settings (info), and each stored
    value outside today's bounds (the operator tightened them) logged with
    its key path as not applied (warning); so is the document of a
    community that is no longer configured. ``kind`` is the spawner
    class's ``delegated_kind``.
    """
    for slug, stored in sorted(documents.items()):
        if stored.document is None:
            continue
        community = registry.get(slug)
        if community is None:
            log.warning(
                "hubext: %s's stored settings (version %d): not applied: "
                "no community %r is configured",
                slug,
                stored.version,
                slug,
            )
            continue
        # a spawner taking no environments starts only where none are
        # delegated (start-up checks): then only the idle timeout applies
        delegated, problems = effective(
            stored.document, community.self_service, kind or "local"
        )
        report_not_applied(slug, stored.version, problems, log)
        log.info(
            "hubext: %s's stored settings (version %d) apply: %d %s%s",
            slug,
            stored.version,
            len(delegated.environments),
            "environment" if len(delegated.environments) == 1 else "environments",
            f", idle timeout {delegated.idle_timeout} s"
            if delegated.idle_timeout is not None
            else "",
        )


def _first_line(error: BaseException, secrets: Iterable[str | None]) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return scrub(text, secrets)


class StoredEnvironments:
    """How one spawner class reads the communities' stored environments.

    Kept on the class (every spawner of the hub shares it): the hub's store,
    and the profiles made from the latest stored versions. A read with
    nothing changed costs the cache's versions and a comparison, in memory;
    the database is read in a thread, when the store's cache is older than
    its ``max_age`` (a second) or a change went through it.
    """

    def __init__(self) -> None:
        self.store: StateStore | None = None
        self.config: Any = None
        self.retry_at = 0.0
        self.failing = False
        #: (the communities, kind, the cache's stamp, the profiles made)
        self.built: tuple[Any, str, object, EnvironmentProfiles] | None = None
        #: each community's profiles, by the version they were made of
        self.made: dict[str, CommunityEnvironments] = {}

    async def open_store(self, spawner) -> StateStore | None:
        """The hub's store for the spawner's configuration (None: it cannot be opened)."""
        if self.store is not None and self.config is spawner.config:
            return self.store
        if time.monotonic() < self.retry_at:
            return None
        settings = Console(parent=spawner)
        hub_db_url = spawner._hub_db_url()
        try:
            store = await asyncio.to_thread(
                hub_store, settings, hub_db_url, spawner.log
            )
        except Exception as e:
            url = settings.resolved_db_url(hub_db_url)
            self.retry_at = time.monotonic() + RETRY_SECONDS
            spawner.log.error(
                "hubext: the delegated state at %s cannot be opened: %s: %s; "
                "the communities' own environments are not offered (tried "
                "again in %g s)",
                redact(url),
                type(e).__name__,
                _first_line(e, [password_of(url)]),
                RETRY_SECONDS,
            )
            return None
        self.store, self.config = store, spawner.config
        return store

    async def profiles(
        self,
        spawner,
        delegating: tuple[Community, ...],
        kind: str,
        check: ProfileCheck | None = None,
    ) -> EnvironmentProfiles:
        """The environments of ``delegating`` (the communities whose admins
        may offer some), as profiles, from what is stored now."""
        store = await self.open_store(spawner)
        if store is None:
            return NONE
        cache = store.cache
        try:
            stamp = (
                cache.stamp()
                if cache.is_fresh()
                else await asyncio.to_thread(cache.stamp)
            )
        except Exception as e:
            self._failed(spawner.log, store, e)
            return self.built[3] if self.built else NONE
        self.failing = False
        built = self.built
        if built is None or built[0] is not delegating or built[1] != kind:
            self.made = {}  # another configuration: nothing made before holds
        elif built[2] is stamp:
            return built[3]  # no document changed
        versions = cache.versions()
        key = tuple(
            (c.slug, versions[c.slug]) for c in delegating if c.slug in versions
        )
        if (
            built is not None
            and built[0] is delegating
            and built[1] == kind
            and built[3].key == key
        ):
            self.built = (delegating, kind, stamp, built[3])
            return built[3]  # another community's document changed
        # only the documents of another version are read (copied) again
        documents = {
            c.slug: cache.get(c.slug)
            if c.slug not in self.made or self.made[c.slug].version != versions[c.slug]
            else Stored(None, versions[c.slug])
            for c in delegating
            if c.slug in versions
        }
        environments = build_environment_profiles(
            documents, delegating, kind, spawner.log, check, self.made
        )
        self.built = (delegating, kind, stamp, environments)
        return environments

    def _failed(self, log, store: StateStore, error: Exception) -> None:
        if self.failing:
            return
        self.failing = True
        url = store.engine.url
        log.error(
            "hubext: the delegated state at %s cannot be read: %s: %s; "
            "the communities' own environments are not offered until it can",
            redact(url),
            type(error).__name__,
            _first_line(error, [password_of(url)]),
        )


def delegating_communities(communities: Iterable[Community]) -> tuple[Community, ...]:
    """The communities whose admins may offer environments, in registry order."""
    return tuple(c for c in communities if c.self_service.environments is not None)
