"""What a pass reads: the ready servers (hub REST API) and the ledger's usage.

Blocking ledger reads (:func:`read_usage`, :func:`open_demands`) are run in a
thread by the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import Engine, select

from ..limits import Budget, Demand
from ..usage.model import HUB_ACCOUNT, Resources, sessions
from ..usage.query import budget_usage
from .decide import Line, Server

#: Where the charged community is in a server's ``user_options``.
COMMUNITY_OPTION = "community"


def ready_servers(users: Iterable[dict]) -> list[tuple[str, str, str]]:
    """``(user, server name, community charged)`` of every ready server (not
    pending) in the hub's user models."""
    found = []
    for user in users:
        for name, server in (user.get("servers") or {}).items():
            if not isinstance(server, dict) or not server.get("ready"):
                continue
            if server.get("pending"):
                continue
            options = server.get("user_options") or {}
            community = (
                options.get(COMMUNITY_OPTION) if isinstance(options, dict) else None
            )
            found.append(
                (
                    user["name"],
                    name,
                    community
                    if isinstance(community, str) and community
                    else HUB_ACCOUNT,
                )
            )
    return found


def open_demands(engine: Engine) -> dict[tuple[str, str], Demand]:
    """``{(user, server name): Demand}`` of the ledger's open sessions."""
    t = sessions.c
    query = select(
        t.username,
        t.server_name,
        t.community,
        t.cpu_request,
        t.cpu_limit,
        t.mem_request,
        t.mem_limit,
        t.gpus,
    ).where(t.stopped_at.is_(None))
    demands = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            resources = Resources(
                cpu_request=row.cpu_request,
                cpu_limit=row.cpu_limit,
                mem_request=row.mem_request,
                mem_limit=row.mem_limit,
                gpus=row.gpus or 0,
            )
            demands[(row.username, row.server_name or "")] = Demand(
                row.community,
                row.username,
                cpu=resources.cpu,
                memory=resources.memory,
                gpus=resources.gpus,
            )
    return demands


def servers_with_demands(
    ready: Iterable[tuple[str, str, str]], demands: Mapping[tuple[str, str], Demand]
) -> list[Server]:
    return [
        Server(user, name, community, demands.get((user, name)))
        for user, name, community in ready
    ]


def read_usage(
    engine: Engine, community: str, budget: Budget, now: datetime
) -> dict[str | None, dict[str, float]]:
    """``{None: {unit: hours}, user: {unit: hours}}`` charged to ``community``
    in ``budget``'s window up to ``now`` (open sessions counted to ``now``)."""
    return budget_usage(engine, community, budget.window_start(now), now)


def lines_of(
    community: str,
    budget: Budget,
    usage: Mapping[str | None, Mapping[str, float]],
    members: Iterable[str] = (),
) -> list[Line]:
    """The community's budget lines: its pool, and each member's share for
    the users charged in the window (``usage``) or running a server
    (``members``) (pure)."""
    lines = [
        Line(community, None, unit, amount, usage.get(None, {}).get(unit, 0.0))
        for unit, amount in budget.pool.items()
    ]
    if budget.per_member:
        users = sorted({u for u in usage if u is not None} | set(members))
        for user in users:
            for unit, amount in budget.per_member.items():
                used = usage.get(user, {}).get(unit, 0.0)
                lines.append(Line(community, user, unit, amount, used))
    return lines
