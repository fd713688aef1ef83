"""Directories opened as root without following a symbolic link.

A hub that runs as root prepares folders whose paths may pass through
places its users can write: a home, a shared folder. A path is resolved by
the kernel at each use, so a person who swaps a directory for a link between
two calls makes root change the link's target (``chmod``, ``chown``, an ACL
on ``/etc``). Here every path is walked from ``/`` one component at a time
with ``O_NOFOLLOW | O_DIRECTORY``, relative to the directory opened before,
and every change is made on the opened descriptor (``fchmod``, ``fchown``,
ACLs as ``system.posix_acl_*`` extended attributes of the descriptor). A
link anywhere on the way is an error, never followed.

With ``trusted_parents``, each directory the walk passes through must also
be one only root can change: owned by root and not writable by group or
others, or sticky (like ``/tmp``) with the next component owned by root.
Otherwise a person could rename a component away after the walk and the
folder would no longer be the one configured.
"""

from __future__ import annotations

import errno
import os
import stat
import struct

_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: How a directory is opened without following a link.
DIRECTORY_FLAGS = _FLAGS


class UnsafePath(Exception):
    """A path the hub refuses to use as root; ``str()`` says which component and why."""


def _components(path: str) -> list[str]:
    if not path.startswith("/"):
        raise UnsafePath(f"{path!r} is not an absolute path")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise UnsafePath(f"{path!r} contains '.' or '..'")
    return parts


def open_child(
    parent_fd: int, name: str, where: str, *, create_mode: int | None = None
) -> tuple[int, bool]:
    """Open directory ``name`` in ``parent_fd`` without following a link.

    ``where`` is its full path, for messages. With ``create_mode``, a
    missing directory is made with that mode. Returns ``(fd, created)``.
    """
    created = False
    try:
        return os.open(name, _FLAGS, dir_fd=parent_fd), created
    except FileNotFoundError:
        if create_mode is None:
            raise UnsafePath(f"{where} does not exist") from None
    except OSError as e:
        raise _refusal(parent_fd, name, where, e) from None
    try:
        # mkdirat never follows a link at the last component: a link planted
        # meanwhile makes it fail with EEXIST, and the open below refuses it.
        os.mkdir(name, create_mode, dir_fd=parent_fd)
        created = True
    except FileExistsError:
        pass
    try:
        return os.open(name, _FLAGS, dir_fd=parent_fd), created
    except OSError as e:
        raise _refusal(parent_fd, name, where, e) from None


def _refusal(parent_fd: int, name: str, where: str, error: OSError) -> UnsafePath:
    try:
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except OSError:
        return UnsafePath(f"cannot open {where}: {error.strerror}")
    if stat.S_ISLNK(info.st_mode):
        return UnsafePath(
            f"{where} is a symbolic link; the hub never follows a link as root "
            "(write the real path in the configuration, or remove the link)",
        )
    if not stat.S_ISDIR(info.st_mode):
        return UnsafePath(f"{where} is not a directory")
    return UnsafePath(f"cannot open {where}: {error.strerror}")


def _check_trusted(parent: os.stat_result, child: os.stat_result, where: str) -> None:
    """Only root can replace ``where`` (a component) in its parent."""
    parent_path = os.path.dirname(where)
    if parent.st_uid != 0:
        raise UnsafePath(
            f"{parent_path} belongs to uid {parent.st_uid}, not root: whoever owns "
            f"it could replace {where}; the folders the hub prepares must lie in "
            "directories only root can change",
        )
    if parent.st_mode & 0o022 and not (
        parent.st_mode & stat.S_ISVTX and child.st_uid == 0
    ):
        raise UnsafePath(
            f"{parent_path} is writable by others (mode "
            f"{stat.S_IMODE(parent.st_mode):04o}): they could replace {where}; "
            "the folders the hub prepares must lie in directories only root can change",
        )


def open_dir(
    path: str,
    *,
    create_mode: int | None = None,
    last_mode: int | None = None,
    trusted_parents: bool = False,
) -> tuple[int, bool]:
    """Open directory ``path``, walking from ``/`` without following links.

    Missing directories are created with ``create_mode`` (the last one with
    ``last_mode``, default ``create_mode``); None creates nothing. Returns
    ``(fd, created)``, ``created`` telling whether the last component was
    made here. Raises :class:`UnsafePath` naming the component at fault.
    """
    parts = _components(path)
    fd = os.open("/", _FLAGS)
    created = False
    try:
        where = ""
        for i, name in enumerate(parts):
            where = f"{where}/{name}"
            last = i == len(parts) - 1
            mode = last_mode if last and last_mode is not None else create_mode
            child, created = open_child(fd, name, where, create_mode=mode)
            if trusted_parents:
                try:
                    _check_trusted(os.fstat(fd), os.fstat(child), where)
                except UnsafePath:
                    os.close(child)
                    raise
            os.close(fd)
            fd = child
        return fd, created
    except BaseException:
        os.close(fd)
        raise


# -- POSIX ACLs on a descriptor ------------------------------------------------------

ACCESS_XATTR = "system.posix_acl_access"
DEFAULT_XATTR = "system.posix_acl_default"
_VERSION = 2
_UNDEFINED_ID = 0xFFFFFFFF
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_ENTRY = struct.Struct("<HHI")

#: An ACL: ``{(tag, id): perm}``, ``id`` None for the entries without one.
Acl = dict


def decode_acl(data: bytes) -> Acl:
    """The kernel's ``system.posix_acl_*`` value as ``{(tag, id): perm}``."""
    if not data:
        return {}
    (version,) = struct.unpack_from("<I", data)
    if version != _VERSION:
        raise ValueError(f"unknown POSIX ACL xattr version {version}")
    acl = {}
    for offset in range(4, len(data), _ENTRY.size):
        tag, permission, ident = _ENTRY.unpack_from(data, offset)
        acl[(tag, None if tag not in (USER, GROUP) else ident)] = permission
    return acl


def encode_acl(acl: Acl) -> bytes:
    """``{(tag, id): perm}`` in the kernel's order (by tag, then id)."""
    entries = sorted(acl.items(), key=lambda e: (e[0][0], e[0][1] or 0))
    return struct.pack("<I", _VERSION) + b"".join(
        _ENTRY.pack(tag, permission, _UNDEFINED_ID if ident is None else ident)
        for (tag, ident), permission in entries
    )


def read_acl(fd: int, name: str) -> Acl:
    try:
        return decode_acl(os.getxattr(fd, name))
    except OSError as e:
        if e.errno == errno.ENODATA:
            return {}
        raise


def merge_acl(fd: int, name: str, entries: Acl, mode: int) -> None:
    """Set ``entries`` in ACL ``name`` of ``fd``, keeping its other entries.

    Like ``setfacl -m``: owner and group entries missing from both come from
    ``mode``'s permission bits.
    """
    acl = read_acl(fd, name)
    acl.setdefault((USER_OBJ, None), (mode >> 6) & 7)
    acl.setdefault((GROUP_OBJ, None), (mode >> 3) & 7)
    acl.setdefault((OTHER, None), mode & 7)
    acl.update(entries)
    os.setxattr(fd, name, encode_acl(acl))
