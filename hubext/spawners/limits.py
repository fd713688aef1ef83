"""Limits and budgets, enforced in the hub before a server's spawn begins.

One :class:`HubLimits` per hub process keeps every server charged to each
community (running, or reserved by a start in progress) and the budgets'
usage read from the ledger. :meth:`HubLimits.reserve` decides and reserves in
one step with no ``await`` in between, so on the hub's one event loop two
starts can never both take the last place: 200 starts at once against
``max_servers: 10`` start exactly 10. A reservation ends with its server
(stopped, failed, died), or when a start that never began is cleaned up.

:class:`LimitsMixin` gives a spawner the decision, made before JupyterHub's
spawn can answer "pending" (202), so that a refused start is answered with
its 403 whatever the hub's load: in the request for the spawn form
(``options_from_form``), at the first step of the spawn for the REST API
(``pre_spawn_start`` of hubext's authenticator, see
:meth:`~hubext.spawners.options.CommunityOptionsMixin.check_before_spawn`).

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
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from jupyterhub.spawner import SpawnException
from sqlalchemy import Engine
from traitlets import Dict, Float, HasTraits
from traitlets.config import Configurable

from .._validation import ConfigError
from ..communities import ROOT_PATH
from ..config_reading import configured_value
from ..limits import (
    Budget,
    Demand,
    Limits,
    Refusal,
    account_name,
    decide,
    default_limits,
    limits_of,
    summary,
)
from ..profiles import COMMUNITY_OPTION, find_profile
from ..usage.config import UsageLedger
from ..usage.model import HUB_ACCOUNT, Resources, utcnow
from ..usage.query import budget_usage
from ..usage.store import make_engine, password_of
from .options import install_one_line_refusals, refused

#: JupyterHub's ``reason`` of a start refused by a limit (its spawn metrics).
REFUSAL_REASON = "community-limit"

#: Seconds a place reserved by the spawn form is kept for a spawn that has
#: not begun (JupyterHub may refuse to begin it: too many pending spawns).
FORM_HOLD_SECONDS = 30.0


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
    #: a place reserved for a spawn not begun yet: kept until this moment
    #: (``time.monotonic()``); None once its spawn has begun
    until: float | None = None


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

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for key in [k for k, h in self.held.items() if h.until and h.until < now]:
            del self.held[key]

    def running(self, community: str) -> list[Demand]:
        self._forget_expired()
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
        hold_for: float | None = None,
    ) -> Refusal | None:
        """Decide, and hold ``demand`` if it fits (one step: no await).

        ``hold_for``: seconds to keep the place for a spawn that has not
        begun (:meth:`begun` keeps it then for as long as the server runs).
        """
        self._forget_expired()
        others = [
            h.demand
            for k, h in self.held.items()
            if k != key and h.demand.community == demand.community
        ]
        refusal = decide(limits, demand, others, name=name, used=used, now=now)
        if refusal is None:
            until = None if hold_for is None else time.monotonic() + hold_for
            self.held[key] = _Held(demand, now or self.clock(), until)
        return refusal

    def holds(self, key: tuple[str, str], demand: Demand) -> bool:
        """Whether ``key`` holds a place for exactly ``demand`` (and keep it)."""
        self._forget_expired()
        held = self.held.get(key)
        if held is None or held.demand != demand:
            return False
        held.until = None
        return True

    def reserved_not_begun(self, key: tuple[str, str]) -> bool:
        held = self.held.get(key)
        return held is not None and held.until is not None

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
            for user, usage in budget_usage(engine, community, start, now).items():
                for unit, amount in usage.items():
                    hours[(unit, user)] = amount
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


def start_hub_limits(app, communities, log) -> None:
    """At hub start-up: read the budgets' usage, so that no start waits for it.

    ``app`` is the JupyterHub application (anything else: nothing happens).
    """
    try:
        from jupyterhub.app import JupyterHub

        if not isinstance(app, JupyterHub):
            return
        settings = UsageLimits(parent=app)
        default = default_limits(settings.default)
        tracker = hub_limits(
            ledger_url_of(UsageLedger(parent=app), app.db_url), settings, log
        )
        accounts = {HUB_ACCOUNT: default}
        for community in communities:
            accounts[community.slug] = limits_of(communities, community.slug, default)
        warm_budgets(tracker, accounts)
    except Exception:
        log.exception("usage limits: could not read the budgets at start-up")


def warm_budgets(tracker: HubLimits, accounts: dict[str, Limits]) -> None:
    """Read the budgets' usage of ``accounts`` now, in threads (hub start-up).

    Then no start waits for the ledger: a decision reads the kept usage.
    Does nothing outside a running event loop.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    for community, limits in accounts.items():
        if limits.budget is not None:
            task = loop.create_task(tracker.budget_use(community, "", limits.budget))
            _warming.add(task)
            task.add_done_callback(_warming.discard)


#: budget readings begun at start-up (referenced until done)
_warming: set[asyncio.Task] = set()


class LimitsMixin(HasTraits):
    """The community's limits, decided before the server's spawn begins.

    Put it after :class:`~hubext.spawners.usage.UsageRecordingMixin` and
    before :class:`~hubext.spawners.options.CommunityOptionsMixin` among a
    spawner's bases. The decision needs the options validated and the
    resources the server will have:

    - the spawn form: in ``options_from_form``, in the request; the place
      is held for the spawn that follows (:data:`FORM_HOLD_SECONDS` if it
      never begins);
    - every spawn: in :meth:`check_before_spawn` (hubext's authenticator's
      ``pre_spawn_start``), the first step of JupyterHub's spawn;
    - and again in ``apply_user_options`` if the resources changed in
      between (JupyterHub's ``group_overrides``, an override given as a
      callable) or nothing decided before (another authenticator).

    The place is given back when the server stops, dies or fails to
    start, or when JupyterHub clears the spawner's state.
    """

    @classmethod
    def check_limits_config(cls, config, communities) -> None:
        """Start-up checks of ``c.UsageLimits`` against ``c.UsageLedger``."""
        raw = configured_value(UsageLimits, config, "default", {})
        default = default_limits(raw)
        if configured_value(UsageLedger, config, "enabled", True):
            return
        budgets = [("UsageLimits.default.budget", default.budget)] + [
            (
                str(ROOT_PATH[c.slug].attr("limits").attr("budget")),
                c.limits.budget,
            )
            for c in communities
            if c.limits is not None
        ]
        for key, budget in budgets:
            if budget is not None:
                raise ConfigError(
                    key,
                    "a budget is read from the usage ledger, and "
                    "UsageLedger.enabled is False: enable the ledger or remove the budget",
                )

    # -- settings ---------------------------------------------------------------

    @property
    def limits_settings(self) -> UsageLimits:
        try:
            return self._limits_settings
        except AttributeError:
            self._limits_settings = UsageLimits(parent=self)
            return self._limits_settings

    def hub_limits(self) -> HubLimits:
        """The hub's servers held per community (looked up once per spawner)."""
        try:
            return self._hub_limits
        except AttributeError:
            self._hub_limits = hub_limits(
                ledger_url_of(UsageLedger(parent=self), self._hub_db_url()),
                self.limits_settings,
                self.log,
            )
            return self._hub_limits

    def _hub_db_url(self) -> str:
        try:
            return str(self.user.db.get_bind().url)
        except Exception:
            return self.config.JupyterHub.get("db_url", "sqlite:///jupyterhub.sqlite")

    def limits_for(self, community: str) -> Limits:
        """The community's ``limits``, or ``c.UsageLimits.default``."""
        try:
            default = self._default_limits
        except AttributeError:
            # validated at start-up (check_limits_config); parsed once here
            default = self._default_limits = default_limits(
                self.limits_settings.default
            )
        return limits_of(self.communities, community, default)

    def charged_name(self, community: str) -> str:
        return account_name(self.communities, community)

    # -- what a server takes ------------------------------------------------------

    def resources_after(self, overrides) -> Resources | None:
        """The server's resources once ``overrides`` are applied, or None.

        As both spawners apply them: in order, a dict merged into the
        configured dict (``extra_resource_limits``), anything else
        replacing the configured value. None when an override of a
        resource is a callable (known only once applied).
        """
        values = {
            name: getattr(self, name)
            for name in ("cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit")
        }
        extra = dict(getattr(self, "extra_resource_limits", None) or {})
        traits = self.traits()
        for override in overrides:
            for name, value in override.items():
                if name not in values and name != "extra_resource_limits":
                    continue
                if callable(value):
                    return None
                if name in values:
                    values[name] = traits[name].validate(self, value)
                elif isinstance(value, dict):
                    extra.update(value)
                    extra = {k: v for k, v in extra.items() if v is not None}
        return Resources(
            cpu_request=values["cpu_guarantee"],
            cpu_limit=values["cpu_limit"],
            mem_request=values["mem_guarantee"],
            mem_limit=values["mem_limit"],
            gpus=self.gpus_of(extra),
        )

    def planned_resources(self) -> Resources | None:
        """The resources the validated options give, before they are applied.

        None when the options were not validated here (then decided when
        they are applied).
        """
        checked = self.__dict__.get("_hubext_checked")
        if checked is None:
            return None
        options, visible = checked
        if visible is None:  # no profile list
            return self.resources_after(())
        profile = find_profile(visible, options.get("profile"))
        if profile is None:
            return None
        return self.resources_after(self.selected_overrides(profile, options))

    def applied_resources(self) -> Resources:
        """The resources after the options are applied (before ``start()``)."""
        return self.usage_resources()

    def _demand(self, community: str, resources: Resources) -> Demand:
        return Demand(
            community=community,
            user=self.user.name,
            cpu=resources.cpu,
            memory=resources.memory,
            gpus=int(resources.gpus or 0),
        )

    @property
    def _limits_key(self) -> tuple[str, str]:
        return (self.user.name, self.name)

    # -- the decision ---------------------------------------------------------------

    async def hold_place(
        self, options: dict, resources: Resources | None, hold_for: float | None = None
    ) -> None:
        """Hold a place for this server under its community's limits, or refuse (403).

        ``options`` are the validated options (they name the community
        charged); ``resources`` None: not known yet, decided later. A
        place already held for the same server and demand is kept.
        """
        if resources is None:
            return
        community = options.get(COMMUNITY_OPTION) or HUB_ACCOUNT
        demand = self._demand(community, resources)
        tracker = self.hub_limits()
        if tracker.holds(self._limits_key, demand):
            return
        limits = self.limits_for(community)
        used = None
        if limits.budget is not None:
            used = await tracker.budget_use(community, self.user.name, limits.budget)
        name = self.charged_name(community)
        refusal = tracker.reserve(
            self._limits_key, demand, limits, name=name, used=used, hold_for=hold_for
        )
        if refusal is None:
            return
        install_one_line_refusals(self.log)
        self.log.warning(
            "hubext: refusing a server for %s (%s, %s): %s",
            self._log_name,
            community,
            refusal.key,
            refusal.message,
        )
        error = SpawnException(refusal.message, reason=REFUSAL_REASON, status_code=403)
        error.jupyterhub_message = refusal.message
        raise refused(error)

    def release_place(self) -> None:
        try:
            self.hub_limits().release(self._limits_key)
        except Exception:
            self.log.exception("usage limits: could not release %s", self._log_name)

    # -- where it is decided ----------------------------------------------------------

    async def check_form_options(self, options: dict) -> None:
        await super().check_form_options(options)
        # in the request: a refusal is the form's answer, whatever the load
        await self.hold_place(
            options, self.planned_resources(), hold_for=FORM_HOLD_SECONDS
        )

    async def check_before_spawn(self) -> None:
        await super().check_before_spawn()
        await self.hold_place(self.user_options, self.planned_resources())

    async def apply_community_options(self, user_options) -> None:
        await super().apply_community_options(user_options)
        await self.hold_place(self.user_options, self.applied_resources())

    # -- what is left, on the form ------------------------------------------------------

    async def limits_summary(self) -> list[str]:
        """What is left of the limits of the user's communities (for the form)."""
        tracker = self.hub_limits()
        lines = []
        for community in self.member_communities():
            limits = self.limits_for(community)
            if limits.empty:
                continue
            used = None
            if limits.budget is not None:
                used = await tracker.budget_use(
                    community, self.user.name, limits.budget
                )
            lines += summary(
                limits,
                community,
                self.user.name,
                tracker.running(community),
                name=self.charged_name(community),
                used=used,
            )
        return lines

    async def community_options_form(self, spawner=None):
        form = await super().community_options_form(spawner)
        if not form:
            return form
        try:
            lines = await self.limits_summary()
        except Exception:
            self.log.exception("usage limits: cannot show what is left")
            lines = []
        if not lines:
            return form
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        return (
            '<div class="alert alert-info hubext-limits" role="status">'
            f"<ul class='mb-0'>{items}</ul></div>\n{form}"
        )

    # -- the server's life --------------------------------------------------------------

    def kept_demand(self) -> Demand | None:
        """What a server found running after a hub restart takes (from its state)."""
        charge = getattr(self, "_usage_charge", None)
        if not charge:
            return None
        return self._demand(
            charge["community"] or HUB_ACCOUNT, Resources(**charge["resources"])
        )

    async def start(self):
        try:
            return await super().start()
        except BaseException:
            self.release_place()
            raise

    async def poll(self):
        status = await super().poll()
        try:
            tracker = self.hub_limits()
            key = self._limits_key
            if status is not None:
                if not getattr(self, "_spawn_pending", False):
                    tracker.release(key)
            elif key not in tracker.held and not getattr(self, "_spawn_pending", False):
                # a server that outlived the previous hub holds its place
                demand = self.kept_demand()
                if demand is not None:
                    tracker.track(key, demand, utcnow())
        except Exception:
            self.log.exception("usage limits: could not follow %s", self._log_name)
        return status

    async def stop(self, now=False):
        try:
            return await super().stop(now=now)
        finally:
            self.release_place()

    def clear_state(self):
        super().clear_state()
        # JupyterHub clears the state after a stop and as a spawn begins:
        # a place the spawn form reserved for that spawn stays
        if not self.hub_limits().reserved_not_begun(self._limits_key):
            self.release_place()


def ledger_url_of(settings: UsageLedger, hub_db_url: str) -> str | None:
    """The ledger's URL budgets are read from (None: the ledger is off)."""
    return settings.resolved_db_url(hub_db_url) if settings.enabled else None
