"""Shared-data folders of communities, and who gets which access. Pure.

A community lists its shared folders under ``shared_data``::

    "shared_data": [
        {
            "name": "datasets",
            "mount_path": "/home/jovyan/shared/ocean-lab/datasets",
            "source": {"nfs": {"server": "nfs.example.org", "path": "/export/ocean-lab"}},
            "members": "read-only",    # the default
            "admins": "read-write",    # the default
        },
    ]

``source`` is one of ``{"nfs": {"server", "path", "sub_path"?}}``,
``{"pvc": {"claim", "sub_path"?}}`` or ``{"host_path": "/srv/..."}``.
Access is ``read-only``, ``read-write`` or ``none``, for the community's
members (its JupyterHub group) and, separately, for its admins (the holders
of its ``community-admin-<slug>`` role).

This module validates the definitions (key paths in every error), checks
mount paths across all communities, and answers "which folders, with which
access, for a person who is a member of these communities and an admin of
those" (:func:`mounts_for`). The spawners turn the answer into Kubernetes
volumes (:mod:`hubext.kube_volumes`) or into folders on the machine
(:mod:`hubext.spawners.local_shared`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._validation import (
    ConfigError,
    KeyPath,
    check_keys,
    expect_list,
    expect_mapping,
    expect_text,
    show,
)
from .slugs import COMMUNITY_SLUG_PATTERN

READ_ONLY = "read-only"
READ_WRITE = "read-write"
NONE = "none"
ACCESS_VALUES = (READ_ONLY, READ_WRITE, NONE)
DEFAULT_ACCESS = {"members": READ_ONLY, "admins": READ_WRITE}

#: Paths a shared folder may neither replace nor be mounted inside: the
#: container's (or machine's) own system. ``/`` and the parents of these are
#: refused too (mounting there would hide them).
SYSTEM_PATHS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt/conda",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv/conda",
    "/sys",
    "/usr",
    "/var",
)

_NAME_RE = re.compile(COMMUNITY_SLUG_PATTERN)
_NAME_MAX = 63


@dataclass(frozen=True)
class Source:
    """Where a folder's data lives: ``kind`` is ``nfs``, ``pvc`` or ``host_path``."""

    kind: str
    #: nfs: the export path; host_path: the directory on the machine.
    path: str = ""
    server: str = ""
    claim: str = ""
    #: nfs and pvc: the folder inside the export or the claim ("" = its root).
    sub_path: str = ""


@dataclass(frozen=True)
class SharedFolder:
    """One validated ``shared_data`` entry of a community."""

    community: str
    name: str
    mount_path: str
    source: Source
    members: str = READ_ONLY
    admins: str = READ_WRITE

    @property
    def key(self) -> str:
        """``<community>/<name>``: unique on the hub."""
        return f"{self.community}/{self.name}"

    def access(self, *, member: bool, admin: bool) -> str:
        """The access of a person; an admin gets the more generous of both."""
        levels = []
        if member:
            levels.append(self.members)
        if admin:
            levels.append(self.admins)
        if READ_WRITE in levels:
            return READ_WRITE
        if READ_ONLY in levels:
            return READ_ONLY
        return NONE


@dataclass(frozen=True)
class Mount:
    """A folder given to one person, with their access (never ``none``)."""

    folder: SharedFolder
    access: str

    @property
    def read_only(self) -> bool:
        return self.access != READ_WRITE


# -- validation ------------------------------------------------------------------


_BRACES = (
    "must not contain '{' or '}' (KubeSpawner would expand them as template fields)"
)


def path_problem(value: str) -> str | None:
    """Why ``value`` is not a clean absolute path, or None."""
    if not value.startswith("/"):
        return "must be an absolute path (starting with '/')"
    if "\0" in value or not value.isprintable():
        return "contains control characters"
    if "{" in value or "}" in value:
        return _BRACES
    parts = value.split("/")[1:]
    if ".." in parts:
        return "must not contain '..'"
    if value != "/" and (value.endswith("/") or "" in parts or "." in parts):
        return f"must be written without '.', '//' or a trailing '/' ({posixpath.normpath(value)!r})"
    return None


def relative_path_problem(value: str) -> str | None:
    """Why ``value`` is not a clean relative path (a sub_path), or None."""
    if value.startswith("/"):
        return "must be a relative path (no leading '/')"
    if "\0" in value or not value.isprintable():
        return "contains control characters"
    if "{" in value or "}" in value:
        return _BRACES
    parts = value.split("/")
    if ".." in parts:
        return "must not contain '..'"
    if "" in parts or "." in parts:
        return "must be written without '.', '//' or a trailing '/'"
    return None


def contains(parent: str, child: str) -> bool:
    """True if ``child`` is ``parent`` or inside it (clean absolute paths)."""
    return child == parent or child.startswith(parent.rstrip("/") + "/")


#: System paths a ``host_path`` may lie inside: home directories on the
#: machine (root's home is where one clones as root on a cloud machine).
#: A host path may still be neither one of them nor above them.
HOST_PATHS_INSIDE_ALLOWED = ("/root",)


def system_path_problem(mount_path: str) -> str | None:
    """Why a ``mount_path`` (a path inside the server) is a system path, or None."""
    return _system_problem(mount_path, inside_allowed=())


def host_system_path_problem(host_path: str) -> str | None:
    """Why a ``host_path`` (a directory on the hub's machine) is refused, or None.

    As for mount paths, except that a host path may lie inside
    :data:`HOST_PATHS_INSIDE_ALLOWED`: the hub changes the mode and ACL of
    the folder itself, never of its parents, and ``/root/...`` is a home on
    the machine, not the machine's system.
    """
    return _system_problem(host_path, inside_allowed=HOST_PATHS_INSIDE_ALLOWED)


def _system_problem(path: str, inside_allowed: tuple[str, ...]) -> str | None:
    if path == "/":
        return "must not be '/'"
    for system in SYSTEM_PATHS:
        if contains(system, path) and not (system in inside_allowed and path != system):
            return f"is inside the system path {system}"
        if contains(path, system):
            return f"would hide the system path {system}"
    return None


def _checked_path(value: Any, path: KeyPath, problem_of) -> str:
    expect_text(value, path, max_length=1024)
    problem = problem_of(value)
    if problem:
        raise ConfigError(path, f"{problem}, got {show(value)}")
    return value


def _absolute(value: Any, path: KeyPath) -> str:
    return _checked_path(value, path, path_problem)


def _sub_path(value: Any, path: KeyPath) -> str:
    return _checked_path(value, path, relative_path_problem)


def parse_source(raw: Any, path: KeyPath) -> Source:
    expect_mapping(raw, path)
    check_keys(raw, path, ("nfs", "pvc", "host_path"))
    if len(raw) != 1:
        raise ConfigError(path, "must have exactly one of 'nfs', 'pvc' or 'host_path'")
    kind, value = next(iter(raw.items()))
    vpath = path.attr(kind)
    if kind == "host_path":
        host_path = _absolute(value, vpath)
        problem = host_system_path_problem(host_path)
        if problem:
            raise ConfigError(vpath, f"{host_path!r} {problem}")
        if host_path.count("/") < 2:
            # The parent is where a missing folder is created from; never "/".
            raise ConfigError(
                vpath,
                f"{host_path!r} must be at least two levels deep, e.g. '/srv{host_path}'",
            )
        return Source("host_path", path=host_path)
    expect_mapping(value, vpath)
    if kind == "nfs":
        check_keys(value, vpath, ("server", "path", "sub_path"), ("server", "path"))
        server = expect_text(value["server"], vpath.attr("server"), max_length=253)
        if any(c.isspace() or c in "/{}" for c in server):
            raise ConfigError(
                vpath.attr("server"),
                f"must be a host name or address, got {show(server)}",
            )
        return Source(
            "nfs",
            server=server,
            path=_absolute(value["path"], vpath.attr("path")),
            sub_path=_optional_sub_path(value, vpath),
        )
    check_keys(value, vpath, ("claim", "sub_path"), ("claim",))
    claim = expect_text(value["claim"], vpath.attr("claim"), max_length=253)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", claim):
        raise ConfigError(
            vpath.attr("claim"),
            f"must be a Kubernetes object name (lowercase letters, digits, '-' and '.'), got {show(claim)}",
        )
    return Source("pvc", claim=claim, sub_path=_optional_sub_path(value, vpath))


def _optional_sub_path(value: Mapping, path: KeyPath) -> str:
    if "sub_path" not in value:
        return ""
    return _sub_path(value["sub_path"], path.attr("sub_path"))


def parse_access(value: Any, path: KeyPath) -> str:
    if value not in ACCESS_VALUES:
        raise ConfigError(
            path,
            f"must be one of {', '.join(ACCESS_VALUES)}, got {show(value)}",
        )
    return value


def parse_shared_data(value: Any, path: KeyPath, slug: str) -> tuple[SharedFolder, ...]:
    """The ``shared_data`` key of community ``slug``."""
    folders = []
    names: dict[str, int] = {}
    for i, entry in enumerate(expect_list(value, path)):
        epath = path[i]
        expect_mapping(entry, epath)
        check_keys(
            entry,
            epath,
            ("name", "mount_path", "source", "members", "admins"),
            ("name", "mount_path", "source"),
        )
        name = expect_text(entry["name"], epath.attr("name"), max_length=_NAME_MAX)
        if not _NAME_RE.fullmatch(name):
            raise ConfigError(
                epath.attr("name"),
                f"must match {COMMUNITY_SLUG_PATTERN!r} (lowercase letters, digits "
                f"and '-'), got {show(name)}",
            )
        if name in names:
            raise ConfigError(
                epath.attr("name"),
                f"duplicate name {name!r} (also entry {names[name]})",
            )
        names[name] = i
        mount_path = _absolute(entry["mount_path"], epath.attr("mount_path"))
        problem = system_path_problem(mount_path)
        if problem:
            raise ConfigError(epath.attr("mount_path"), f"{mount_path!r} {problem}")
        folders.append(
            SharedFolder(
                community=slug,
                name=name,
                mount_path=mount_path,
                source=parse_source(entry["source"], epath.attr("source")),
                members=parse_access(
                    entry.get("members", DEFAULT_ACCESS["members"]),
                    epath.attr("members"),
                ),
                admins=parse_access(
                    entry.get("admins", DEFAULT_ACCESS["admins"]), epath.attr("admins")
                ),
            )
        )
    return tuple(folders)


def folder_paths(
    registry: Mapping[str, Any], root: KeyPath
) -> list[tuple[SharedFolder, KeyPath]]:
    """Every shared folder of the registry with the key path of its entry."""
    found = []
    for slug, community in registry.items():
        for i, folder in enumerate(community.shared_data):
            found.append((folder, root[slug].attr("shared_data")[i]))
    return found


def storage_place(source: Source) -> tuple[tuple[str, ...], str]:
    """``(storage, path)``: where a folder's data lives, comparable across folders.

    Two folders on the same storage overlap when one path contains the other.
    """
    if source.kind == "host_path":
        return ("host_path",), source.path
    if source.kind == "nfs":
        path = (
            posixpath.join(source.path, source.sub_path)
            if source.sub_path
            else source.path
        )
        return ("nfs", source.server.lower()), path
    return ("pvc", source.claim), "/" + source.sub_path


def check_overlaps(
    folders: list[tuple[SharedFolder, KeyPath]],
) -> None:
    """No two mount paths, and no two sources, may be equal or nested.

    A member of several communities gets all their folders, so the check is
    hub-wide. A folder whose data lies inside another's would inherit the
    outer folder's access (on one machine its files inherit the outer
    folder's default ACL; a member of the outer folder could replace it by a
    link), so sources are compared too: host paths, NFS export paths on the
    same server, sub-paths of the same claim.
    """
    # Every pair, in definition order, so the error names the later folder.
    # (Sorting and comparing neighbours misses nesting: '-' sorts before '/'.)
    for j, (b, bpath) in enumerate(folders):
        for a, _ in folders[:j]:
            if contains(a.mount_path, b.mount_path) or contains(
                b.mount_path, a.mount_path
            ):
                raise ConfigError(
                    bpath.attr("mount_path"),
                    f"{b.mount_path!r} overlaps the mount path {a.mount_path!r} "
                    f"of {a.key}",
                )
    for j, (b, bpath) in enumerate(folders):
        b_storage, b_path = storage_place(b.source)
        for a, _ in folders[:j]:
            a_storage, a_path = storage_place(a.source)
            if a_storage == b_storage and (
                contains(a_path, b_path) or contains(b_path, a_path)
            ):
                raise ConfigError(
                    _source_key(bpath, b.source),
                    f"{_describe(b.source)} overlaps {_describe(a.source)} of "
                    f"{a.key}: a folder inside another would share its data and "
                    "access; give each folder its own place",
                )


def _source_key(entry: KeyPath, source: Source) -> KeyPath:
    """The key path of the part of ``source`` that places the data."""
    path = entry.attr("source").attr(source.kind)
    if source.kind == "host_path":
        return path
    if source.sub_path:
        return path.attr("sub_path")
    return path.attr("path") if source.kind == "nfs" else path.attr("claim")


def _describe(source: Source) -> str:
    if source.kind == "host_path":
        return f"the host path {source.path!r}"
    path = storage_place(source)[1]
    if source.kind == "nfs":
        return f"the NFS path {source.server}:{path}"
    return f"the claim {source.claim}'s path {path!r}"


def check_host_paths_outside(
    folders: list[tuple[SharedFolder, KeyPath]], directory: str, key: str
) -> None:
    """No ``host_path`` folder equal to, inside or above ``directory`` (``key``)."""
    for folder, path in folders:
        source = folder.source
        if source.kind == "host_path" and (
            contains(directory, source.path) or contains(source.path, directory)
        ):
            raise ConfigError(
                path.attr("source").attr("host_path"),
                f"{source.path!r} overlaps the homes in {directory!r} ({key}): "
                "a person could replace a folder in their home; keep shared "
                "folders and homes apart",
            )


def check_apart_from_homes(
    folders: list[tuple[SharedFolder, KeyPath]], homes: Source, key: str
) -> None:
    """No folder's source equal to, inside or above the homes' storage (``key``).

    Inside, a person could change, from their home, a folder others get;
    above, the folder's members would get every home.
    """
    home_storage, home_path = storage_place(homes)
    for folder, path in folders:
        storage, where = storage_place(folder.source)
        if storage == home_storage and (
            contains(home_path, where) or contains(where, home_path)
        ):
            raise ConfigError(
                _source_key(path, folder.source),
                f"{_describe(folder.source)} overlaps the homes "
                f"({_describe(homes)}, {key}); keep shared folders and homes apart",
            )


def check_host_paths_hold_no_home(
    folders: list[tuple[SharedFolder, KeyPath]], homes: Mapping[str, str]
) -> None:
    """No ``host_path`` folder equal to or above a system user's home.

    ``homes`` is ``{home directory: user name}``. The hub would make the
    folder 0770 and give it to the community: the homes below it would be
    closed to their owners, or opened to the community.
    """
    for folder, path in folders:
        source = folder.source
        if source.kind != "host_path":
            continue
        for home, user in sorted(homes.items()):
            if contains(source.path, home):
                raise ConfigError(
                    path.attr("source").attr("host_path"),
                    f"{source.path!r} holds the home {home!r} of the system user "
                    f"{user}; keep shared folders and homes apart",
                )


def check_home(
    folders: list[tuple[SharedFolder, KeyPath]], home_mount_path: str, home_key: str
) -> None:
    """A folder may sit inside the home, never on it or above it."""
    for folder, path in folders:
        if contains(folder.mount_path, home_mount_path):
            raise ConfigError(
                path.attr("mount_path"),
                f"{folder.mount_path!r} would hide the home directory "
                f"{home_mount_path!r} ({home_key}); choose a path inside the home",
            )


# -- access ------------------------------------------------------------------------


def mounts_for(
    communities: Iterable[Any],
    member_of: Iterable[str],
    admin_of: Iterable[str],
) -> list[Mount]:
    """The folders a person gets, in the order of the communities and entries.

    ``communities`` are :class:`~hubext.communities.Community` objects in
    registry order; ``member_of`` are the person's JupyterHub groups and
    ``admin_of`` the slugs of their community-admin roles.
    """
    member_of = set(member_of)
    admin_of = set(admin_of)
    mounts = []
    for community in communities:
        member = community.slug in member_of
        admin = community.slug in admin_of
        if not (member or admin):
            continue
        for folder in community.shared_data:
            access = folder.access(member=member, admin=admin)
            if access != NONE:
                mounts.append(Mount(folder, access))
    return mounts
