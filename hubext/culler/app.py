"""The culler service: ``python -m hubext.culler`` (console script ``hubext-culler``).

A JupyterHub-managed service that stops idle servers with each community's
policy (``culling`` in ``c.Communities.communities``) and a hub-wide default
for everyone else. This module is the service: its options (traits,
aliases, flags), where it gets the communities, its start-up checks and its
loop. One pass is :class:`hubext.culler.engine.CullPass`, built from the
options at each pass.

The communities come from the hub, as data: the hub hands them to the
services registered with :func:`hubext.culler.register` when it starts
(:mod:`hubext.service_data`). On zero-to-jupyterhub the culler may read the
chart's values instead (``--hub-config=values.yaml``, read as YAML). It never
executes the hub's configuration, and needs no secret but its own token.

The idle timeout a community's admins set (within its
``self_service.idle_timeout`` bounds) changes without a restart of the hub
or the culler: each pass reads the communities' delegated state, read-only
(the hub hands the culler its URL, :attr:`Culler.state_db_url`), and a
stored timeout within today's bounds replaces the community's configured
``idle_timeout`` for that pass.

The API token is never logged, nor any piece of it: it is read from the
environment by default, kept out of reprs, sent only to the hub URL
(redirects are not followed), and every log record (of the culler, tornado,
asyncio, with its traceback) is scrubbed of it and of each piece of 8
characters or more (:mod:`hubext.services.redact`). Log lines carry the level
and the time, as JupyterHub's own.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from datetime import UTC, datetime

from prometheus_client import start_http_server
from traitlets import (
    Any,
    Bool,
    Callable,
    Dict,
    Float,
    Integer,
    Unicode,
    default,
    validate,
)
from traitlets.config import catch_config_error

from .. import __version__
from .._validation import ConfigError
from ..communities import Communities, Community
from ..console.store import StateStore
from ..culling import MIN_USER_SECONDS, CullingPolicy, check_duration, policy_for
from ..database import make_engine, password_of, redact
from ..delegated import stored_idle_timeout
from ..self_service import SelfService
from ..service_data import read_communities, read_handover, read_spawner
from ..services.app import HubServiceApplication
from ..services.client import HubAPI, HubAPIError
from ..services.redact import RedactFilter, scrub_and_cut
from .arbiter import check_arbiter
from .engine import CullPass, Pacer, PassResult, PassSettings
from .hub_config import NOT_EXECUTED, is_values_file, load_hub_config
from .metrics import CullerMetrics
from .storage import config_spawner_settings, storage_verdict

__all__ = ["Culler", "Pacer", "PassResult", "RedactFilter", "main", "policies_of"]

#: The scope deleting users needs, on top of the culler's own.
DELETE_USERS_SCOPE = "delete:users"


def utcnow() -> datetime:
    return datetime.now(UTC)


def policies_of(communities: Mapping[str, Community]) -> dict[str, dict]:
    """``{slug: culling settings}`` of the communities that set ``culling``."""
    return {slug: dict(c.culling) for slug, c in communities.items() if c.culling}


def bounds_of(communities: Mapping[str, Community]) -> dict[str, SelfService]:
    """``{slug: self_service}`` of the communities whose admins may set the
    idle timeout."""
    return {
        slug: c.self_service
        for slug, c in communities.items()
        if c.self_service.idle_timeout is not None
    }


class Culler(HubServiceApplication):
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
        "page-size": "Culler.page_size",
        "min-page-size": "Culler.min_page_size",
        "max-page-size": "Culler.max_page_size",
        "page-time": "Culler.page_time",
        "timeout": "Culler.idle_timeout",
        "max-age": "Culler.max_age",
        "cull-users-after": "Culler.cull_users_after",
        "state-db-url": "Culler.state_db_url",
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

    hub_config = Unicode(
        "",
        config=True,
        help="""
        On zero-to-jupyterhub, where to read the communities' ``culling``
        policies and the spawner's storage settings instead of from the hub:
        the chart's values, ``/usr/local/etc/jupyterhub/secret/values.yaml``
        in the hub pod (a ``.yaml``/``.yml`` path; its ``hub.config`` is read
        as YAML, nothing is executed). Empty (the default): the hub hands
        them to the culler when it starts (:mod:`hubext.service_data`);
        register the culler with :func:`hubext.culler.register`.

        A ``jupyterhub_config.py`` is refused: the culler never executes the
        hub's configuration.

        Example (z2jh ``hub.services``, with ``--hub-config`` in its
        ``command``)::

            c.Culler.hub_config = "/usr/local/etc/jupyterhub/secret/values.yaml"

        .. versionchanged:: 0.1
           Python configuration files are no longer executed.
        """,
    )

    @validate("hub_config")
    def _validate_hub_config(self, proposal):
        value = proposal["value"]
        if value and not is_values_file(value):
            raise ConfigError("Culler.hub_config", f"{value!r}: {NOT_EXECUTED}")
        return value

    state_db_url = Unicode(
        "",
        config=True,
        help="""
        The database of the communities' delegated state (``c.Console.db_url``
        as the hub resolves it), read at each pass for the idle timeouts the
        communities' admins set. Empty (the default): the URL the hub hands
        the culler (:func:`hubext.culler.register`). Set it with
        ``hub_config``, where the hub hands nothing; without it, the
        timeouts the admins set are not applied (the culler says so when
        it starts). Read-only; the password is never logged.

        Example::

            c.Culler.state_db_url = "sqlite:////srv/jupyterhub/hubext-state.sqlite"

        .. versionadded:: 0.1
        """,
    ).tag(secret=True)

    cull_arbiter_hook = Callable(
        None,
        allow_none=True,
        config=True,
        help="""
        The last word on each server, after the policy: a callable (or a
        coroutine function) called with keyword arguments ``user`` (the user
        model, with ``groups``), ``server_name`` (``""`` for the default
        server), ``server`` (the server model), ``policy`` (the
        :class:`~hubext.culling.CullingPolicy` that applied), ``decision``
        (the policy's: a :class:`~hubext.culler.decide.Cull`, or None to
        keep the server), ``inactive`` and ``age`` (seconds, or None). It
        returns a ``Cull`` of that server, or None to keep it. Servers left
        alone on doubtful data (pending, not ready, unreadable timestamps)
        never reach it; a hook that raises or returns anything else keeps the
        server (the error is logged and counted). Accept ``**kwargs``: more
        arguments may come. Checked at start-up. See
        :mod:`hubext.culler.arbiter`.

        Example, in the culler's own config file (``--config``)::

            from hubext.culler import Cull

            def arbiter(*, user, server_name, server, decision, inactive, age, **kw):
                if "on-call" in user["groups"]:
                    return None  # never culled
                options = server.get("user_options") or {}
                if options.get("profile") == "gpu" and inactive and inactive > 900:
                    return decision or Cull(
                        user["name"], server_name, "gpu idle", inactive, age
                    )
                return decision

            c.Culler.cull_arbiter_hook = arbiter

        .. versionadded:: 0.1
        """,
    )

    @validate("cull_arbiter_hook")
    def _validate_arbiter(self, proposal):
        check_arbiter(proposal["value"])
        return proposal["value"]

    interval = Float(300, config=True, help="Seconds between passes.")
    concurrency = Integer(10, min=1, config=True, help="Most servers stopped at once.")
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
        min=1,
        config=True,
        help="""
        Users asked for in the first page of each pass's listing (JupyterHub's
        own default page size is 50), and the fewest asked for in any page
        while the pass waits for the listing. With a larger
        :attr:`max_page_size`, the next pages grow while the hub answers
        fast (:attr:`page_time`), never below this. To list in pages of one
        size, set it and :attr:`max_page_size` to it.

        Example::

            c.Culler.page_size = 50

        .. versionchanged:: 0.1
           The first page's size; the next pages' size adapts.
        """,
    )
    min_page_size = Integer(
        10,
        min=1,
        config=True,
        help="""
        Users asked for in a page of the listing while the servers already
        found to stop keep every stop slot (:attr:`concurrency`) busy and
        more wait: the listing is then in no hurry, and its shortest pages
        keep the hub's other requests from waiting behind a long one.

        Example::

            c.Culler.min_page_size = 10

        .. versionadded:: 0.1
        """,
    )
    max_page_size = Integer(
        50,
        min=1,
        config=True,
        help="""
        The most users asked for in a page of the listing, however fast the
        hub answers. Every other request to the hub waits behind the page it
        is answering: 50, JupyterHub's default page size, keeps those waits
        no longer than under any client listing users with the hub's
        defaults. On a hub with many thousands of running servers, more
        (with a larger :attr:`page_time`) lists faster, with fewer
        requests, each longer. The hub answers at most its own
        ``c.JupyterHub.api_page_max_limit`` (200 by default) users a page:
        the culler then lowers this to what the hub gives.

        Example::

            c.Culler.max_page_size = 200
            c.Culler.page_time = 0.06

        .. versionadded:: 0.1
        """,
    )
    page_time = Float(
        0.015,
        config=True,
        help="""
        Seconds of the hub's time that the users of one page of the listing
        may take, on top of what every page costs it, when
        :attr:`max_page_size` leaves room to grow. The hub answers one
        request at a time: every other request (a person's, a server's)
        waits behind the page it is answering. What every page costs (the
        request, counting the running servers) grows with the running
        servers, and no page size makes it smaller; each user in a page adds
        a little more (about 0.3 ms on a quiet hub). Pages grow (at most
        doubling) while users come cheap and come back (at most halving) as
        they get dearer, between :attr:`page_size` and
        :attr:`max_page_size`: 0.015 s is about 50 users on a quiet hub.
        More (with a larger :attr:`max_page_size`): fewer, longer pages, a
        faster listing on a hub with many running servers; less: shorter
        waits for the hub's other requests.

        Example::

            c.Culler.page_time = 0.015

        .. versionadded:: 0.1
        """,
    )

    @validate("page_time")
    def _validate_page_time(self, proposal):
        value = proposal["value"]
        if not value > 0:
            raise ConfigError(
                "Culler.page_time", f"must be more than 0 seconds, got {value!r}"
            )
        return value

    def check_page_sizes(self) -> None:
        """``min_page_size <= page_size <= max_page_size``, or a ConfigError."""
        if self.min_page_size > self.max_page_size:
            raise ConfigError(
                "Culler.min_page_size",
                f"{self.min_page_size} is more than Culler.max_page_size "
                f"({self.max_page_size})",
            )
        if not self.min_page_size <= self.page_size <= self.max_page_size:
            raise ConfigError(
                "Culler.page_size",
                f"{self.page_size} is not between Culler.min_page_size "
                f"({self.min_page_size}) and Culler.max_page_size "
                f"({self.max_page_size})",
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

    policies = Dict(
        help="""
        The communities' policies, ``{slug: culling settings}``: read when
        the service starts (:meth:`load_community_policies`).
        """
    )
    spawner = Dict(
        help="""
        The hub's spawner settings (:func:`hubext.service_data.spawner_settings`),
        read when the service starts, for ``cull_users``' storage check.
        """
    )
    bounds = Dict(
        help="""
        ``{slug: SelfService}`` of the communities whose admins may set the
        idle timeout, read when the service starts (:meth:`load_delegation`).
        """
    )

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

    def load_communities(self, environ=None) -> Mapping[str, Community]:
        """The communities: from :attr:`hub_config` (a values file), else as
        the hub handed them (``environ``, default ``os.environ``)."""
        if self.hub_config:
            config = load_hub_config(self.hub_config)
            return Communities(config=config, log=self.log).registry
        return read_communities(environ)

    def load_spawner_settings(self, environ=None) -> dict:
        """The hub's spawner settings, from the same source as the communities."""
        if self.hub_config:
            return config_spawner_settings(load_hub_config(self.hub_config))
        return read_spawner(environ)

    def load_community_policies(self, environ=None) -> dict:
        """``{slug: culling settings}`` (see :meth:`load_communities`)."""
        return policies_of(self.load_communities(environ))

    def load_delegation(self, environ=None) -> None:
        """The communities whose admins may set the idle timeout
        (:attr:`bounds`), and where their settings are (:attr:`state_db_url`,
        unless configured: the URL the hub handed over)."""
        self.bounds = bounds_of(self.load_communities(environ))
        if self.state_db_url or self.hub_config:
            return
        self.state_db_url = read_handover(environ).state_url or ""

    # -- the idle timeouts the communities' admins set ---------------------------------

    def _state_store(self) -> StateStore:
        store = self.__dict__.get("_state")
        if store is None or str(store.engine.url) != self.state_db_url:
            # no schema change: the hub created it, the culler only reads
            store = self._state = StateStore(make_engine(self.state_db_url))
        return store

    async def current_policies(self) -> dict:
        """The communities' policies for this pass: their ``culling``, with
        the idle timeout their admins stored where today's bounds allow it.

        The delegated state is read once per pass (one query, in a thread).
        When it cannot be read, the last policies read are used (the error
        logged once), else the configured ones.
        """
        if not self.bounds or not self.state_db_url:
            return self.policies
        try:
            documents = await asyncio.to_thread(
                self._state_store().read_many, list(self.bounds)
            )
        except Exception as e:
            if not self.__dict__.get("_state_failing"):
                self._state_failing = True
                self.log.error(
                    "hubext-culler: cannot read the communities' stored settings "
                    "at %s (%s: %s); using the idle timeouts read before, or "
                    "configured, until it can",
                    redact(self.state_db_url),
                    type(e).__name__,
                    scrub_and_cut(
                        str(e).splitlines()[0] if str(e) else "",
                        [self.api_token, password_of(self.state_db_url)],
                        300,
                    ),
                )
            return self.__dict__.get("_last_policies", self.policies)
        self._state_failing = False
        policies = {slug: dict(p) for slug, p in self.policies.items()}
        reported = self.__dict__.setdefault("_reported", set())
        for slug, service in self.bounds.items():
            stored = documents.get(slug)
            if stored is None:
                continue
            seconds, problem = stored_idle_timeout(stored.document, service)
            if problem is not None:
                if (slug, stored.version) not in reported:
                    reported.add((slug, stored.version))
                    self.log.warning(
                        "hubext-culler: %s's %s: not applied", slug, problem
                    )
                continue
            if seconds is not None:
                policies.setdefault(slug, {})["idle_timeout"] = seconds
        last = self.__dict__.get("_last_policies", self.policies)
        for slug in self.bounds:
            now = policies.get(slug, {}).get("idle_timeout")
            if now != last.get(slug, {}).get("idle_timeout"):
                self.log.info(
                    "hubext-culler: %s's idle timeout is now %s",
                    slug,
                    f"{now} s" if now is not None else "the hub-wide default",
                )
        self._last_policies = policies
        return policies

    def policy_of(self, user: dict) -> CullingPolicy:
        """The most generous policy of the user's communities (or the default)."""
        groups = [g for g in user.get("groups") or [] if isinstance(g, str)]
        return policy_for(groups, self.policies, self.default)

    def check_storage(self) -> bool:
        """False if deleting users would delete storage (then the culler stops)."""
        verdict, message = storage_verdict(self.spawner)
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

    @catch_config_error
    def initialize(self, argv=None):
        super().initialize(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
        if self.generate_config:
            return  # prints the options: needs no communities
        try:
            self.policies = self.load_community_policies()
            self.spawner = self.load_spawner_settings()
            self.load_delegation()
        except Exception as e:
            # A culler with the wrong policy is worse than none: stop, and say why.
            self.log.critical(
                "hubext-culler: cannot read the communities%s: %s: %s",
                f" from {self.hub_config}" if self.hub_config else "",
                type(e).__name__,
                scrub_and_cut(str(e), [self.api_token], 400),
            )
            self.exit(1)
        self.default = self.default_policy()
        if self.bounds and not self.state_db_url:
            self.log.warning(
                "hubext-culler: the admins of %s may set their idle timeout, and "
                "the culler does not know where it is stored: set "
                "Culler.state_db_url (--state-db-url) to apply it",
                ", ".join(self.bounds),
            )
        self.check_page_sizes()
        if self.cull_users:
            if not self.check_storage():
                self.exit(1)
            self.log.info(
                "hubext-culler: deleting users with no server after %s s without "
                "activity (hub-wide; communities' culling.cull_users_after apply to "
                "their members), never hub admins%s",
                self.cull_users_after,
                " (dry run)" if self.dry_run else "",
            )

    # -- one pass ---------------------------------------------------------------------

    def settings(self) -> PassSettings:
        return PassSettings(
            concurrency=self.concurrency,
            stop_spacing=self.stop_spacing,
            dry_run=self.dry_run,
            cull_users=self.cull_users,
            page_size=self.page_size,
            min_page_size=self.min_page_size,
            max_page_size=self.max_page_size,
            page_time=self.page_time,
        )

    def cull_pass_engine(self, policies: dict | None = None) -> CullPass:
        """A pass with the service's current options (see :mod:`.engine`),
        and ``policies`` (default: :attr:`policies`)."""
        return CullPass(
            self.settings(),
            self.policies if policies is None else policies,
            self.default,
            now=self.now,
            sleep=self.sleep,
            log=self.log,
            metrics=self.metrics,
            arbiter=self.cull_arbiter_hook,
            secrets=(self.api_token,) if self.api_token else (),
        )

    async def cull_pass(self, api: HubAPI) -> PassResult:
        """Run one pass (see :class:`~hubext.culler.engine.CullPass`) with
        the policies of the moment (:meth:`current_policies`)."""
        policies = await self.current_policies()
        return await self.cull_pass_engine(policies).run(api)

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
