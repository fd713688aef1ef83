"""The culler service: ``python -m hubext.culler`` (console script ``hubext-culler``).

A JupyterHub-managed service that stops idle servers with each community's
policy (``culling`` in ``c.Communities.communities``, read from the hub's own
configuration file) and a hub-wide default for everyone else. Each pass:

1. lists users with a ready server (``state=ready``, paginated): work in
   proportion to running servers, not to all users; with ``cull_users``, also
   the users with no server at all (``state=inactive``);
2. decides per server and per user (:mod:`hubext.culler.decide`) with the
   most generous policy of the user's communities;
3. stops the chosen servers concurrently, at most ``concurrency`` at once and
   started at least ``stop_spacing`` apart;
4. with ``cull_users``, deletes the chosen users the same way, each after
   reading the user again: never a hub admin, never a user with a server.

Errors of a pass are logged and counted; the next pass tries again. The API
token is never logged, nor any piece of it: it is read from the environment
by default, kept out of reprs, sent only to the hub URL (redirects are not
followed), and every log record (of the culler, tornado, asyncio, with its
traceback) is scrubbed of it and of each piece of 8 characters or more
(:mod:`hubext.culler.redact`). Log lines carry the level and the time, as
JupyterHub's own.

A dry run logs what it would do without pacing: ``stop_spacing`` paces real
stops only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from prometheus_client import start_http_server
from traitlets import Any, Bool, Float, Integer, Unicode, default
from traitlets.config import Application, Config

from .. import __version__
from ..communities import Communities
from ..culling import (
    MIN_USER_SECONDS,
    CullingPolicy,
    check_duration,
    policy_for,
)
from .client import HubAPI, HubAPIError
from .decide import Cull, CullUser, Skip, decide, decide_user
from .hub_config import load_hub_config
from .metrics import CullerMetrics
from .redact import RedactFilter, scrub_and_cut
from .storage import storage_check

#: The scope deleting users needs, on top of the culler's own.
DELETE_USERS_SCOPE = "delete:users"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Pacer:
    """Lets actions start in order, at least ``spacing`` seconds apart
    (0: no pacing), waiting with ``sleep`` (an async callable)."""

    def __init__(self, spacing: float, sleep=asyncio.sleep):
        self.spacing = spacing
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._next = 0.0

    async def wait(self) -> None:
        if not self.spacing:
            return
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await self._sleep(delay)
            self._next = loop.time() + self.spacing


@dataclass
class PassResult:
    """What one pass did."""

    culled: list[Cull] = field(default_factory=list)
    stopping: list[Cull] = field(default_factory=list)  # 202: still stopping
    skipped: list[Skip] = field(default_factory=list)
    users_deleted: list[CullUser] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    servers: int = 0
    requests: int = 0
    seconds: float = 0.0
    peak_concurrent_stops: int = 0


class Culler(Application):
    """Stop idle single-user servers, with per-community policy."""

    name = "hubext-culler"
    version = __version__
    description = __doc__

    aliases = {
        "url": "Culler.url",
        "hub-config": "Culler.hub_config",
        "interval": "Culler.interval",
        "concurrency": "Culler.concurrency",
        "stop-spacing": "Culler.stop_spacing",
        "timeout": "Culler.idle_timeout",
        "max-age": "Culler.max_age",
        "cull-users-after": "Culler.cull_users_after",
        "log-level": "Application.log_level",
        "config": "Culler.config_file",
    }
    flags = {
        "dry-run": (
            {"Culler": {"dry_run": True}},
            "Log what would be culled; cull nothing.",
        ),
        "remove-named-servers": (
            {"Culler": {"remove_named_servers": True}},
            "Delete named servers once they are stopped.",
        ),
        "cull-users": (
            {"Culler": {"cull_users": True}},
            "Also delete users inactive for --cull-users-after, with no server "
            "(never hub admins). Needs the delete:users scope.",
        ),
        "once": ({"Culler": {"once": True}}, "Run one pass and exit."),
        "generate-config": (
            {"Culler": {"generate_config": True}},
            "Print a config file with every option and its help, and exit.",
        ),
    }

    generate_config = Bool(False, config=True, help="Print a config file and exit.")

    config_file = Unicode("", config=True, help="A config file for the culler itself.")

    url = Unicode(
        config=True,
        help="""
        The hub's API URL. Default: ``$JUPYTERHUB_API_URL`` (set by JupyterHub
        for its services), else ``http://127.0.0.1:8081/hub/api``.
        """,
    )

    @default("log_level")
    def _log_level_default(self):
        # One line per action and per pass, in the hub's log.
        return logging.INFO

    @default("log_format")
    def _log_format_default(self):
        # JupyterHub's shape (``[I 2026-11-29 10:00:00.123 JupyterHub ...]``):
        # the culler's lines sit in the hub's output, between the hub's own.
        return "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s] %(message)s"

    def get_default_logging_config(self) -> dict:
        """traitlets' logging set-up, plus: every record scrubbed of the token
        (and its pieces), and other libraries' warnings (tornado, asyncio) in
        the same format through the same handler, rather than bare on stderr."""
        config = super().get_default_logging_config()
        console = config.get("handlers", {}).get("console")
        if console is None:  # pythonw: no logging at all
            return config
        config.setdefault("filters", {})["redact"] = {
            "()": RedactFilter,
            "secret": lambda: self.api_token,
        }
        console["filters"] = ["redact"]
        config["loggers"][self.__class__.__name__]["propagate"] = False
        config["root"] = {"level": "WARNING", "handlers": ["console"]}
        return config

    @default("url")
    def _url_default(self):
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    api_token = Unicode(
        config=True,
        help="""
        The service's API token. Default: ``$JUPYTERHUB_API_TOKEN`` (set by
        JupyterHub for its services). Prefer the environment: a token on a
        command line is visible to other users of the machine.
        """,
    ).tag(secret=True)

    @default("api_token")
    def _api_token_default(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    hub_config = Unicode(
        "",
        config=True,
        help="""
        The hub's own configuration, to read the communities' ``culling``
        policies from (the same definitions the hub uses): its
        ``jupyterhub_config.py``, or on zero-to-jupyterhub the chart's
        values, ``/usr/local/etc/jupyterhub/secret/values.yaml`` in the hub
        pod (a ``.yaml``/``.yml`` path; its ``hub.config`` is read without
        executing anything). Empty: the hub-wide default applies to
        everyone.
        """,
    )

    interval = Float(300, config=True, help="Seconds between passes.")
    concurrency = Integer(10, config=True, help="Most servers stopped at once.")
    stop_spacing = Float(
        0.05,
        min=0,
        config=True,
        help="""
        Least seconds between the starts of two stops (0: no pacing).

        Each stop costs the hub some 10-20 ms of its single event loop
        (database commits, token checks), most of it in one piece when the
        server has stopped. Stops started together end together, and the
        hub's other requests queue behind all of them; spaced stops end
        apart. The stop rate is at most ``1 / stop_spacing`` and at most
        ``concurrency`` divided by the time a stop takes.
        """,
    )
    idle_timeout = Integer(
        3600,
        allow_none=True,
        config=True,
        help="Hub-wide default: seconds of inactivity before a server is stopped (None: never).",
    )
    max_age = Integer(
        None,
        allow_none=True,
        config=True,
        help="Hub-wide default: seconds since start before a server is stopped (None: never).",
    )
    cull_named_servers = Bool(
        True, config=True, help="Hub-wide default: cull named servers too."
    )
    remove_named_servers = Bool(
        False, config=True, help="Hub-wide default: delete named servers once stopped."
    )
    cull_users = Bool(
        False,
        config=True,
        help="""
        Also delete users from the hub who have no server at all (none
        running, pending or stopping) and have been inactive for
        ``cull_users_after`` (per community: ``culling.cull_users_after``).
        Hub admins and users who have never been active are never deleted.
        Off by default. Needs the ``delete:users`` scope
        (``register(c, ..., cull_users=True)`` grants it).

        Deleting a user calls the spawner's ``delete_forever()``: the culler
        refuses to start when the hub's configuration shows that this would
        delete storage (KubeSpawner with ``delete_pvc`` True).
        """,
    )
    cull_users_after = Integer(
        90 * 24 * 3600,
        allow_none=True,
        config=True,
        help=f"""
        Hub-wide default: seconds since a user's last activity, with no
        server, before the user is deleted (only with ``cull_users``; at
        least {MIN_USER_SECONDS}; None: never, except for communities that
        set ``culling.cull_users_after``). Default: 90 days.
        """,
    )
    dry_run = Bool(False, config=True, help="Log what would be culled; cull nothing.")
    once = Bool(False, config=True, help="Run one pass and exit.")
    page_size = Integer(
        50,
        config=True,
        help="""
        Users per page when listing. Small pages keep each request short, so
        the hub keeps answering others while a pass lists its users
        (JupyterHub's own default page size is 50).
        """,
    )
    metrics_port = Integer(
        0,
        config=True,
        help="""
        Serve Prometheus metrics on this port (``/metrics``, on
        :attr:`metrics_ip`); 0: off.
        """,
    )
    metrics_ip = Unicode("127.0.0.1", config=True, help="Address for the metrics port.")

    now = Any(
        help="The clock: a callable returning an aware datetime (tests travel in time)."
    )

    @default("now")
    def _now_default(self):
        return utcnow

    sleep = Any(
        help="""
        The sleep: an async callable taking seconds, for pacing stops and
        waiting between passes (tests count the waits instead of waiting).
        """
    )

    @default("sleep")
    def _sleep_default(self):
        return asyncio.sleep

    metrics = Any(help="The culler's Prometheus metrics (CullerMetrics).")

    @default("metrics")
    def _metrics_default(self):
        return CullerMetrics()

    def default_policy(self) -> CullingPolicy:
        # The same checks as a community's culling keys (a ConfigError, a
        # ValueError, naming Culler.<trait>).
        return CullingPolicy(
            idle_timeout=check_duration(self.idle_timeout, "Culler.idle_timeout"),
            max_age=check_duration(self.max_age, "Culler.max_age"),
            cull_named_servers=self.cull_named_servers,
            remove_named_servers=self.remove_named_servers,
            cull_users_after=check_duration(
                self.cull_users_after,
                "Culler.cull_users_after",
                minimum=MIN_USER_SECONDS,
            ),
        )

    def load_hub_config(self) -> Config | None:
        """The hub's own configuration (:attr:`hub_config`); None without one."""
        if not self.hub_config:
            return None
        return load_hub_config(self.hub_config)

    def load_community_policies(self, hub_config: Config | None = None) -> dict:
        """``{slug: culling settings}`` from the hub's configuration."""
        if hub_config is None:
            hub_config = self.load_hub_config()
        if hub_config is None:
            return {}
        communities = Communities(config=hub_config, log=self.log)
        return {c.slug: dict(c.get("culling")) for c in communities if c.get("culling")}

    def policy_of(self, user: dict) -> CullingPolicy:
        """The most generous policy of the user's communities (or the default)."""
        groups = [g for g in user.get("groups") or [] if isinstance(g, str)]
        return policy_for(groups, self.policies, self.default)

    def check_storage(self, hub_config: Config | None) -> bool:
        """False if deleting users would delete storage (then the culler stops)."""
        verdict, message = "unknown", "without --hub-config, the spawner is unknown"
        if hub_config is not None:
            verdict, message = storage_check(hub_config)
        if verdict == "deletes":
            self.log.critical("hubext-culler: will not delete users: %s", message)
            return False
        if verdict == "unknown":
            self.log.warning(
                "hubext-culler: cull_users is on and %s; deleting a user calls the "
                "spawner's delete_forever()",
                message,
            )
        return True

    def initialize(self, argv=None):
        super().initialize(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
        try:
            hub_config = self.load_hub_config()
            self.policies = self.load_community_policies(hub_config)
        except Exception as e:
            # A culler with the wrong policy is worse than none: stop, and say why.
            self.log.critical(
                "hubext-culler: cannot read the communities from %s: %s: %s. The "
                "culler runs with the service environment JupyterHub gives it; pass "
                "any variable your configuration reads in the service's environment.",
                self.hub_config,
                type(e).__name__,
                scrub_and_cut(str(e), [self.api_token], 200),
            )
            self.exit(1)
        self.default = self.default_policy()
        if self.cull_users:
            if not self.check_storage(hub_config):
                self.exit(1)
            self.log.info(
                "hubext-culler: deleting users with no server after %s s without "
                "activity (hub-wide; communities' culling.cull_users_after apply to "
                "their members), never hub admins%s",
                self.cull_users_after,
                " (dry run)" if self.dry_run else "",
            )

    # -- one pass ---------------------------------------------------------------------

    async def cull_pass(self, api: HubAPI) -> PassResult:
        result = PassResult()
        started = time.perf_counter()
        before = api.requests
        try:
            # Users with no server are listed first: a user whose server this
            # pass stops is never deleted in the same pass.
            idle_users = []
            if self.cull_users:
                idle_users = await api.inactive_users(self.page_size)
            users = await api.ready_users(self.page_size)
        except HubAPIError as e:
            result.errors.append(str(e))
            self.log.error(
                "hubext-culler: listing users failed: %s; next pass retries", e
            )
            result.seconds = time.perf_counter() - started
            self.metrics.record(result)
            return result
        now = self.now()
        actions: list[Cull] = []
        for user in users:
            name = user.get("name")
            servers = user.get("servers")
            if not isinstance(name, str) or not isinstance(servers, dict):
                result.errors.append(f"malformed user model {str(name)[:60]!r}")
                continue
            policy = self.policy_of(user)
            for server_name, server in servers.items():
                if not isinstance(server, dict):
                    continue
                result.servers += 1
                verdict = decide(name, server_name, server, policy, now)
                if isinstance(verdict, Skip):
                    result.skipped.append(verdict)
                    self.log.warning(
                        "hubext-culler: leaving %s alone: %s",
                        f"{name}/{server_name}" if server_name else name,
                        verdict.reason,
                    )
                elif isinstance(verdict, Cull):
                    actions.append(verdict)
        doomed: list[CullUser] = []
        for user in idle_users:
            verdict = decide_user(user, self.policy_of(user), now)
            if isinstance(verdict, Skip):
                result.skipped.append(verdict)
                self.log.warning(
                    "hubext-culler: leaving user %s alone: %s",
                    verdict.user,
                    verdict.reason,
                )
            elif isinstance(verdict, CullUser):
                doomed.append(verdict)
        # A dry run stops nothing: nothing to pace.
        pacer = Pacer(0 if self.dry_run else self.stop_spacing, self.sleep)
        await self._stop_all(api, actions, result, pacer)
        await self._run_limited(
            [partial(self._delete_user, api, a, result) for a in doomed], pacer
        )
        result.requests = api.requests - before
        result.seconds = time.perf_counter() - started
        self.metrics.record(result)
        self.log.info(
            "hubext-culler: pass done in %.2f s: %d servers, %d culled, %d stopping, "
            "%d left alone, %d users deleted, %d errors, %d API requests",
            result.seconds,
            result.servers,
            len(result.culled),
            len(result.stopping),
            len(result.skipped),
            len(result.users_deleted),
            len(result.errors),
            result.requests,
        )
        return result

    async def _run_limited(self, jobs, pacer: Pacer) -> None:
        """Run ``jobs`` (async callables) at most ``concurrency`` at once,
        started by ``pacer``."""
        limit = asyncio.Semaphore(max(1, self.concurrency))

        async def run(job):
            async with limit:
                await pacer.wait()
                await job()

        await asyncio.gather(*(run(job) for job in jobs))

    async def _stop_all(
        self, api: HubAPI, actions: list[Cull], result: PassResult, pacer: Pacer
    ) -> None:
        running = 0

        async def stop(action: Cull):
            nonlocal running
            running += 1
            result.peak_concurrent_stops = max(result.peak_concurrent_stops, running)
            try:
                await self._stop(api, action, result)
            finally:
                running -= 1

        await self._run_limited([partial(stop, a) for a in actions], pacer)

    async def _stop(self, api: HubAPI, action: Cull, result: PassResult) -> None:
        what = (
            f"{action.log_name} ({action.reason}: inactive {action.inactive:.0f} s"
            + (f", age {action.age:.0f} s" if action.age is not None else "")
            + (", removing" if action.remove else "")
            + ")"
        )
        if self.dry_run:
            self.log.info("hubext-culler: would cull %s (dry run)", what)
            result.culled.append(action)
            return
        try:
            status = await api.stop_server(action.user, action.server, action.remove)
        except HubAPIError as e:
            result.errors.append(str(e))
            self.log.error("hubext-culler: culling %s failed: %s", what, e)
            return
        if status == 202:
            result.stopping.append(action)
            self.log.info("hubext-culler: culling %s: stopping (slow)", what)
        else:
            result.culled.append(action)
            self.log.info("hubext-culler: culled %s", what)

    async def _delete_user(
        self, api: HubAPI, action: CullUser, result: PassResult
    ) -> None:
        name = action.user
        if self.dry_run:
            self.log.info(
                "hubext-culler: would delete user %s (inactive %.0f s, no server; "
                "dry run)",
                name,
                action.inactive,
            )
            result.users_deleted.append(action)
            return
        try:
            # Read the user again just before: the listing may be minutes old.
            fresh = await api.user(name)
            if fresh is None:
                return  # gone already
            verdict = decide_user(fresh, self.policy_of(fresh), self.now())
            if not isinstance(verdict, CullUser):
                self.log.info(
                    "hubext-culler: keeping user %s: %s",
                    name,
                    verdict.reason
                    if isinstance(verdict, Skip)
                    else "active again, has a server, or is an admin now",
                )
                return
            await api.delete_user(name)
        except HubAPIError as e:
            result.errors.append(str(e))
            self.log.error("hubext-culler: deleting user %s failed: %s", name, e)
            return
        result.users_deleted.append(verdict)
        self.log.info(
            "hubext-culler: deleted user %s (inactive %.0f s, no server)",
            name,
            verdict.inactive,
        )

    # -- the service -------------------------------------------------------------------

    async def check_scopes(self, api: HubAPI) -> bool:
        """With cull_users, False if the token cannot delete users."""
        if not self.cull_users or self.dry_run:
            return True
        try:
            scopes = (await api.whoami()).get("scopes")
        except HubAPIError as e:
            self.log.warning("hubext-culler: cannot read the token's scopes: %s", e)
            return True  # each deletion will say so if it fails
        if isinstance(scopes, list) and DELETE_USERS_SCOPE not in scopes:
            self.log.critical(
                "hubext-culler: cull_users is on but the culler's role lacks the "
                "%s scope; grant it (register(c, ..., cull_users=True)) or turn "
                "cull_users off",
                DELETE_USERS_SCOPE,
            )
            return False
        return True

    async def run(self) -> int:
        """Run passes until stopped (or one, with ``once``); the exit status."""
        api = HubAPI(self.url, self.api_token)
        try:
            if not await self.check_scopes(api):
                return 1
            while True:
                await self.cull_pass(api)
                if self.once:
                    return 0
                await self.sleep(self.interval)
        finally:
            api.close()

    def start(self):
        if self.generate_config:
            print(self.generate_config_file())
            return
        if not self.api_token:
            self.log.critical("hubext-culler: no API token (set JUPYTERHUB_API_TOKEN)")
            self.exit(2)
        if self.metrics_port:
            start_http_server(
                self.metrics_port, self.metrics_ip, registry=self.metrics.registry
            )
        status = asyncio.run(self._run_until_signalled())
        if status:
            self.exit(status)

    async def _run_until_signalled(self) -> int:
        """Run until done, or until SIGTERM/SIGINT (JupyterHub stopping us)."""
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        try:
            return await self.run()
        except asyncio.CancelledError:
            self.log.info("hubext-culler: stopping")
            return 0


main = Culler.launch_instance
