"""What a community's admins stored, checked against the operator's bounds, and the profiles it makes. Pure.

A community's admins change its environments and its idle timeout within
the bounds of its ``self_service`` key (:mod:`hubext.self_service`). What
they store is a plain document (:mod:`hubext.console.store` keeps it)::

    {"environments": [
        {"slug": "model-2026", "display_name": "Ocean model 2026",
         "description": "...", "image": "quay.io/ocean-lab/model:v2.1",
         "sizes": ["small", "large"], "default_size": "small", "default": true},
     ],
     "idle_timeout": 3600}

with ``"software_environment": "/srv/envs/ocean-lab/py311"`` instead of
``image`` on ``hubext-local``. The order of ``environments`` is the form's.

- :func:`parse_delegated` validates a document a community admin sends:
  its shape and every value against today's bounds, each error with its key
  path (``environments[0].image: ...``), all at once; a request refused
  with them is a 400 naming the field;
- :func:`effective` reads a stored document at a spawn: what today's bounds
  still allow, and each stored value they no longer allow (the operator
  tightened them) with its key path, not applied: it "needs attention";
- :func:`profiles_of` turns it into KubeSpawner profiles (``allowed_groups``
  the community, an option ``size`` whose choices are the operator's
  sizes), which the spawners merge with the configured ones and treat
  exactly like them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._validation import (
    ConfigError,
    ErrorCollector,
    KeyPath,
    check_keys,
    collecting,
    errors_of,
    expect,
    expect_list,
    expect_mapping,
    expect_text,
    show,
)
from .communities import ROOT_PATH, Community
from .self_service import (
    KINDS,
    PROFILE_SEPARATOR,
    SelfService,
    Size,
    check_for_spawner,
    idle_timeout_problem,
    image_problem,
    size_problem,
    software_environment_problem,
)

#: Where a spawner runs servers: ``kube`` takes images, ``local`` software
#: environments.
SpawnerKind = Literal["kube", "local"]

ROOT = KeyPath("settings")
DOCUMENT_KEYS = ("environments", "idle_timeout")
ENVIRONMENT_KEYS = (
    "slug",
    "display_name",
    "description",
    "image",
    "software_environment",
    "sizes",
    "default_size",
    "default",
)
#: The profile option holding an environment's sizes.
SIZE_OPTION = "size"
#: Between a community's slug and an environment's in a profile's slug.
SEPARATOR = PROFILE_SEPARATOR
_ENV_SLUG = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")


@dataclass(frozen=True)
class Environment:
    """One environment (a profile) a community's admins offer."""

    slug: str
    display_name: str
    description: str = ""
    image: str | None = None
    software_environment: str | None = None
    sizes: tuple[str, ...] = ()
    default_size: str | None = None
    default: bool = False


@dataclass(frozen=True)
class Delegated:
    """A community's stored settings (``idle_timeout`` None: the configuration's)."""

    environments: tuple[Environment, ...] = ()
    idle_timeout: int | None = None


def _environment(
    value: Any, path: KeyPath, service: SelfService, kind: SpawnerKind
) -> Environment:
    expect_mapping(value, path)
    parsed: dict[str, Any] = {}
    with collecting() as errors:
        with errors.check():
            check_keys(value, path, ENVIRONMENT_KEYS, required=("slug",))
        with errors.check():
            slug = expect_text(value.get("slug"), path.attr("slug"), max_length=40)
            if SEPARATOR in slug or not _ENV_SLUG.fullmatch(slug):
                raise ConfigError(
                    path.attr("slug"),
                    "lowercase letters, digits and single '-' (at most 40), "
                    f"got {show(slug)}",
                )
            parsed["slug"] = slug
        with errors.check():
            parsed["display_name"] = expect_text(
                value.get("display_name", value.get("slug")),
                path.attr("display_name"),
                max_length=200,
            )
        if "description" in value:
            with errors.check():
                parsed["description"] = expect_text(
                    value["description"],
                    path.attr("description"),
                    max_length=2000,
                    allow_empty=True,
                )
        bounds = service.environments
        if kind == "kube":
            with errors.check():
                if "software_environment" in value:
                    raise ConfigError(
                        path.attr("software_environment"),
                        "this hub runs containers: give an image",
                    )
                problem = image_problem(bounds, value.get("image"))
                if problem:
                    raise ConfigError(path.attr("image"), problem)
                parsed["image"] = value["image"]
        else:
            with errors.check():
                if "image" in value:
                    raise ConfigError(
                        path.attr("image"),
                        "this hub runs servers on one machine: give a "
                        "software_environment",
                    )
                where = value.get("software_environment")
                problem = software_environment_problem(bounds, where)
                if problem:
                    raise ConfigError(path.attr("software_environment"), problem)
                parsed["software_environment"] = where.rstrip("/")
        if "sizes" in value:
            with errors.check():
                sizes = expect_list(value["sizes"], path.attr("sizes"))
                for i, size in enumerate(sizes):
                    with errors.check():
                        problem = size_problem(service, size)
                        if problem:
                            raise ConfigError(path.attr("sizes")[i], problem)
                if len(set(sizes)) != len(sizes):
                    raise ConfigError(path.attr("sizes"), "names a size twice")
                parsed["sizes"] = tuple(sizes)
        if "default_size" in value:
            with errors.check():
                if value["default_size"] not in parsed.get("sizes", ()):
                    raise ConfigError(
                        path.attr("default_size"),
                        f"{show(value['default_size'])} is not one of its sizes",
                    )
                parsed["default_size"] = value["default_size"]
        if "default" in value:
            with errors.check():
                parsed["default"] = expect(
                    value["default"], bool, path.attr("default"), "true or false"
                )
    return Environment(**parsed)


def parse_delegated(
    document: Any, service: SelfService, kind: SpawnerKind, path: KeyPath = ROOT
) -> Delegated:
    """A document a community admin sends, checked against today's bounds.

    Raises :class:`~hubext._validation.ConfigErrors` with every error, each
    naming its field (a 400 for the console).
    """
    parsed: dict[str, Any] = {}
    with collecting() as errors:
        with errors.check():
            expect_mapping(document, path)
        if errors.errors:
            return Delegated()  # raised as ConfigErrors when the block ends
        with errors.check():
            check_keys(document, path, DOCUMENT_KEYS)
        if "environments" in document:
            with errors.check():
                entries = expect_list(
                    document["environments"], path.attr("environments")
                )
                if entries and service.environments is None:
                    raise ConfigError(
                        path.attr("environments"),
                        "this community's admins may not offer environments",
                    )
                limit = service.environments.max_profiles if entries else 0
                if len(entries) > limit:
                    raise ConfigError(
                        path.attr("environments"),
                        f"at most {limit} environments, got {len(entries)}",
                    )
                environments = []
                for i, entry in enumerate(entries):
                    with errors.check():
                        environments.append(
                            _environment(
                                entry, path.attr("environments")[i], service, kind
                            )
                        )
                slugs = [e.slug for e in environments]
                for i, slug in enumerate(slugs):
                    if slug in slugs[:i]:
                        errors.add(
                            ConfigError(
                                path.attr("environments")[i].attr("slug"),
                                f"{show(slug)} is taken by another environment",
                            )
                        )
                if sum(e.default for e in environments) > 1:
                    errors.add(
                        ConfigError(
                            path.attr("environments"),
                            "more than one environment is the default",
                        )
                    )
                parsed["environments"] = tuple(environments)
        if document.get("idle_timeout") is not None:
            with errors.check():
                problem = idle_timeout_problem(service, document["idle_timeout"])
                if problem:
                    raise ConfigError(path.attr("idle_timeout"), problem)
                parsed["idle_timeout"] = document["idle_timeout"]
    return Delegated(**parsed)


def effective(
    document: Any, service: SelfService, kind: SpawnerKind, path: KeyPath = ROOT
) -> tuple[Delegated, list[ConfigError]]:
    """What of a stored document today's bounds allow, and what they do not.

    Never raises: each environment (and the idle timeout) outside today's
    bounds is left out and reported with its key path; a document that is
    not a mapping at all is reported whole.
    """
    problems: list[ConfigError] = []
    if not isinstance(document, Mapping):
        if document is not None:
            problems.append(
                ConfigError(path, "not a mapping: nothing of it is applied")
            )
        return Delegated(), problems
    environments = []
    entries = document.get("environments") or []
    if not isinstance(entries, list):
        problems.append(ConfigError(path.attr("environments"), "not a list"))
        entries = []
    for i, entry in enumerate(entries):
        errors = ErrorCollector()
        with errors.check():
            if service.environments is None:
                raise ConfigError(
                    path.attr("environments"),
                    "this community's admins may no longer offer environments",
                )
            environments.append(
                _environment(entry, path.attr("environments")[i], service, kind)
            )
        for error in errors.errors:
            problems.extend(errors_of(error))
    if service.environments is not None:
        allowed = service.environments.max_profiles
        if len(environments) > allowed:
            problems.append(
                ConfigError(
                    path.attr("environments"),
                    f"{len(environments)} environments, at most {allowed} now: "
                    f"the last {len(environments) - allowed} are not offered",
                )
            )
            environments = environments[:allowed]
    seen: set[str] = set()
    unique = []
    for environment in environments:
        if environment.slug not in seen:
            seen.add(environment.slug)
            unique.append(environment)
    idle_timeout, problem = stored_idle_timeout(document, service, path)
    if problem is not None:
        problems.append(problem)
    return Delegated(tuple(unique), idle_timeout), problems


def stored_idle_timeout(
    document: Any, service: SelfService, path: KeyPath = ROOT
) -> tuple[int | None, ConfigError | None]:
    """The idle timeout a stored document sets, if today's bounds allow it.

    ``(seconds, None)``; ``(None, None)`` when it sets none;
    ``(None, the problem)`` when the bounds do not allow it (not applied).
    What the culler reads of a document.
    """
    if not isinstance(document, Mapping):
        return None, None
    seconds = document.get("idle_timeout")
    if seconds is None:
        return None, None
    problem = idle_timeout_problem(service, seconds)
    if problem:
        return None, ConfigError(path.attr("idle_timeout"), problem)
    return seconds, None


def profile_slug(community: str, environment: str) -> str:
    """The profile slug of a community's environment: never another
    community's, and never a configured profile's (a configured slug that
    starts with a community's slug and :data:`SEPARATOR` is refused at
    start-up)."""
    return f"{community}{SEPARATOR}{environment}"


def _size_override(size: Size, kind: SpawnerKind) -> dict[str, Any]:
    override: dict[str, Any] = {}
    for key in ("cpu_limit", "cpu_guarantee", "mem_limit", "mem_guarantee"):
        value = getattr(size, key)
        if value is not None:
            override[key] = value
    if size.gpus and kind == "kube":
        override["extra_resource_limits"] = {size.gpu_resource: str(size.gpus)}
    return override


def _environment_override(environment: Environment, kind: SpawnerKind) -> dict:
    if kind == "kube":
        return {"image": environment.image}
    prefix = environment.software_environment
    return {
        "cmd": [f"{prefix}/bin/python", "-m", "jupyterhub.singleuser"],
        "environment": {
            "PATH": f"{prefix}/bin:/usr/local/bin:/usr/bin:/bin",
            "VIRTUAL_ENV": prefix,
        },
    }


def profiles_of(
    community: str,
    display_name: str,
    delegated: Delegated,
    service: SelfService,
    kind: SpawnerKind,
) -> list[dict[str, Any]]:
    """The community's environments as KubeSpawner profiles, in their order.

    Each is visible to the community only (``allowed_groups``); its sizes
    are the choices of an option ``size`` (the first, or ``default_size``,
    pre-selected). What the spawners then do with them is what they do
    with configured profiles.
    """
    profiles = []
    for environment in delegated.environments:
        profile: dict[str, Any] = {
            "display_name": environment.display_name,
            "description": environment.description
            or f"An environment of {display_name}",
            "slug": profile_slug(community, environment.slug),
            "allowed_groups": [community],
            "kubespawner_override": _environment_override(environment, kind),
        }
        if environment.default:
            profile["default"] = True
        sizes = [service.sizes[s] for s in environment.sizes if s in service.sizes]
        if sizes:
            default = environment.default_size or sizes[0].slug
            profile["profile_options"] = {
                SIZE_OPTION: {
                    "display_name": "Size",
                    "choices": {
                        size.slug: {
                            "display_name": size.display_name,
                            "default": size.slug == default,
                            "kubespawner_override": _size_override(size, kind),
                        }
                        for size in sizes
                    },
                }
            }
        profiles.append(profile)
    return profiles


def check_spawner_delegation(
    registry: Mapping[str, Community],
    kind: str | None,
    profile_list: Any,
    profile_list_key: str,
) -> None:
    """Start-up: what the communities delegate, against the hub's spawner.

    ``kind`` is the spawner class's ``delegated_kind`` (None: it takes no
    community environments); ``profile_list`` its configured list, under
    ``profile_list_key``. Bounds the spawner would ignore are refused
    (:func:`hubext.self_service.check_for_spawner`), and so is an empty
    ``profile_list`` where a community's admins may offer environments:
    theirs are offered beside the configured profiles, and the members of
    other communities would have nothing. Raises ConfigErrors.
    """
    with collecting() as errors:
        for slug, community in registry.items():
            with errors.check():
                check_for_spawner(
                    community.self_service, kind, ROOT_PATH[slug].attr("self_service")
                )
        delegating = [
            slug
            for slug, community in registry.items()
            if community.self_service.environments is not None
        ]
        if (
            delegating
            and kind in KINDS
            and not callable(profile_list)
            and not profile_list
        ):
            errors.add(
                ConfigError(
                    profile_list_key,
                    f"is empty, and the admins of {', '.join(delegating)} may "
                    "offer environments: those are offered beside the configured "
                    "profiles; configure at least one profile, e.g. "
                    "[{'display_name': 'Default', 'slug': 'default'}]",
                )
            )
