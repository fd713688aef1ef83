"""The service's status file, and the hub's announcements read from it.

The service writes, after each pass, a small JSON file (``status_file``)::

    {"updated": "2026-11-29T13:00:00+00:00", "expires": "...",
     "budgets": [{"community": "astro-101", "name": "Astronomy 101",
                  "member": null, "unit": "server_hours", "key": "budget.server_hours",
                  "used": 1.9, "amount": 2.0, "state": "warning" | "spent",
                  "stop_at": null | "...", "users": ["bob"], "message": "..."}],
     "state": [{"community": ..., "member": ..., "unit": ...,
                "warned_at": ..., "spent_since": ...}]}

(``budgets``: only those past ``warn_at`` in their window; ``state``: what
the service remembers, read back when it starts again, so that a restart
neither warns twice in a window nor restarts a grace period). The hub shows each
entry's message to the people concerned, as JupyterHub's announcement on
every page (home and spawn pages included): :class:`Announcements` is a
callable of ``c.JupyterHub.template_vars["announcement"]``, which JupyterHub
calls with the signed-in user. An entry concerns a user when it is theirs
(``member``), when they belong to the community (its group), or when they
are in its ``users`` (the people charged to it in the window: the only way
to know who uses the hub-wide account). A file past ``expires`` (the
service stopped) is ignored.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .decide import Track


def write_status(path: str | Path, status: dict[str, Any]) -> None:
    """Write ``status`` to ``path`` atomically (readers never see half a file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(status, f, separators=(",", ":"))
        os.chmod(tmp, 0o600)  # the hub and its services: one user
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def state_to_json(state: dict) -> list[dict]:
    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return [
        {
            "community": community,
            "member": member,
            "unit": unit,
            "warned_at": moment(track.warned_at),
            "spent_since": moment(track.spent_since),
        }
        for (community, member, unit), track in state.items()
    ]


def state_from_json(items: Any) -> dict:
    """The state written by :func:`state_to_json`; entries that do not read
    are left out (a warning may then be given again)."""
    state = {}
    for item in items if isinstance(items, list) else []:
        try:
            key = (item["community"], item["member"], item["unit"])
            moments = [
                datetime.fromisoformat(item[k]) if item[k] else None
                for k in ("warned_at", "spent_since")
            ]
        except (KeyError, TypeError, ValueError):
            continue
        if all(isinstance(k, str) or k is None for k in key) and all(
            m is None or m.tzinfo is not None for m in moments
        ):
            state[key] = Track(*moments)
    return state


def read_state(path: str | Path) -> dict:
    """The state kept in the status file at ``path``; empty if none."""
    try:
        status = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return state_from_json(status.get("state") if isinstance(status, dict) else None)


def messages_for(
    status: dict[str, Any], user: str, groups: set[str], now: datetime
) -> list[str]:
    """The messages of ``status`` concerning ``user`` (pure)."""
    try:
        expires = datetime.fromisoformat(status["expires"])
    except (KeyError, TypeError, ValueError):
        return []
    if expires < now:
        return []
    messages = []
    for entry in status.get("budgets") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("message"), str):
            continue
        member = entry.get("member")
        if member is not None:
            concerned = member == user
        else:
            concerned = entry.get("community") in groups or user in (
                entry.get("users") or []
            )
        if concerned:
            messages.append(entry["message"])
    return messages


class Announcements:
    """``c.JupyterHub.template_vars["announcement"]``: the budget messages of
    the signed-in user, after any announcement configured before (a string or
    a callable of the user)."""

    def __init__(self, path: str | Path, previous: Any = None):
        self.path = Path(path)
        self.previous = previous
        self._cache: tuple[float, dict] | None = None

    def _status(self) -> dict:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return {}
        if self._cache is None or self._cache[0] != mtime:
            try:
                status = json.loads(self.path.read_text())
            except (OSError, ValueError):
                return {}
            self._cache = (mtime, status if isinstance(status, dict) else {})
        return self._cache[1]

    def __call__(self, user) -> str:
        previous = self.previous(user) if callable(self.previous) else self.previous
        parts = [previous] if previous else []
        if user is not None:
            groups = {g.name for g in getattr(user, "groups", None) or []}
            for message in messages_for(
                self._status(), user.name, groups, datetime.now(UTC)
            ):
                parts.append(
                    '<span class="hubext-budget">' + html.escape(message) + "</span>"
                )
        return "<br>".join(parts)
