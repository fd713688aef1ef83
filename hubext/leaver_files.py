"""A leaver's files in a community's shared folders become the folder's (#23).

On one machine with system users (``hubext-local``'s
``run_as_system_users``), a person removed from a community keeps a hard
link, in their home, to a file they made in one of its shared folders: the
file is still theirs, so they can still write it. :func:`hand_over` gives
every file they own in the folder to the folder's owner, group and ACL
(nothing deleted or moved), after which the link gives them nothing.

It works on the machine only: it sits below the console, which calls it
when a community admin removes a member, and beside the spawners' folder
code, which sets the folders up (:mod:`hubext.spawners.local_shared`).
"""

from __future__ import annotations

import os
import stat

from . import nofollow
from .nofollow import ACCESS_XATTR, DEFAULT_XATTR, Acl

#: Opens a file to change it without following a link, nor waiting on a pipe.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _folder_acl(folder_default: Acl, *, directory: bool, executable: bool) -> Acl:
    """The access ACL a new file or directory gets in the folder (its default
    ACL; a file without an execute bit gets none)."""
    if directory or executable:
        return dict(folder_default)
    return {key: perm & 0o6 for key, perm in folder_default.items()}


def hand_over(path: str, uid: int) -> list[str]:
    """Files ``uid`` owns in the shared folder ``path`` become the folder's.

    For a person who left the folder's community: every file, directory
    and link under ``path`` owned by ``uid`` gets the folder's owner and
    group, and the access ACL (directories also the default ACL) that the
    folder gives what is created in it; set-user and set-group bits go.
    Nothing is deleted or moved, and no link is followed (the folder is
    opened component by component, each entry relative to its directory's
    descriptor). A hard link the person keeps elsewhere (in the home) to one
    of these files then gives them nothing: the file is no longer theirs,
    and they no longer have the folder's groups. Returns the paths changed,
    relative to ``path``. Needs root; raises
    :class:`~hubext.nofollow.UnsafePath` for a link on the way to ``path``.
    """
    fd, _ = nofollow.open_dir(path)
    try:
        folder = os.fstat(fd)
        default = nofollow.read_acl(fd, DEFAULT_XATTR)
        changed: list[str] = []
        _hand_over_in(fd, "", uid, folder, default, changed)
        return changed
    finally:
        os.close(fd)


def _give(fd: int, st: os.stat_result, folder, default: Acl, directory: bool) -> None:
    os.fchown(fd, folder.st_uid, folder.st_gid)
    mode = stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID)
    if directory:
        mode |= stat.S_IMODE(folder.st_mode) & stat.S_ISGID
    os.fchmod(fd, mode)
    if default:
        executable = bool(st.st_mode & stat.S_IXUSR)
        acl = _folder_acl(default, directory=directory, executable=executable)
        os.setxattr(fd, ACCESS_XATTR, nofollow.encode_acl(acl))
        if directory:
            os.setxattr(fd, DEFAULT_XATTR, nofollow.encode_acl(default))


def _hand_over_in(dir_fd, where, uid, folder, default, changed) -> None:
    for name in sorted(os.listdir(dir_fd)):
        relative = f"{where}{name}"
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            child = os.open(name, nofollow.DIRECTORY_FLAGS, dir_fd=dir_fd)
            try:
                if os.fstat(child).st_ino != st.st_ino:
                    continue  # replaced meanwhile: not what was checked
                if st.st_uid == uid:
                    _give(child, st, folder, default, directory=True)
                    changed.append(relative + "/")
                _hand_over_in(child, relative + "/", uid, folder, default, changed)
            finally:
                os.close(child)
        elif st.st_uid != uid:
            continue
        elif stat.S_ISREG(st.st_mode):
            child = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
            try:
                if os.fstat(child).st_ino == st.st_ino:
                    _give(child, st, folder, default, directory=False)
                    changed.append(relative)
            finally:
                os.close(child)
        else:
            # a link, a pipe, a socket: its owner only (nothing to read through)
            os.chown(
                name,
                folder.st_uid,
                folder.st_gid,
                dir_fd=dir_fd,
                follow_symlinks=False,
            )
            changed.append(relative)
