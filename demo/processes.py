"""Process bookkeeping for ``make demo``: nothing it started outlives it.

Linux gives a parent two guarantees that plain POSIX does not, and the demo
uses both when it can (elsewhere these functions do nothing):

- a *child subreaper* inherits its orphaned descendants (a server whose hub
  was killed), so it can still find and stop them;
- a *parent-death signal* tells a process that its parent died, even by
  SIGKILL (``make`` killed hard, the demo's own runner killed hard).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Loaded once, at import: ``die_with_parent`` also runs between fork and exec.
_libc_prctl = _load_prctl()


def _prctl(option: int, value: int) -> bool:
    return _libc_prctl is not None and _libc_prctl(option, value, 0, 0, 0) == 0


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants (Linux)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Get ``sig`` when the parent dies (Linux); also usable as a preexec_fn."""
    return _prctl(_PR_SET_PDEATHSIG, int(sig))


def _stat(pid: int) -> tuple[int, str, int] | None:
    """``(parent pid, state, start time)`` of a live process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid -> start time (empty off Linux)."""
    parents: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = _stat(int(entry.name))
            if stat is None or stat[1] == "Z":
                continue
            parents.setdefault(stat[0], []).append(int(entry.name))
            started[int(entry.name)] = stat[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found[child] = started[child]
                todo.append(child)
    return found


def alive(pid: int, start_time: int) -> bool:
    """The same process (not a reused pid) still runs and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[1] != "Z" and stat[2] == start_time


def stop_all(processes: dict[int, int], timeout: float = 5) -> None:
    """SIGTERM, then SIGKILL after ``timeout``, each of ``processes`` still alive."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = {p: t for p, t in processes.items() if alive(p, t)}
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            reap()
            left = {p: t for p, t in left.items() if alive(p, t)}
            time.sleep(0.1)
    reap()


def reap() -> None:
    """Collect exited children, adopted orphans included."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
