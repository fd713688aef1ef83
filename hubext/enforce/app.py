"""The budget service: ``python -m hubext.enforce``, a JupyterHub-managed service.

Every ``interval`` it lists the ready servers through the hub's REST API
(with its own least-privilege token), reads each budgeted community's usage
in the budget's window from the ledger, and applies :func:`.decide.decide`:
warnings in its log, its metrics and the status file the hub shows as an
announcement to the people concerned (:mod:`.status`); stops through the
REST API (``DELETE /users/:name/server[s/:server]``: a stop, never a
deletion of a user or of data).

The communities (their ``limits``), ``c.UsageLimits.default`` (for
communities without ``limits`` and the hub-wide account) and the ledger's URL
come from the hub as data (:mod:`hubext.service_data`): nothing of the hub's
configuration is executed, and the token is never logged.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from datetime import datetime, timedelta

from prometheus_client import start_http_server
from traitlets import Any, Dict, Integer, Unicode, default
from traitlets.config import catch_config_error

from .._version import __version__
from ..limits import Budget, Limits, account_name, limits_of
from ..service_data import COMMUNITIES_ENV, read_handover
from ..services.app import HubServiceApplication
from ..services.client import HubAPI, HubAPIError
from ..services.redact import scrub_and_cut
from ..usage.model import HUB_ACCOUNT, utcnow
from ..usage.store import make_engine, password_of, redact
from .decide import Decision, Line, Track, decide, spent_message, warning_message
from .metrics import EnforcerMetrics
from .reading import (
    lines_of,
    open_demands,
    read_usage,
    ready_servers,
    servers_with_demands,
)
from .settings import BudgetEnforcement
from .status import read_state, state_to_json, write_status


class BudgetEnforcer(HubServiceApplication):
    """Warn at a share of each community's budget; stop its servers when spent."""

    name = "hubext-budgets"
    version = __version__
    description = __doc__
    classes = [BudgetEnforcement]

    aliases = {"log-level": "Application.log_level"}

    db_url = Unicode(
        help="The ledger's URL, as the hub handed it (never logged whole)."
    ).tag(secret=True)

    page_size = Integer(50, config=True, help="Users per page when listing servers.")

    now = Any(help="The clock: a callable returning an aware datetime (tests travel).")

    @default("now")
    def _now_default(self):
        return utcnow

    settings = Any(help="The BudgetEnforcement settings.")

    @default("settings")
    def _settings_default(self):
        return BudgetEnforcement(parent=self)

    communities = Dict(help="The communities, as the hub handed them.")
    default_limits = Any(help="Limits of communities without their own.")

    @default("default_limits")
    def _default_limits_default(self):
        return Limits()

    metrics = Any(help="EnforcerMetrics")

    @default("metrics")
    def _metrics_default(self):
        return EnforcerMetrics()

    state = Dict(help="What the previous passes remember, by line (decide's state).")
    concurrency = Integer(10, config=True, help="Most servers stopped at once.")
    _engine = None

    def load(self, environ: Mapping[str, str] | None = None) -> None:
        """The communities, the default limits and the ledger's URL, from the
        hub (``environ``, by default this process's)."""
        handed = read_handover(environ)
        self.communities = dict(handed.communities)
        self.default_limits = handed.default_limits
        if not self.db_url:
            self.db_url = handed.ledger_url or ""

    @catch_config_error
    def initialize(self, argv=None):
        super().initialize(argv)
        self.state = {}
        try:
            self.settings = BudgetEnforcement(parent=self)
            self.load()
            # after a restart: no second warning in a window, and the grace
            # periods already running go on
            self.state = read_state(self.settings.status_file)
            if not self.db_url:
                raise ValueError(
                    f"${COMMUNITIES_ENV} names no ledger: the hub keeps none "
                    "(UsageLedger.enabled is False)"
                )
        except Exception as e:
            self.log.critical(
                "hubext-budgets: cannot start: %s: %s",
                type(e).__name__,
                scrub_and_cut(str(e), [self.api_token], 400),
            )
            self.exit(1)

    # -- one pass -------------------------------------------------------------

    def limits_of(self, community: str) -> Limits:
        return limits_of(self.communities, community, self.default_limits)

    def name_of(self, community: str) -> str:
        return account_name(self.communities, community)

    def engine(self):
        if self._engine is None:
            self._engine = make_engine(self.db_url)
        return self._engine

    def _read(self, budgets, ready, now):
        """Blocking: every budget's lines and the servers' demands."""
        engine = self.engine()
        users: dict[str, set[str]] = {}
        for user, _, community in ready:
            users.setdefault(community, set()).add(user)
        lines, concerned = [], {}
        for community, budget in budgets.items():
            usage = read_usage(engine, community, budget, now)
            charged = sorted({u for u in usage if u} | users.get(community, set()))
            concerned[community] = charged
            lines += lines_of(community, budget, usage, users.get(community, ()))
        return lines, concerned, open_demands(engine)

    async def run_pass(self, api: HubAPI) -> Decision:
        now = self.now()
        settings = self.settings
        ready = ready_servers(await api.users("ready", self.page_size))
        communities = [*self.communities, HUB_ACCOUNT]
        communities += sorted({c for _, _, c in ready} - set(communities))
        budgets: dict[str, Budget] = {}
        for community in communities:
            budget = self.limits_of(community).budget
            if budget is not None:
                budgets[community] = budget
        lines, concerned, demands = await asyncio.get_running_loop().run_in_executor(
            None, self._read, budgets, ready, now
        )
        servers = servers_with_demands(ready, demands)
        decision = decide(
            lines,
            budgets,
            servers,
            self.state,
            now=now,
            warn_at=settings.warn_at,
            grace_period=settings.grace_period,
        )
        self.state = decision.state
        await self.act(api, decision, budgets)
        self.write(decision, lines, budgets, concerned, now)
        self.metrics.record(lines, decision, settings.warn_at)
        return decision

    async def act(self, api: HubAPI, decision: Decision, budgets) -> None:
        grace = self.settings.grace_period
        for line in decision.warn:
            self.log.warning(
                "hubext-budgets: %s: %s",
                line.community,
                warning_message(
                    line,
                    self.name_of(line.community),
                    budgets[line.community],
                    grace,
                    self.now(),
                ),
            )
        for line, stop_at in decision.spent:
            self.log.warning(
                "hubext-budgets: %s: %s",
                line.community,
                spent_message(
                    line, self.name_of(line.community), budgets[line.community], stop_at
                ),
            )
        for line in decision.recovered:
            who = f" ({line.member})" if line.member else ""
            self.log.info(
                "hubext-budgets: %s%s: back under %s; nothing will be stopped",
                line.community,
                who,
                line.path,
            )
        limit = asyncio.Semaphore(max(1, self.concurrency))

        async def stop_one(stop) -> None:
            server = stop.server
            shown = f"{server.user}/{server.name}" if server.name else server.user
            async with limit:
                try:
                    await api.stop_server(server.user, server.name)
                except HubAPIError as e:
                    self.metrics.errors.inc()
                    self.log.error("hubext-budgets: cannot stop %s: %s", shown, e)
                    return
            self.metrics.stopped.labels(
                community=stop.line.community, budget=stop.line.path
            ).inc()
            self.log.warning(
                "hubext-budgets: stopped %s, charged to %s: %s spent for %g s",
                shown,
                stop.line.community,
                stop.line.path,
                grace,
            )

        await asyncio.gather(*(stop_one(stop) for stop in decision.stop))

    def status(self, lines: list[Line], budgets, concerned, now: datetime) -> dict:
        """The status file's content (see :mod:`.status`)."""
        grace = self.settings.grace_period
        entries = []
        for line in lines:
            track: Track | None = self.state.get(line.key)
            if track is None or line.ratio < self.settings.warn_at:
                continue
            budget, name = budgets[line.community], self.name_of(line.community)
            if track.spent_since is not None:
                stop_at = track.spent_since + timedelta(seconds=grace)
                state, message = "spent", spent_message(line, name, budget, stop_at)
            else:
                stop_at = None
                state = "warning"
                message = warning_message(line, name, budget, grace, now)
            entries.append(
                {
                    "community": line.community,
                    "name": name,
                    "member": line.member,
                    "unit": line.unit,
                    "key": line.path,
                    "used": round(line.used, 4),
                    "amount": line.amount,
                    "state": state,
                    "stop_at": stop_at.isoformat() if stop_at else None,
                    "users": [line.member]
                    if line.member
                    else concerned.get(line.community, []),
                    "message": message,
                }
            )
        expires = now + timedelta(seconds=3 * self.settings.interval + 60)
        return {
            "updated": now.isoformat(),
            "expires": expires.isoformat(),
            "budgets": entries,
            "state": state_to_json(self.state),
        }

    def write(self, decision, lines, budgets, concerned, now) -> None:
        try:
            write_status(
                self.settings.status_file, self.status(lines, budgets, concerned, now)
            )
        except OSError as e:
            self.metrics.errors.inc()
            self.log.error(
                "hubext-budgets: cannot write %s: %s", self.settings.status_file, e
            )

    # -- the service ------------------------------------------------------------

    async def run(self) -> int:
        api = HubAPI(self.url, self.api_token)
        self.log.info(
            "hubext-budgets: every %g s, warning at %g of a budget, stopping %g s "
            "after it is spent; ledger %s",
            self.settings.interval,
            self.settings.warn_at,
            self.settings.grace_period,
            redact(self.db_url),
        )
        try:
            while True:
                try:
                    await self.run_pass(api)
                except HubAPIError as e:
                    self.metrics.errors.inc()
                    self.log.error("hubext-budgets: pass failed: %s", e)
                except Exception as e:
                    self.metrics.errors.inc()
                    self.log.error(
                        "hubext-budgets: pass failed: %s: %s",
                        type(e).__name__,
                        scrub_and_cut(
                            str(e), [self.api_token, password_of(self.db_url)], 400
                        ),
                    )
                await asyncio.sleep(self.settings.interval)
        finally:
            api.close()

    def start(self):
        if not self.api_token:
            self.log.critical("hubext-budgets: no API token (set JUPYTERHUB_API_TOKEN)")
            self.exit(2)
        if self.settings.metrics_port:
            start_http_server(
                self.settings.metrics_port, "127.0.0.1", registry=self.metrics.registry
            )
        asyncio.run(self._run_until_signalled())

    async def _run_until_signalled(self) -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        try:
            await self.run()
        except asyncio.CancelledError:
            self.log.info("hubext-budgets: stopping")


main = BudgetEnforcer.launch_instance
