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
has neither group and cannot enter the folder.

Without root, folders are created and linked, but nothing is enforced: every
server runs as the same system user.
"""

from __future__ import annotations

import grp
import os
import posixpath
import shutil
import subprocess
import sys
from collections.abc import Iterable

from ..shared_data import READ_WRITE, Mount, SharedFolder, stable_name

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
    Never changes anything inside the folder.
    """
    path = folder.source.path
    if not enforce:
        os.makedirs(path, exist_ok=True)
        return {}
    gids = {
        access: ensure_group(group_name(folder, access))
        for access in ("read-only", READ_WRITE)
    }
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    try:
        os.mkdir(path, mode=0o770)
        os.chown(path, 0, 0)
    except FileExistsError:
        pass
    # Only members may enter: no access for others, on the folder itself.
    mode = os.stat(path).st_mode
    os.chmod(path, mode & 0o7770)
    ro, rw = gids["read-only"], gids[READ_WRITE]
    entries = f"g:{ro}:r-x,g:{rw}:rwx,m::rwx,o::---"
    defaults = f"d:u::rwx,d:g::---,d:g:{ro}:r-x,d:g:{rw}:rwx,d:m::rwx,d:o::---"
    subprocess.run(
        [setfacl(), "-m", f"{entries},{defaults}", path],
        check=True,
        capture_output=True,
        text=True,
    )
    return gids


def setfacl() -> str:
    path = shutil.which("setfacl")
    if path is None:
        raise RuntimeError(
            "setfacl is missing: install the 'acl' package to enforce shared-folder access"
        )
    return path


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
    that link is left out.
    """
    problems = []
    for where, target in stale.items():
        if os.path.islink(where) and os.readlink(where) == target:
            os.unlink(where)
    for where, target in wanted.items():
        try:
            if os.path.islink(where):
                if os.readlink(where) == target:
                    continue
                os.unlink(where)
            elif os.path.lexists(where):
                problems.append(f"{where} exists and is not a link; not replaced")
                continue
            os.makedirs(os.path.dirname(where), exist_ok=True)
            os.symlink(target, where)
        except OSError as e:
            problems.append(f"cannot link {where}: {e}")
    return problems


def system_user_preexec(username: str, extra_gids: Iterable[int], links):
    """A ``preexec_fn`` that becomes the system user with extra groups.

    Like JupyterHub's ``set_user_setuid``, plus the shared folders' groups,
    and failing (no server) rather than running with the wrong groups. After
    dropping privileges it places the links in the home as the user, so a
    link in a home the user controls is never followed as root.
    """
    import pwd

    user = pwd.getpwnam(username)
    gids = sorted(set(os.getgrouplist(username, user.pw_gid)) | set(extra_gids))
    wanted, stale = links

    def preexec():
        os.setgid(user.pw_gid)
        os.setgroups(gids)
        os.setuid(user.pw_uid)
        try:
            os.chdir(user.pw_dir)
        except OSError as e:
            print(f"hubext: cannot enter home {user.pw_dir}: {e}", file=sys.stderr)
        for problem in place_links(wanted, stale):
            print(f"hubext: {problem}", file=sys.stderr)

    return preexec
