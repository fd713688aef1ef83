"""A community's software environment, checked on this machine. Blocking.

On ``hubext-local`` the counterpart of a container image is a software
environment: a virtualenv or conda prefix under one of the directories the
operator allows a community's admins to choose from
(``self_service.environments.software_roots``, :mod:`hubext.self_service`).
That a path names a place under a root is checked without I/O
(:func:`hubext.self_service.software_environment_problem`); here, on the
machine, :func:`machine_problem` checks that the environment can run
servers, and says why not:

1. **Its place.** The root's own path is resolved (the operator wrote it);
   below the root, the environment is reached one directory at a time
   without following a link (:func:`hubext.nofollow.open_child`): a link
   there is refused, even one that points inside the root, since whoever
   may write beside the link could point it elsewhere later. No directory
   from ``/`` to the environment, nor the environment itself or its
   ``bin``, may be writable by everyone (anyone could replace what is
   below it; a sticky directory such as ``/tmp`` is fine for an entry
   owned by root or the hub's user). A group may write there: give that
   right only to the people who install the environments, since what is
   there runs as every member who uses it.
2. **Its python.** ``bin/python`` is a file (a link, as in every
   virtualenv, is followed: it names the interpreter the environment was
   made with).
3. **It can run a server.** ``bin/python -I -c "import
   jupyterhub.singleuser"`` is run once, as the identity the servers run as
   (``user``: the person's system user when the spawner runs servers as
   system users; None: the hub's own user, which then runs the servers),
   in ``/``, with no variable of the hub's environment but a plain
   ``PATH``, for at most :data:`CHECK_TIMEOUT` seconds. Running it, rather
   than looking for files, is what tells an environment that works from
   one made for another Python, or missing a dependency of
   ``jupyterhub.singleuser``. The verdict is kept for that identity while
   the environment's directory, its ``bin`` and the interpreter are
   unchanged (device, inode, modification time): installing a package
   into ``bin`` changes ``bin``; after any other change, touch the
   environment's directory to have it checked again.

The first two are checked at every call (a few system calls); the third
costs about a second the first time. Call :func:`machine_problem` in a
thread: the spawner does before each start of a community's environment,
and the console when an admin stores one.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from . import nofollow
from .self_service import EnvironmentBounds, software_environment_problem

#: Longest the import check may run, in seconds.
CHECK_TIMEOUT = 60.0
#: What the environment's python must do.
IMPORT_CHECK = "import jupyterhub.singleuser"
#: Most verdicts kept (then forgotten all at once).
MAX_VERDICTS = 4096

_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Identity:
    """Who the import check runs as (a system user)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def identity_of(username: str) -> Identity:
    """The system user ``username``: ids and groups. KeyError if there is none."""
    entry = pwd.getpwnam(username)
    groups = tuple(os.getgrouplist(username, entry.pw_gid))
    return Identity(username, entry.pw_uid, entry.pw_gid, groups)


def _writable_by_everyone(
    parent: os.stat_result, child: os.stat_result, where: str
) -> str | None:
    """Why everyone could replace ``where`` in its parent, or None."""
    if not parent.st_mode & stat.S_IWOTH:
        return None
    if parent.st_mode & stat.S_ISVTX and child.st_uid in (0, os.geteuid()):
        return None  # sticky: only the entry's owner may replace it
    parent_path = os.path.dirname(where)
    return (
        f"{parent_path} is writable by everyone (mode "
        f"{stat.S_IMODE(parent.st_mode):04o}): anyone could replace {where}"
    )


def _open_environment(root: str, below: str) -> tuple[int, int, str]:
    """Open the environment ``root/below`` and its ``bin``, following no link.

    ``root`` is resolved first (the operator's), ``below`` is walked as
    it is. Returns ``(environment fd, bin fd, the environment's real
    path)``. Raises :class:`~hubext.nofollow.UnsafePath` saying which
    component is at fault.
    """
    real_root = os.path.realpath(root)
    parts = [p for p in real_root.split("/") if p] + below.split("/") + ["bin"]
    fd = os.open("/", _FLAGS)
    info = os.fstat(fd)
    opened: list[int] = []
    where = ""
    try:
        for name in parts:
            where = f"{where}/{name}"
            child, _ = nofollow.open_child(fd, name, where)
            child_info = os.fstat(child)
            problem = _writable_by_everyone(info, child_info, where)
            opened.append(fd)
            fd, info = child, child_info
            if problem:
                raise nofollow.UnsafePath(problem)
        if info.st_mode & stat.S_IWOTH:
            raise nofollow.UnsafePath(
                f"{where} is writable by everyone: anyone could replace its python"
            )
        environment = opened.pop()
        return environment, fd, os.path.dirname(where)
    except BaseException:
        os.close(fd)
        raise
    finally:
        for other in opened:
            os.close(other)


def _python_problem(bin_fd: int, where: str) -> tuple[str | None, tuple]:
    """Why ``bin/python`` is not an interpreter (or None), and its stamp."""
    try:
        info = os.stat("python", dir_fd=bin_fd)  # a link names the interpreter
    except FileNotFoundError:
        return f"{where} has no bin/python", ()
    except OSError as e:
        return f"cannot read {where}/bin/python: {e.strerror}", ()
    if not stat.S_ISREG(info.st_mode):
        return f"{where}/bin/python is not a file", ()
    if not info.st_mode & 0o111:
        return f"{where}/bin/python is not executable", ()
    return None, _stamp(info)


def _stamp(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_dev, info.st_ino, info.st_mtime_ns)


#: The import checks' verdicts: ``{(path, identity, stamps): problem or None}``.
_verdicts: dict[tuple, str | None] = {}
_checking: dict[tuple, threading.Lock] = {}
_guard = threading.Lock()


def _last_line(text: bytes) -> str:
    lines = [line for line in text.decode(errors="replace").splitlines() if line]
    line = lines[-1].strip() if lines else "no message"
    return line if len(line) <= 300 else line[:297] + "..."


def _import_problem(
    python: str, identity: Identity | None, timeout: float
) -> str | None:
    """Run the import check with ``python`` as ``identity``; why it failed, or None."""
    switch = {}
    if identity is not None and identity.uid != os.geteuid():
        switch = {
            "user": identity.uid,
            "group": identity.gid,
            "extra_groups": list(identity.groups),
        }
    environment = os.path.dirname(os.path.dirname(python))
    try:
        done = subprocess.run(
            [python, "-I", "-c", IMPORT_CHECK],
            cwd="/",
            env={
                "PATH": f"{environment}/bin:/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8",
            },
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            close_fds=True,
            check=False,
            **switch,
        )
    except subprocess.TimeoutExpired:
        return f"its python did not import jupyterhub.singleuser within {timeout:g} s"
    except OSError as e:
        return f"its python cannot be run: {e.strerror}"
    if done.returncode != 0:
        return (
            f"its python cannot import jupyterhub.singleuser "
            f"({_last_line(done.stderr)})"
        )
    return None


def _checked_import(
    key: tuple, python: str, identity: Identity | None, timeout: float
) -> str | None:
    """The import check's verdict for ``key``, run once (concurrent callers wait)."""
    with _guard:
        if key in _verdicts:
            return _verdicts[key]
        lock = _checking.setdefault(key, threading.Lock())
    with lock:
        with _guard:
            if key in _verdicts:
                return _verdicts[key]
        verdict = _import_problem(python, identity, timeout)
        with _guard:
            if len(_verdicts) >= MAX_VERDICTS:
                _verdicts.clear()
            _verdicts[key] = verdict
            _checking.pop(key, None)
    return verdict


def machine_problem(
    path: str,
    roots: Sequence[str],
    *,
    user: str | None = None,
    timeout: float = CHECK_TIMEOUT,
) -> str | None:
    """Why the software environment ``path`` cannot run servers here, or None.

    ``roots`` are the community's ``software_roots``; ``user`` the system
    user its servers would run as (None: this process's user, which then
    runs them); ``timeout`` the longest the import check may run. Blocking
    (see the module's doc): call it in a thread.
    """
    problem = software_environment_problem(
        EnvironmentBounds(software_roots=tuple(roots)), path
    )
    if problem is not None:
        return problem
    root = next(r for r in roots if path.startswith(r.rstrip("/") + "/"))
    below = path[len(root.rstrip("/")) + 1 :].rstrip("/")
    identity = None
    if user is not None:
        try:
            identity = identity_of(user)
        except KeyError:
            return f"there is no system user {user!r} to check it as"
        if identity.uid != os.geteuid() and os.geteuid() != 0:
            return f"the hub cannot check it as {user!r}: it does not run as root"
    try:
        environment, bin_fd, real = _open_environment(root, below)
    except nofollow.UnsafePath as e:
        return str(e)
    try:
        problem, python_stamp = _python_problem(bin_fd, real)
        if problem is not None:
            return problem
        stamps = (_stamp(os.fstat(environment)), _stamp(os.fstat(bin_fd)), python_stamp)
    finally:
        os.close(environment)
        os.close(bin_fd)
    key = (real, identity, stamps)
    return _checked_import(key, f"{real}/bin/python", identity, timeout)


def forget_verdicts() -> None:
    """Forget every import check's verdict (each is run again at next use)."""
    with _guard:
        _verdicts.clear()
