"""Shared folders on one machine, for hubext-local.

A folder's data is a directory on the machine (a ``host_path`` source). Each
server sees it through a symbolic link in the user's home, at the place its
``mount_path`` has relative to the spawner's ``home_mount_path``.

When the hub runs as root and servers run as system users, access is enforced
by the operating system. Each folder has two system groups, one for
read-only and one for read-write access, named from the folder
(:func:`group_name`); the folder belongs to root, mode 0770, with POSIX ACL
entries ``group:<ro>:r-x`` and ``group:<rw>:rwx``, also as default entries
so that whatever is created inside inherits them. A server gets the group of
its user's access as a supplementary group, and nothing else: a non-member
has neither group and cannot enter the folder. Servers run with no new
privileges, so a setgid program kept in a home gives no group back.

As root, the hub never follows a link: folders are opened component by
component and changed through the opened descriptors
(:mod:`hubext.nofollow`), and links in homes are placed after
dropping root.

Without root, folders are created and linked, but nothing is enforced: every
server runs as the same system user.
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import os
import posixpath
import re
import stat
import subprocess
import sys
from collections.abc import Iterable

from .. import nofollow
from ..nofollow import (
    ACCESS_XATTR,
    DEFAULT_XATTR,
    GROUP,
    GROUP_OBJ,
    MASK,
    OTHER,
    USER_OBJ,
)
from ..shared_data import READ_WRITE, Mount, SharedFolder, contains
from ..slugs import stable_name

#: Linux limits group names to 32 characters.
GROUP_NAME_MAX = 32


def group_name(folder: SharedFolder, access: str) -> str:
    """The system group giving ``access`` to ``folder``: ``hx-<...>-ro|rw``."""
    suffix = "-rw" if access == READ_WRITE else "-ro"
    return stable_name("hx-", folder.key, GROUP_NAME_MAX - len(suffix)) + suffix


def link_path(home: str, home_mount_path: str, folder: SharedFolder) -> str:
    """Where the folder appears in a home on this machine."""
    relative = posixpath.relpath(folder.mount_path, home_mount_path)
    return os.path.join(home, relative)


def ensure_group(name: str) -> int:
    """The gid of system group ``name``, created if missing (needs root)."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    result = subprocess.run(
        ["groupadd", "--system", name], capture_output=True, text=True
    )
    try:
        # Another spawn may have created it in the meantime.
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise RuntimeError(
            f"cannot create system group {name}: {result.stderr.strip()}"
        ) from None


def prepare_folder(folder: SharedFolder, *, enforce: bool) -> dict[str, int]:
    """Create the folder if missing; with ``enforce``, give it its groups and ACL.

    Returns ``{access: gid}`` of its groups (empty without ``enforce``).
    Never changes anything inside the folder. As root, no link on the way
    is followed and, with ``enforce``, every directory above the folder
    must be one only root can change (:mod:`~hubext.nofollow`);
    :class:`~hubext.nofollow.UnsafePath` says what is wrong.
    """
    path = folder.source.path
    if os.geteuid() != 0:
        # The hub's own user, as every server: nothing to cross.
        os.makedirs(path, exist_ok=True)
        return {}
    if not enforce:
        fd, _ = nofollow.open_dir(path, create_mode=0o755)
        os.close(fd)
        return {}
    gids = {
        access: ensure_group(group_name(folder, access))
        for access in ("read-only", READ_WRITE)
    }
    fd, created = nofollow.open_dir(
        path, create_mode=0o755, last_mode=0o770, trusted_parents=True
    )
    try:
        if created:
            os.fchown(fd, 0, 0)
        # Only members may enter: no access for others, on the folder itself.
        mode = stat.S_IMODE(os.fstat(fd).st_mode) & 0o7770
        os.fchmod(fd, mode)
        ro, rw = gids["read-only"], gids[READ_WRITE]
        shared = {(GROUP, ro): 0o5, (GROUP, rw): 0o7, (MASK, None): 0o7}
        nofollow.merge_acl(fd, ACCESS_XATTR, {**shared, (OTHER, None): 0}, mode)
        defaults = {(USER_OBJ, None): 0o7, (GROUP_OBJ, None): 0, (OTHER, None): 0}
        nofollow.merge_acl(fd, DEFAULT_XATTR, {**shared, **defaults}, mode)
    finally:
        os.close(fd)
    return gids


def mount_point(path: str, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The mount point ``path`` lies on (the longest one containing it), or None.

    ``path`` is taken as written: the hub's paths hold no links.
    """
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    best = None
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if contains(point, path) and (best is None or len(point) > len(best)):
            best = point
    return best


def link_plan(
    home: str,
    home_mount_path: str,
    mounts: Iterable[Mount],
    all_folders: Iterable[SharedFolder],
) -> tuple[dict[str, str], dict[str, str]]:
    """``(links to place, links to remove)``, each ``{link path: target}``.

    A link is removed only if it still points at the folder of a community
    the user no longer has access to; nothing else in the home is touched.
    """
    wanted = {
        link_path(home, home_mount_path, m.folder): m.folder.source.path for m in mounts
    }
    stale = {}
    for folder in all_folders:
        where = link_path(home, home_mount_path, folder)
        if where not in wanted:
            stale[where] = folder.source.path
    return wanted, stale


def place_links(wanted: dict[str, str], stale: dict[str, str]) -> list[str]:
    """Make the links (run as the user who owns the home). Returns problems.

    Existing files or folders are never replaced: a problem is reported and
    that link is left out. As root (servers sharing the hub's user), no
    link on the way to a link's place is followed.
    """
    problems = []
    for where, target in stale.items():
        try:
            with _parent(where, create=False) as (fd, name):
                if _is_link_to(fd, name, target):
                    os.unlink(name, dir_fd=fd)
        except (OSError, nofollow.UnsafePath):
            pass
    for where, target in wanted.items():
        try:
            with _parent(where, create=True) as (fd, name):
                if _is_link_to(fd, name, target):
                    continue
                try:
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    info = None
                if info is not None and not stat.S_ISLNK(info.st_mode):
                    problems.append(f"{where} exists and is not a link; not replaced")
                    continue
                if info is not None:
                    os.unlink(name, dir_fd=fd)
                os.symlink(target, name, dir_fd=fd)
        except (OSError, nofollow.UnsafePath) as e:
            problems.append(f"cannot link {where}: {e}")
    return problems


def _is_link_to(fd: int, name: str, target: str) -> bool:
    try:
        return os.readlink(name, dir_fd=fd) == target
    except OSError:
        return False


@contextlib.contextmanager
def _parent(where: str, *, create: bool):
    """``(fd of the directory holding where, its last name)``; links not
    followed as root, missing directories made if ``create``."""
    directory, name = os.path.split(where)
    if os.geteuid() != 0:
        if create:
            os.makedirs(directory, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        fd, _ = nofollow.open_dir(directory, create_mode=0o755 if create else None)
    try:
        yield fd, name
    finally:
        os.close(fd)


#: prctl(2) option: exec never grants privileges (setuid, setgid, file caps).
PR_SET_NO_NEW_PRIVS = 38


def no_new_privileges_fn():
    """A function setting ``PR_SET_NO_NEW_PRIVS`` on the calling process.

    Made before the fork (libc loaded here), called in the child before
    exec; it raises, so no server starts, if the kernel refuses.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    prctl.restype = ctypes.c_int

    def no_new_privileges():
        # The kernel wants the unused arguments to be 0.
        if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(e)}")

    return no_new_privileges


def system_user_preexec(username: str, extra_gids: Iterable[int], links):
    """A ``preexec_fn`` that becomes the system user with extra groups.

    Like JupyterHub's ``set_user_setuid``, plus the shared folders' groups,
    and failing (no server) rather than running with the wrong groups; the
    server and everything it starts run with no new privileges (a setuid or
    setgid program gains nothing: a person removed from a community cannot
    keep a folder's group through a setgid copy made while a member). After
    dropping privileges it places the links in the home as the user, so a
    link in a home the user controls is never followed as root.
    """
    import pwd

    user = pwd.getpwnam(username)
    gids = sorted(set(os.getgrouplist(username, user.pw_gid)) | set(extra_gids))
    wanted, stale = links
    no_new_privileges = no_new_privileges_fn()

    def preexec():
        os.setgid(user.pw_gid)
        os.setgroups(gids)
        os.setuid(user.pw_uid)
        no_new_privileges()
        try:
            os.chdir(user.pw_dir)
        except OSError as e:
            print(f"hubext: cannot enter home {user.pw_dir}: {e}", file=sys.stderr)
        for problem in place_links(wanted, stale):
            print(f"hubext: {problem}", file=sys.stderr)

    return preexec
