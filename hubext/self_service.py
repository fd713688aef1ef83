"""What a community's admins may change themselves, within bounds: the ``self_service`` key. Pure.

The operator's configuration stays the source of policy. A community's
``self_service`` says what its admins may change and within which bounds;
nothing is delegated by default (no key, or a key left out)::

    "self_service": {
        # environments (profiles) the community's admins add, edit, order
        "environments": {
            # hubext-kube: container images whose name matches a pattern
            # (shell-style, on "registry/repository"), with a tag matching
            # tag_pattern (the whole tag), or pinned by digest
            "images": ["quay.io/ocean-lab/*"],
            "tag_pattern": r"v?[0-9]+(\\.[0-9]+)*",
            "allow_digest": True,
            # hubext-local: software environments, directories under these
            # roots, each with bin/python (a virtualenv or conda prefix)
            "software_roots": ["/srv/envs/ocean-lab"],
            "max_profiles": 5,
        },
        # the sizes the operator defines; admins choose which to offer
        "sizes": {
            "small": {"display_name": "2 CPUs, 8 GiB", "cpu_limit": 2,
                      "mem_limit": "8G", "cpu_guarantee": 0.5, "mem_guarantee": "2G"},
            "gpu": {"display_name": "1 GPU", "cpu_limit": 8, "mem_limit": "32G",
                    "gpus": 1},
        },
        # the idle timeout the admins may set, in seconds
        "idle_timeout": {"min": 900, "max": 28800},
        # invitations and join codes the admins may hand out (issue #23)
        "invitations": {
            "max_uses": 300,      # uses of one invitation, at most
            "max_days": 30,       # an invitation expires within this many days
            # memberships from an invitation end within this many days
            # (every invitation then carries an end date); left out: the
            # admins may give an end date or none
            "max_membership_days": 120,
        },
    }

:func:`parse_self_service` validates the key (every error with its key
path); :func:`check_sizes_within_limits` refuses a size past the community's
``limits``. The ``*_problem`` functions say why a value a community admin
asks for is outside the bounds (or None): the console's 4xx messages, and
the values stored earlier that bounds tightened since no longer allow.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._validation import (
    ConfigError,
    KeyPath,
    check_keys,
    collecting,
    expect,
    expect_list,
    expect_mapping,
    expect_text,
    plural,
    show,
)
from .culling import MIN_SECONDS
from .limits import GIB, Limits, parse_memory

KEYS = ("environments", "sizes", "idle_timeout", "invitations")
INVITATION_KEYS = ("max_uses", "max_days", "max_membership_days")
#: Most uses of one invitation and longest validity, whatever the bounds say.
MAX_INVITATION_USES = 10_000
MAX_INVITATION_DAYS = 366
MAX_MEMBERSHIP_DAYS = 3660
ENVIRONMENT_KEYS = (
    "images",
    "tag_pattern",
    "allow_digest",
    "software_roots",
    "max_profiles",
)
SIZE_KEYS = (
    "display_name",
    "cpu_limit",
    "cpu_guarantee",
    "mem_limit",
    "mem_guarantee",
    "gpus",
    "gpu_resource",
)
#: An extended resource's name (Kubernetes): ``vendor.example/resource``.
_RESOURCE = re.compile(
    r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[a-z0-9]([a-z0-9._-]*[a-z0-9])?"
)
#: Between a community's slug and one of its environments' in a profile's
#: slug (``ocean-lab--model``): a configured profile may not use it.
PROFILE_SEPARATOR = "--"
#: Most environments a community may have, whatever ``max_profiles`` says.
MAX_PROFILES = 100
#: How a size is named: a form option's choice key.
_SIZE_SLUG = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
#: An image reference: name, then a tag and/or a digest.
_IMAGE = re.compile(
    r"(?P<name>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(@(?P<digest>sha256:[0-9a-f]{64}))?"
)
#: A pattern names a registry and a repository path, never a tag or a digest.
_IMAGE_PATTERN = re.compile(r"[a-z0-9*?\[\]._-]+(:[0-9]+)?(/[a-z0-9*?\[\]._-]+)+")


@dataclass(frozen=True)
class EnvironmentBounds:
    """Which environments a community's admins may offer."""

    images: tuple[str, ...] = ()
    #: the whole tag must match (None: any tag)
    tag_pattern: str | None = None
    allow_digest: bool = True
    software_roots: tuple[str, ...] = ()
    max_profiles: int = 10


@dataclass(frozen=True)
class Size:
    """A server size the operator defines (what the ``size`` option sets)."""

    slug: str
    display_name: str
    #: the spawner's traits it sets: cpu_limit, cpu_guarantee, mem_limit,
    #: mem_guarantee (bytes), and GPUs
    cpu_limit: float | None = None
    cpu_guarantee: float | None = None
    mem_limit: int | None = None
    mem_guarantee: int | None = None
    gpus: int = 0
    #: the extended resource its GPUs are (hubext-kube)
    gpu_resource: str = "nvidia.com/gpu"

    @property
    def cpu(self) -> float:
        """Cores it takes, by the limits' rule (request, else limit)."""
        return float(self.cpu_guarantee or self.cpu_limit or 0)

    @property
    def memory(self) -> int:
        """Bytes it takes, by the limits' rule (request, else limit)."""
        return int(self.mem_guarantee or self.mem_limit or 0)


@dataclass(frozen=True)
class InvitationBounds:
    """Which invitations a community's admins may hand out."""

    #: uses of one invitation, at most (a personal link has one)
    max_uses: int
    #: an invitation expires at most this many days after it is made
    max_days: int
    #: None: an end date of the membership is optional; else required, at
    #: most this many days after the invitation is made
    max_membership_days: int | None = None


@dataclass(frozen=True)
class SelfService:
    """What a community's admins may change (None / empty: not delegated)."""

    environments: EnvironmentBounds | None = None
    sizes: Mapping[str, Size] = field(default_factory=lambda: MappingProxyType({}))
    #: (shortest, longest) idle timeout in seconds
    idle_timeout: tuple[int, int] | None = None
    #: None: the admins may not invite
    invitations: InvitationBounds | None = None

    @property
    def empty(self) -> bool:
        return self == SelfService()


def _positive_number(value: Any, path: KeyPath, *, integer: bool = False):
    kinds = int if integer else (int, float)
    what = "a whole number" if integer else "a number"
    expect(value, kinds, path, what)
    if value <= 0 or value != value or value in (float("inf"),):
        raise ConfigError(path, f"must be {what} above 0, got {show(value)}")
    return value


def _image_pattern(value: Any, path: KeyPath) -> str:
    expect_text(value, path, max_length=255)
    if not _IMAGE_PATTERN.fullmatch(value):
        raise ConfigError(
            path,
            f"must name a registry and a repository, with * or ? for any "
            f"part, and no tag or digest (e.g. 'quay.io/ocean-lab/*'), "
            f"got {show(value)}",
        )
    if value.split("/", 1)[0].strip("*?") == "":
        raise ConfigError(
            path,
            f"the registry must be named (an image from any registry is any "
            f"code), got {show(value)}",
        )
    return value


def _tag_pattern(value: Any, path: KeyPath) -> str:
    expect_text(value, path, max_length=200)
    try:
        compiled = re.compile(value)
    except re.error as e:
        raise ConfigError(
            path, f"not a regular expression ({e}): {show(value)}"
        ) from None
    if compiled.fullmatch(""):
        raise ConfigError(path, f"matches an empty tag: {show(value)}")
    return value


def _software_root(value: Any, path: KeyPath) -> str:
    expect_text(value, path, max_length=1000)
    normalized = posixpath.normpath(value)
    if (
        not value.startswith("/")
        or normalized != (value.rstrip("/") or "/")
        or ".." in value
    ):
        raise ConfigError(
            path, f"must be an absolute, normalized directory, got {show(value)}"
        )
    if normalized == "/" or normalized.count("/") < 2:
        raise ConfigError(
            path,
            f"too broad: a directory of the community's environments, such as "
            f"/srv/envs/<community>, got {show(value)}",
        )
    return normalized


def _environments(value: Any, path: KeyPath) -> EnvironmentBounds:
    expect_mapping(value, path)
    parsed: dict[str, Any] = {}
    with collecting() as errors:
        with errors.check():
            check_keys(value, path, ENVIRONMENT_KEYS)
        if "images" in value:
            images = []
            with errors.check():
                for i, item in enumerate(
                    expect_list(value["images"], path.attr("images"))
                ):
                    with errors.check():
                        images.append(_image_pattern(item, path.attr("images")[i]))
            parsed["images"] = tuple(images)
        if "tag_pattern" in value:
            with errors.check():
                parsed["tag_pattern"] = _tag_pattern(
                    value["tag_pattern"], path.attr("tag_pattern")
                )
        if "allow_digest" in value:
            with errors.check():
                parsed["allow_digest"] = expect(
                    value["allow_digest"],
                    bool,
                    path.attr("allow_digest"),
                    "true or false",
                )
        if "software_roots" in value:
            roots = []
            with errors.check():
                entries = expect_list(
                    value["software_roots"], path.attr("software_roots")
                )
                for i, item in enumerate(entries):
                    with errors.check():
                        roots.append(
                            _software_root(item, path.attr("software_roots")[i])
                        )
            parsed["software_roots"] = tuple(roots)
        if "max_profiles" in value:
            with errors.check():
                count = _positive_number(
                    value["max_profiles"], path.attr("max_profiles"), integer=True
                )
                if count > MAX_PROFILES:
                    raise ConfigError(
                        path.attr("max_profiles"),
                        f"at most {MAX_PROFILES}, got {count}",
                    )
                parsed["max_profiles"] = count
        if (
            not errors.errors
            and not parsed.get("images")
            and not parsed.get("software_roots")
        ):
            raise ConfigError(
                path,
                "names no environment the admins may use: give images "
                "(hubext-kube) or software_roots (hubext-local)",
            )
    return EnvironmentBounds(**parsed)


def _size(slug: str, value: Any, path: KeyPath) -> Size:
    expect_mapping(value, path)
    parsed: dict[str, Any] = {}
    with collecting() as errors:
        with errors.check():
            check_keys(value, path, SIZE_KEYS)
        with errors.check():
            parsed["display_name"] = expect_text(
                value.get("display_name", slug),
                path.attr("display_name"),
                max_length=200,
            )
        for key in ("cpu_limit", "cpu_guarantee"):
            if key in value:
                with errors.check():
                    parsed[key] = float(_positive_number(value[key], path.attr(key)))
        for key in ("mem_limit", "mem_guarantee"):
            if key in value:
                with errors.check():
                    parsed[key] = parse_memory(value[key], path.attr(key))
        if "gpu_resource" in value:
            with errors.check():
                resource = expect_text(
                    value["gpu_resource"], path.attr("gpu_resource"), max_length=253
                )
                if not _RESOURCE.fullmatch(resource):
                    raise ConfigError(
                        path.attr("gpu_resource"),
                        f"an extended resource such as nvidia.com/gpu, got {show(resource)}",
                    )
                parsed["gpu_resource"] = resource
        if "gpus" in value:
            with errors.check():
                expect(value["gpus"], int, path.attr("gpus"), "a whole number")
                if value["gpus"] < 0:
                    raise ConfigError(
                        path.attr("gpus"), f"must be >= 0, got {value['gpus']}"
                    )
                parsed["gpus"] = value["gpus"]
        for request, limit in (
            ("cpu_guarantee", "cpu_limit"),
            ("mem_guarantee", "mem_limit"),
        ):
            if (
                request in parsed
                and limit in parsed
                and parsed[request] > parsed[limit]
            ):
                errors.add(
                    ConfigError(
                        path.attr(request),
                        f"is more than {limit} ({show(value[request])} > {show(value[limit])})",
                    )
                )
        if not errors.errors and not any(k in parsed for k in SIZE_KEYS[1:6]):
            raise ConfigError(
                path,
                "sets nothing: give cpu_limit, mem_limit, their guarantees or gpus",
            )
    return Size(slug=slug, **parsed)


def _sizes(value: Any, path: KeyPath) -> Mapping[str, Size]:
    expect_mapping(value, path)
    sizes: dict[str, Size] = {}
    with collecting() as errors:
        for slug, definition in value.items():
            if not isinstance(slug, str) or not _SIZE_SLUG.fullmatch(slug):
                errors.add(
                    ConfigError(
                        path[slug] if isinstance(slug, str) else path,
                        f"a size's name must be lowercase letters, digits and '-', "
                        f"got {show(slug)}",
                    )
                )
                continue
            with errors.check():
                sizes[slug] = _size(slug, definition, path[slug])
        if not errors.errors and not sizes:
            raise ConfigError(path, "defines no size")
    return MappingProxyType(sizes)


def _idle_timeout(value: Any, path: KeyPath) -> tuple[int, int]:
    expect_mapping(value, path)
    check_keys(value, path, ("min", "max"), required=("min", "max"))
    with collecting() as errors:
        for key in ("min", "max"):
            with errors.check():
                expect(value[key], int, path.attr(key), "seconds (a whole number)")
                if value[key] < MIN_SECONDS:
                    raise ConfigError(
                        path.attr(key),
                        f"must be at least {MIN_SECONDS} seconds, got {value[key]}",
                    )
    if value["min"] > value["max"]:
        raise ConfigError(
            path.attr("min"), f"is more than max ({value['min']} > {value['max']})"
        )
    return (value["min"], value["max"])


def _bounded_days(value: Any, path: KeyPath, most: int, what: str) -> int:
    count = _positive_number(value, path, integer=True)
    if count > most:
        raise ConfigError(path, f"at most {most} {what}, got {count}")
    return count


def _invitations(value: Any, path: KeyPath) -> InvitationBounds:
    expect_mapping(value, path)
    parsed: dict[str, Any] = {}
    with collecting() as errors:
        with errors.check():
            check_keys(value, path, INVITATION_KEYS, required=("max_uses", "max_days"))
        for key, most, what in (
            ("max_uses", MAX_INVITATION_USES, "uses"),
            ("max_days", MAX_INVITATION_DAYS, "days"),
            ("max_membership_days", MAX_MEMBERSHIP_DAYS, "days"),
        ):
            if key in value:
                with errors.check():
                    parsed[key] = _bounded_days(value[key], path.attr(key), most, what)
    return InvitationBounds(**parsed)


def parse_self_service(value: Any, path: KeyPath, slug: str = "") -> SelfService:
    """A community's ``self_service`` key (every error, each with its key path)."""
    expect_mapping(value, path)
    parsed: dict[str, Any] = {}
    with collecting() as errors:
        with errors.check():
            check_keys(value, path, KEYS)
        if "environments" in value:
            with errors.check():
                parsed["environments"] = _environments(
                    value["environments"], path.attr("environments")
                )
        if "sizes" in value:
            with errors.check():
                parsed["sizes"] = _sizes(value["sizes"], path.attr("sizes"))
        if "idle_timeout" in value:
            with errors.check():
                parsed["idle_timeout"] = _idle_timeout(
                    value["idle_timeout"], path.attr("idle_timeout")
                )
        if "invitations" in value:
            with errors.check():
                parsed["invitations"] = _invitations(
                    value["invitations"], path.attr("invitations")
                )
    return SelfService(**parsed)


def check_sizes_within_limits(
    service: SelfService, limits: Limits | None, path: KeyPath
) -> None:
    """Start-up: no size may take more than the community's ``limits`` allow.

    ``path`` is the community's ``self_service`` key path. A size that
    alone exceeds ``max_cpu``, ``max_memory`` or ``max_gpu`` could never
    start; a budget is not compared (it is spent over time).
    """
    if limits is None:
        return
    with collecting() as errors:
        for size in service.sizes.values():
            where = path.attr("sizes")[size.slug]
            for key, taken, limit, shown in (
                (
                    "cpu",
                    size.cpu,
                    limits.max_cpu,
                    f"{size.cpu:g} {plural(size.cpu, 'CPU')}",
                ),
                (
                    "memory",
                    size.memory,
                    limits.max_memory,
                    f"{size.memory / GIB:.3g} GiB",
                ),
                (
                    "gpus",
                    size.gpus,
                    limits.max_gpu,
                    f"{size.gpus} {plural(size.gpus, 'GPU')}",
                ),
            ):
                if limit is not None and taken > limit:
                    name = {
                        "cpu": "max_cpu",
                        "memory": "max_memory",
                        "gpus": "max_gpu",
                    }[key]
                    errors.add(
                        ConfigError(
                            where,
                            f"takes {shown}, more than the community's "
                            f"limits.{name} allows",
                        )
                    )


#: The spawner kinds (a spawner class's ``delegated_kind``) and what each runs.
KINDS = {"kube": "images", "local": "software environments"}


def check_for_spawner(service: SelfService, kind: str | None, path: KeyPath) -> None:
    """Start-up: bounds the hub's spawner would ignore are refused, every one.

    ``kind`` is the spawner class's ``delegated_kind``: ``"kube"`` runs
    images, ``"local"`` software environments; None, a spawner that takes no
    community environments. ``path`` is the community's ``self_service``
    key path. Sizes are offered with environments only.
    """
    bounds = service.environments
    with collecting() as errors:
        if service.sizes and bounds is None:
            errors.add(
                ConfigError(
                    path.attr("sizes"),
                    "sizes are offered with the community's environments: "
                    "give environments too, or remove sizes",
                )
            )
        if bounds is None:
            return
        where = path.attr("environments")
        if kind not in KINDS:
            errors.add(
                ConfigError(
                    where,
                    "the hub's spawner takes no community environments "
                    "(hubext-kube and hubext-local do)",
                )
            )
            return
        if kind == "kube":
            if bounds.software_roots:
                errors.add(
                    ConfigError(
                        where.attr("software_roots"),
                        "hubext-kube runs images, not software environments: "
                        "give images",
                    )
                )
            elif not bounds.images:
                errors.add(ConfigError(where, "hubext-kube runs images: give images"))
            return
        if bounds.images or bounds.tag_pattern is not None or not bounds.allow_digest:
            given = [
                key
                for key, set_ in (
                    ("images", bool(bounds.images)),
                    ("tag_pattern", bounds.tag_pattern is not None),
                    ("allow_digest", not bounds.allow_digest),
                )
                if set_
            ]
            for key in given:
                errors.add(
                    ConfigError(
                        where.attr(key),
                        "hubext-local runs software environments, not images: "
                        "give software_roots",
                    )
                )
        elif not bounds.software_roots:
            errors.add(
                ConfigError(
                    where,
                    "hubext-local runs software environments: give software_roots",
                )
            )
        for size in service.sizes.values():
            if size.gpus:
                errors.add(
                    ConfigError(
                        path.attr("sizes")[size.slug].attr("gpus"),
                        "hubext-local gives servers no GPUs",
                    )
                )


# -- what a community admin asks for --------------------------------------------------


def parse_image(image: Any) -> tuple[str, str | None, str | None] | None:
    """``(name, tag, digest)`` of an image reference, or None if it is not one."""
    if not isinstance(image, str) or len(image) > 512:
        return None
    match = _IMAGE.fullmatch(image)
    if match is None:
        return None
    return match["name"], match["tag"], match["digest"]


def image_problem(bounds: EnvironmentBounds | None, image: Any) -> str | None:
    """Why ``image`` may not be offered under ``bounds``, or None."""
    if bounds is None or not bounds.images:
        return "this community's admins may not choose images"
    parts = parse_image(image)
    if parts is None:
        return (
            f"{show(image)} is not an image reference "
            "(registry/repository:tag or registry/repository@sha256:...)"
        )
    name, tag, digest = parts
    if not any(fnmatch.fnmatchcase(name, pattern) for pattern in bounds.images):
        return f"{name} is not among the images allowed ({', '.join(bounds.images)})"
    if digest is not None:
        if not bounds.allow_digest:
            return "images pinned by digest are not allowed"
        return None
    if tag is None:
        return "give a tag or a digest (an image without one follows 'latest')"
    if bounds.tag_pattern is not None and not re.fullmatch(bounds.tag_pattern, tag):
        return f"the tag {show(tag)} does not match {show(bounds.tag_pattern)}"
    return None


def software_environment_problem(
    bounds: EnvironmentBounds | None, path: Any
) -> str | None:
    """Why ``path`` may not be a software environment under ``bounds``, or None.

    Pure: the path's form and place only. That it is a directory holding
    ``bin/python``, and that no link takes it out of its root, is checked by
    the spawner on the machine (:mod:`hubext.spawners.local`).
    """
    if bounds is None or not bounds.software_roots:
        return "this community's admins may not choose software environments"
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        return f"{show(path)} is not an absolute path"
    normalized = posixpath.normpath(path)
    if normalized != path.rstrip("/") or "/../" in path + "/":
        return f"{show(path)} is not a normalized path"
    for root in bounds.software_roots:
        if normalized.startswith(root + "/") and normalized != root:
            return None
    return (
        f"{normalized} is not in the directories allowed "
        f"({', '.join(bounds.software_roots)})"
    )


def idle_timeout_problem(service: SelfService, seconds: Any) -> str | None:
    """Why ``seconds`` may not be the community's idle timeout, or None."""
    if service.idle_timeout is None:
        return "this community's admins may not set the idle timeout"
    low, high = service.idle_timeout
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return f"{show(seconds)} is not a number of seconds"
    if not low <= seconds <= high:
        return f"{seconds} s is outside {low} s to {high} s"
    return None


def size_problem(service: SelfService, size: Any) -> str | None:
    """Why ``size`` may not be offered, or None."""
    if not service.sizes:
        return "this community's admins may not choose sizes"
    if size not in service.sizes:
        return f"{show(size)} is not a size of this hub ({', '.join(service.sizes)})"
    return None
