"""The culler's arbiter hook: the last word on each server, after the policy.

Like jupyterhub-idle-culler's ``cull_arbiter_hook``, but the hook sees the
user (with their groups) and the policy's decision, and returns a decision::

    def arbiter(*, user, server_name, server, policy, decision, inactive, age, **kwargs):
        ...
        return decision  # a Cull to stop the server, None to keep it

- ``user``: the user model from the hub (``name``, ``groups``, ``admin``,
  ``servers``, ...);
- ``server_name``: ``""`` for the default server;
- ``server``: the server model (``started``, ``last_activity``,
  ``user_options``, ``state`` if the culler's role can read it, ...);
- ``policy``: the :class:`~hubext.culling.CullingPolicy` that applied;
- ``decision``: the policy's decision, a :class:`~hubext.culler.decide.Cull`
  or None (keep);
- ``inactive``, ``age``: seconds since the last activity and since the
  start (None when unknown).

It returns a ``Cull`` of that same server (the policy's, or a new one, e.g.
``Cull(user["name"], server_name, "gpu-idle", inactive, age)``) or None, and
may be a coroutine function. Servers the policy leaves alone on doubtful data
(pending, not ready, unreadable timestamps) never reach the hook. A hook that
raises, or returns anything else, keeps the server; the error is logged and
counted.
"""

from __future__ import annotations

import inspect
from datetime import datetime

from .._validation import ConfigError
from ..services.redact import scrub_and_cut
from .decide import Cull, parse_timestamp

#: The keyword arguments the hook is called with.
HOOK_ARGUMENTS = (
    "user",
    "server_name",
    "server",
    "policy",
    "decision",
    "inactive",
    "age",
)


def check_arbiter(hook, path: str = "Culler.cull_arbiter_hook") -> None:
    """Refuse a hook that cannot be called with :data:`HOOK_ARGUMENTS`."""
    if hook is None:
        return
    if not callable(hook):
        raise ConfigError(path, f"must be callable, got {type(hook).__name__}")
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return  # a builtin or C callable: cannot tell, it will be called as documented
    try:
        signature.bind(**dict.fromkeys(HOOK_ARGUMENTS))
    except TypeError as e:
        raise ConfigError(
            path,
            f"must accept the keyword arguments {', '.join(HOOK_ARGUMENTS)} "
            f"(or **kwargs); {getattr(hook, '__qualname__', hook)!r}{signature}: {e}",
        ) from None


def _seconds(server: dict, now: datetime) -> tuple[float | None, float | None]:
    try:
        started = parse_timestamp(server.get("started"))
        last_activity = parse_timestamp(server.get("last_activity"))
    except ValueError:
        return None, None
    reference = last_activity or started
    inactive = (now - reference).total_seconds() if reference else None
    age = (now - started).total_seconds() if started else None
    return inactive, age


async def arbitrate(
    hook,
    *,
    user: dict,
    server_name: str,
    server: dict,
    policy,
    decision: Cull | None,
    now: datetime,
    log,
    errors: list[str],
    secrets=(),
) -> Cull | None:
    """The hook's decision on one server; None (keep) if the hook fails."""
    name = user["name"]
    log_name = f"{name}/{server_name}" if server_name else name
    inactive, age = _seconds(server, now)
    try:
        verdict = hook(
            user=user,
            server_name=server_name,
            server=server,
            policy=policy,
            decision=decision,
            inactive=inactive,
            age=age,
        )
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except Exception as e:
        problem = f"raised {type(e).__name__}: {scrub_and_cut(str(e), secrets, 200)}"
    else:
        if verdict is None:
            return None
        if (
            isinstance(verdict, Cull)
            and verdict.user == name
            and verdict.server == server_name
        ):
            return verdict
        problem = (
            f"returned {scrub_and_cut(repr(verdict), secrets, 120)}, not None or "
            f"a Cull of {log_name}"
        )
    message = f"cull_arbiter_hook on {log_name} {problem}; keeping it"
    errors.append(message)
    log.error("hubext-culler: %s", message)
    return None
