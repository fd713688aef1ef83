"""Budgets while servers run: the decision (pure, no I/O).

Each pass of the service (:mod:`hubext.enforce.app`) turns the ledger's
usage into :class:`Line`\\ s, one per budget amount (a community's pool, or
one member's share) and unit, and calls :func:`decide` with the servers
running now and the state kept from the previous passes. :func:`decide`
says whom to warn, which budgets were found spent, which recovered, and
which servers to stop:

- at ``warn_at`` of an amount, warn once per window: a line warned at
  ``t`` is warned again only once ``t`` has left the budget's window (the
  next calendar month, or ``days`` later for a rolling window);
- when it is spent (used >= amount, as the hub's start check counts it),
  note the moment and tell the users concerned when their servers stop;
- ``grace_period`` seconds after that moment, stop the servers charged to
  the community (for a pool) or that member's servers charged to it (for a
  per-member amount), only those that use the unit (a GPU-hour budget stops
  GPU servers);
- if usage falls back under the amount before then (a rolling window
  forgetting old usage), the countdown is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .._validation import plural
from ..limits import (
    UNIT_WORDS,
    Budget,
    Demand,
    amount_used,
    hours_of,
    sentence_start,
)


@dataclass(frozen=True)
class Line:
    """One budget amount and its use in the window, in hours."""

    community: str
    #: None: the community's pool; else the member's own share
    member: str | None
    unit: str
    amount: float
    used: float

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.community, self.member, self.unit)

    @property
    def path(self) -> str:
        """The amount's key inside ``limits`` (``budget.per_member.gpu_hours``)."""
        return (
            f"budget.per_member.{self.unit}" if self.member else f"budget.{self.unit}"
        )

    @property
    def ratio(self) -> float:
        return self.used / self.amount if self.amount else float("inf")

    @property
    def spent(self) -> bool:
        return self.used >= self.amount


@dataclass(frozen=True)
class Server:
    """A ready server, the community it is charged to and what it requests."""

    user: str
    name: str  # "" for the default server
    community: str  # a slug, or the hub-wide account
    #: its requests (from the ledger); None if unknown: then it counts only
    #: for server-hours
    demand: Demand | None = None

    def uses(self, unit: str) -> bool:
        if unit == "server_hours":
            return True
        return self.demand is not None and self.demand.rate(unit) > 0


@dataclass(frozen=True)
class Track:
    """What a pass remembers of a line."""

    warned_at: datetime | None = None
    #: when it was found spent (the grace period counts from there)
    spent_since: datetime | None = None


@dataclass(frozen=True)
class Stop:
    server: Server
    line: Line


@dataclass
class Decision:
    warn: list[Line] = field(default_factory=list)
    #: found spent at this pass: (line, when its servers are stopped)
    spent: list[tuple[Line, datetime]] = field(default_factory=list)
    recovered: list[Line] = field(default_factory=list)
    stop: list[Stop] = field(default_factory=list)
    state: dict[tuple[str, str | None, str], Track] = field(default_factory=dict)


def decide(
    lines: Iterable[Line],
    budgets: Mapping[str, Budget],
    servers: Iterable[Server],
    state: Mapping[tuple[str, str | None, str], Track],
    *,
    now: datetime,
    warn_at: float,
    grace_period: float,
) -> Decision:
    """What to do at ``now`` (see the module's doc). ``budgets[community]``
    is the budget of each line's community; ``state`` is the previous
    decision's (not changed)."""
    servers = list(servers)
    grace = timedelta(seconds=grace_period)
    decision = Decision()
    stopping: set[tuple[str, str]] = set()
    seen = set()
    for line in lines:
        seen.add(line.key)
        track = state.get(line.key, Track())
        window_start = budgets[line.community].window_start(now)
        if line.ratio >= warn_at and (
            track.warned_at is None or track.warned_at < window_start
        ):
            decision.warn.append(line)
            track = replace(track, warned_at=now)
        if line.spent:
            if track.spent_since is None:
                track = replace(track, spent_since=now)
                decision.spent.append((line, now + grace))
            if now - track.spent_since >= grace:
                for server in servers:
                    if (
                        server.community == line.community
                        and (line.member is None or server.user == line.member)
                        and server.uses(line.unit)
                        and (server.user, server.name) not in stopping
                    ):
                        stopping.add((server.user, server.name))
                        decision.stop.append(Stop(server, line))
        elif track.spent_since is not None:
            decision.recovered.append(line)
            track = replace(track, spent_since=None)
        if track.spent_since is not None or (
            track.warned_at is not None and track.warned_at >= window_start
        ):
            decision.state[line.key] = track
    for key, track in state.items():
        # no usage left in the window (nor a server): recovered
        if key not in seen and track.spent_since is not None:
            decision.recovered.append(Line(key[0], key[1], key[2], 0.0, 0.0))
    return decision


# -- words --------------------------------------------------------------------


def _used(line: Line, name: str, budget: Budget) -> str:
    if line.member is None:
        return (
            f"{sentence_start(name)} has used {amount_used(line.used, line.amount)} "
            f"of its {hours_of(line.amount, line.unit)} {budget.period_words()} "
            f"({line.path})"
        )
    return (
        f"{line.member} has used {amount_used(line.used, line.amount)} of their "
        f"{hours_of(line.amount, line.unit)} of {name}'s budget "
        f"{budget.period_words()} ({line.path})"
    )


def _whose(line: Line, name: str) -> str:
    what = "" if line.unit == "server_hours" else f" using {UNIT_WORDS[line.unit]}"
    if line.member is None:
        return f"the servers charged to {name}{what}"
    return f"{line.member}'s servers charged to {name}{what}"


def warning_message(
    line: Line, name: str, budget: Budget, grace_period: float, now: datetime
) -> str:
    """The warning at ``warn_at`` of ``line`` (also a spent line's first word)."""
    minutes = f"{grace_period / 60:g} {plural(grace_period / 60, 'minute')}"
    return (
        f"{_used(line, name, budget)}. When it is spent, {_whose(line, name)} "
        f"are stopped {minutes} later (your files are kept)."
    )


def spent_message(line: Line, name: str, budget: Budget, stop_at: datetime) -> str:
    """A spent line: when the servers stop, and when the budget renews."""
    return (
        f"{_used(line, name, budget)}: the budget is spent. "
        f"{_whose(line, name)[0].upper()}{_whose(line, name)[1:]} are stopped at "
        f"{stop_at:%Y-%m-%d %H:%M} UTC; save your work (your files are kept). "
        f"{budget.renews(stop_at)}"
    )
