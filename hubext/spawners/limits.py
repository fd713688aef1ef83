"""Limits and budgets, enforced in the hub before a server starts.

One :class:`HubLimits` per hub process keeps every server charged to each
community (running, or reserved by a start in progress) and the budgets'
usage read from the ledger. :meth:`HubLimits.reserve` decides and reserves in
one step with no ``await`` in between, so on the hub's one event loop two
starts can never both take the last place: 200 starts at once against
``max_servers: 10`` start exactly 10. A reservation ends with its session
(stopped, failed, died), or when a start that never began is cleaned up.

Budgets: the usage in the budget's window (a calendar month or a rolling
number of days) comes from the ledger (``hubext.usage.query``), read in a
thread at most every ``c.UsageLimits.budget_refresh_interval`` seconds and
kept; in between, what the servers running now have used since the last
read is added from memory. A decision never waits for the database except
the first one for a community after the hub starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from traitlets import Dict, Float
from traitlets.config import Configurable

from .._validation import KeyPath
from ..limits import Budget, Demand, Limits, Refusal, decide, parse_limits
from ..usage.model import sessions, utcnow
from ..usage.query import aggregate_report
from ..usage.store import make_engine, password_of

DEFAULT_PATH = KeyPath("UsageLimits.default")


class UsageLimits(Configurable):
    """Limits for communities without a ``limits`` key, and the budgets' reading."""

    default = Dict(
        config=True,
        help="""
        Limits of every community without its own ``limits`` key, and of
        the hub-wide account (servers no community of their user offers).
        The same keys as a community's ``limits`` (see
        :mod:`hubext.limits`); empty (the default): no limit. Checked when
        the hub starts.

        Example::

            c.UsageLimits.default = {"max_servers_per_member": 1}

        .. versionadded:: 0.1
        """,
    )

    budget_refresh_interval = Float(
        60.0,
        min=1.0,
        config=True,
        help="""
        Seconds between two readings of the ledger for a community's budget.
        In between, the usage of the servers running now is added from
        memory; a server that stopped in between is counted again from the
        next reading, so a budget may be overrun by at most this long.

        Example::

            c.UsageLimits.budget_refresh_interval = 300

        .. versionadded:: 0.1
        """,
    )


@dataclass
class _Held:
    demand: Demand
    since: datetime


@dataclass
class _Reading:
    at: datetime
    monotonic: float
    window_start: datetime
    #: (unit, user or None) -> hours, in the window up to ``at``
    hours: dict[tuple[str, str | None], float]


class HubLimits:
    """Every server charged to each community, and the budgets' usage."""

    def __init__(
        self,
        ledger_url: str | None,
        *,
        refresh_interval: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
        log: logging.Logger | None = None,
        engine: Engine | None = None,
    ):
        self.ledger_url = ledger_url
        self._engine = engine
        self.refresh_interval = refresh_interval
        self.clock = clock
        self.log = log or logging.getLogger("hubext.limits")
        #: (user, server name) -> what it holds
        self.held: dict[tuple[str, str], _Held] = {}
        self._readings: dict[tuple[str, int | None], _Reading] = {}
        self._refreshing: dict[tuple[str, int | None], asyncio.Future] = {}

    # -- servers ------------------------------------------------------------

    def running(self, community: str) -> list[Demand]:
        return [h.demand for h in self.held.values() if h.demand.community == community]

    def reserve(
        self,
        key: tuple[str, str],
        demand: Demand,
        limits: Limits,
        *,
        name: str,
        used=None,
        now: datetime | None = None,
    ) -> Refusal | None:
        """Decide, and hold ``demand`` if it fits (one step: no await)."""
        others = [
            h.demand
            for k, h in self.held.items()
            if k != key and h.demand.community == demand.community
        ]
        refusal = decide(limits, demand, others, name=name, used=used, now=now)
        if refusal is None:
            self.held[key] = _Held(demand, now or self.clock())
        return refusal

    def track(self, key: tuple[str, str], demand: Demand, since: datetime) -> None:
        """Hold a server already running (found again after a hub restart)."""
        self.held[key] = _Held(demand, since)

    def release(self, key: tuple[str, str]) -> None:
        self.held.pop(key, None)

    # -- budgets ------------------------------------------------------------

    def _engine_or_none(self) -> Engine | None:
        if self._engine is None and self.ledger_url:
            self._engine = make_engine(self.ledger_url)
        return self._engine

    def _read(self, community: str, budget: Budget, now: datetime) -> _Reading:
        """Usage of ``community`` in ``budget``'s window up to ``now`` (blocking)."""
        start = budget.window_start(now)
        hours: dict[tuple[str, str | None], float] = {}
        engine = self._engine_or_none()
        if engine is not None:
            report = aggregate_report(
                engine,
                start=start,
                end=now,
                now=now,
                by="user",
                where=sessions.c.community == community,
            )
            for user, usage in [(None, report.total), *report.rows.items()]:
                for unit in ("server_hours", "cpu_hours", "gib_hours", "gpu_hours"):
                    hours[(unit, user)] = getattr(usage, unit)
        return _Reading(now, time.monotonic(), start, hours)

    async def budget_use(
        self, community: str, user: str, budget: Budget
    ) -> dict[tuple[str, bool], float]:
        """``{(unit, per_member): hours}`` used in the budget's window, now."""
        now = self.clock()
        key = (community, budget.days)
        reading = self._readings.get(key)
        stale = (
            reading is None
            or time.monotonic() - reading.monotonic >= self.refresh_interval
            or (
                budget.days is None and reading.window_start != budget.window_start(now)
            )
        )
        if stale:
            future = self._refreshing.get(key)
            if future is None:
                loop = asyncio.get_running_loop()
                future = loop.run_in_executor(None, self._read, community, budget, now)
                self._refreshing[key] = future
                future.add_done_callback(lambda f, key=key: self._store(key, f))
            if reading is None or (
                budget.days is None and reading.window_start != budget.window_start(now)
            ):
                with contextlib.suppress(Exception):  # logged by _store
                    await asyncio.shield(future)
                reading = self._readings.get(key)
        if reading is None:
            return {}
        used: dict[tuple[str, bool], float] = {}
        for per_member, hours in ((False, budget.pool), (True, budget.per_member)):
            for unit in hours:
                total = reading.hours.get((unit, user if per_member else None), 0.0)
                for held in self.held.values():
                    demand = held.demand
                    if demand.community != community:
                        continue
                    if per_member and demand.user != user:
                        continue
                    since = max(held.since, reading.at)
                    seconds = max(0.0, (now - since).total_seconds())
                    total += demand.rate(unit) * seconds / 3600
                used[(unit, per_member)] = total
        return used

    def _store(self, key, future: asyncio.Future) -> None:
        self._refreshing.pop(key, None)
        try:
            self._readings[key] = future.result()
        except Exception as e:
            text = str(e).splitlines()[0][:200] if str(e) else ""
            secret = password_of(self.ledger_url) if self.ledger_url else None
            if secret:
                text = text.replace(secret, "***")
            self.log.warning(
                "usage limits: cannot read the usage of %s from the ledger (%s: %s); "
                "its budget counts only the servers running now until it can",
                key[0],
                type(e).__name__,
                text,
            )


#: The hub process's limits, by ledger URL (one hub, one ledger: one entry).
_hub_limits: dict[str | None, HubLimits] = {}


def hub_limits(ledger_url: str | None, settings: UsageLimits, log) -> HubLimits:
    limits = _hub_limits.get(ledger_url)
    if limits is None:
        limits = _hub_limits[ledger_url] = HubLimits(
            ledger_url, refresh_interval=settings.budget_refresh_interval, log=log
        )
    return limits


def default_limits(settings: UsageLimits) -> Limits:
    return (
        parse_limits(settings.default, DEFAULT_PATH) if settings.default else Limits()
    )
