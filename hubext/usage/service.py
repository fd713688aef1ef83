"""The usage page: ``python -m hubext.usage``, a JupyterHub-managed service.

People sign in through the hub (OAuth, :class:`HubOAuthenticated`, asking
for the scopes they hold: :mod:`hubext.usage.signin`); what each sees is
decided by JupyterHub's scopes on one custom scope
(:mod:`hubext.usage.access`): hub admins every community, a community admin
theirs, a member their own servers. What the hub says about a person is
kept at most :attr:`UsageService.auth_cache_max_age` seconds (60), so a lost
role stops showing a community's usage within a minute. Every answer is
``Cache-Control: private, no-store``. The page reads the ledger with
:func:`hubext.usage.query.aggregate_report` (the numbers of ``hubext usage
report``) and draws the charts on the server (:mod:`hubext.usage.charts`).

The service gets the communities (names, prices) and the ledger's URL as
data from the hub (:mod:`hubext.service_data`), never on its command line
(which JupyterHub logs): a PostgreSQL password is never logged nor shown.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from jupyterhub.utils import url_path_join
from sqlalchemy import and_, or_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.httputil import url_concat
from tornado.ioloop import IOLoop
from traitlets import Integer, TraitError, Unicode, default, validate
from traitlets.config import Application

from ..service_data import USAGE_PAGE_KIND
from .access import USAGE_SCOPE, Access, Filter, access_from_scopes
from .charts import UNITS, bar_chart, buckets, colours, usage_per_bucket
from .model import HUB_ACCOUNT, sessions, utcnow
from .page import BadRequest, PageQuery, parse_query
from .report import Report, format_csv
from .signin import SIGN_IN_PATH

#: The service's kind for :mod:`hubext.service_data`.
SERVICE_KIND = USAGE_PAGE_KIND
#: Where register() points the page by default.
DEFAULT_URL = "http://127.0.0.1:10101"

TEMPLATES = Path(__file__).with_name("templates")
#: Templates for the hub itself: its Services menu shows a service's
#: ``info["display_name"]`` (JupyterHub 6 shows only the service's name).
HUB_TEMPLATES = Path(__file__).with_name("hub_templates")
#: The longest time the page keeps what the hub said about a person.
MAX_AUTH_CACHE_AGE = 60
#: Every answer of the page: usage is private data.
CACHE_CONTROL = "private, no-store"


# -- registration (runs in the hub's configuration) ---------------------------


def register(
    c,
    *,
    name: str = "hubext-usage",
    url: str = DEFAULT_URL,
    display_name: str | None = "Usage",
    args=(),
    environment=None,
) -> None:
    """Run the usage page as a hub-managed service at ``url``.

    In ``jupyterhub_config.py``, after any ``c.UsageLedger.db_url``::

        from hubext.usage import register_page
        register_page(c, url="http://127.0.0.1:10101")

    The page is then at ``/services/hubext-usage/`` and in the hub's
    Services menu, as ``display_name`` ("Usage"; ``None``: as ``name``, and
    the hub's templates are left alone). This call defines the custom scope
    ``custom:hubext-usage:read`` and grants it with ``!user``, and access to
    the page, to every user (``extra_user_scopes``); hubext's authenticator
    then grants it unfiltered to hub admins (role ``hubext-hub-admin``) and
    with ``!group=<slug>`` to community admins (``community-admin-<slug>``),
    and signs people in to the page with the scopes they hold
    (:mod:`hubext.usage.signin`): the page needs hubext's authenticator.

    The hub hands the page the ledger's URL (``c.UsageLedger.db_url``, else
    beside ``c.JupyterHub.db_url``) when it starts, in the service's
    environment, never on its command line. ``args`` are the page's
    (``--UsageService.auth_cache_max_age=30``).
    """
    from ..service_data import SERVICE_ENV
    from .config import UsageLedger

    UsageLedger(config=c)  # a bad UsageLedger.db_url stops the hub now
    env = {**(environment or {}), SERVICE_ENV: SERVICE_KIND}
    service = {
        "name": name,
        "url": url,
        "command": [sys.executable, "-m", "hubext.usage", *args],
        "environment": env,
        # admin-ui: only to show the hub's Admin link to those who may open it
        "oauth_client_allowed_scopes": [USAGE_SCOPE, "admin-ui"],
        # part of the hub: no "authorize this service?" page
        "oauth_no_confirm": True,
    }
    if display_name:
        service["info"] = {"display_name": display_name}
        _add_hub_templates(c)
    c.JupyterHub.services.append(service)
    c.JupyterHub.custom_scopes.update(
        {
            USAGE_SCOPE: {
                "description": "Read usage (server-, CPU-, GiB- and GPU-hours) "
                "on the hubext usage page"
            }
        }
    )
    c.JupyterHub.extra_user_scopes.update(
        {f"{USAGE_SCOPE}!user", f"access:services!service={name}"}
    )


def _add_hub_templates(c) -> None:
    """Put :data:`HUB_TEMPLATES` before JupyterHub's own templates, after the
    admin's: an admin's own ``page.html`` wins (add the Services menu's
    block of ``hub_templates/page.html`` to it)."""
    path = str(HUB_TEMPLATES)
    if "template_paths" in c.JupyterHub and isinstance(
        c.JupyterHub.template_paths, list
    ):
        if path not in c.JupyterHub.template_paths:
            c.JupyterHub.template_paths.append(path)
    else:
        # not set, or appended to: JupyterHub's default comes after these
        c.JupyterHub.template_paths.prepend([path])


# -- reading the ledger -------------------------------------------------------


def filter_clause(access_filter: Filter):
    """The SQL condition of a :class:`Filter` (None: every session)."""
    t = sessions.c
    parts = []
    for clause in access_filter.clauses:
        either = []
        if clause.communities:
            either.append(t.community.in_(sorted(clause.communities)))
        if clause.users:
            either.append(t.username.in_(sorted(clause.users)))
        if not either:
            return t.id.is_(None)  # nothing (the id is never NULL)
        parts.append(or_(*either))
    return and_(*parts) if parts else None


class NoLedger(Exception):
    """No ledger database yet (nothing recorded)."""


class LedgerUnreadable(Exception):
    """The ledger could not be read; the message is safe to show."""


# -- the web service ----------------------------------------------------------


class UsageService(Application):
    """The hubext usage page, a JupyterHub-managed service."""

    name = "hubext-usage"
    description = "The hubext usage page (a JupyterHub service)."

    aliases = {
        "ip": "UsageService.ip",
        "port": "UsageService.port",
        "log-level": "Application.log_level",
    }

    db_url = Unicode(
        config=True,
        help="""
        SQLAlchemy URL of the usage ledger (read only).

        Default: the ledger's URL, as the hub hands it to the page
        (:mod:`hubext.service_data`; the page registered with
        :func:`register`). Do not put a URL with a password on the command
        line (JupyterHub logs a service's command).

        Example::

            c.UsageService.db_url = "sqlite:////srv/jupyterhub/hubext-usage.sqlite"

        .. versionadded:: 0.1
        """,
    )

    ip = Unicode(
        config=True,
        help="""
        The address the page listens on.

        Default: the host of ``$JUPYTERHUB_SERVICE_URL`` (the service's
        ``url``). On zero-to-jupyterhub, where the URL names the hub's
        Kubernetes service, listen on every address::

            c.UsageService.ip = "0.0.0.0"

        .. versionadded:: 0.1
        """,
    )

    @default("ip")
    def _ip_default(self):
        return urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "")).hostname or (
            "127.0.0.1"
        )

    port = Integer(
        config=True,
        help="""
        The port the page listens on. Default: the port of
        ``$JUPYTERHUB_SERVICE_URL``.

        Example::

            c.UsageService.port = 10101

        .. versionadded:: 0.1
        """,
    )

    @default("port")
    def _port_default(self):
        return urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "")).port or 10101

    prefix = Unicode(
        config=True,
        help="""
        The URL prefix the proxy sends to the page. Default:
        ``$JUPYTERHUB_SERVICE_PREFIX`` (``/services/<name>/``).

        .. versionadded:: 0.1
        """,
    )

    @default("prefix")
    def _prefix_default(self):
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/hubext-usage/")
        return prefix if prefix.endswith("/") else prefix + "/"

    auth_cache_max_age = Integer(
        MAX_AUTH_CACHE_AGE,
        config=True,
        help="""
        How long (seconds) the page keeps what the hub said about a signed-in
        person (who they are, their scopes) before asking the hub again.

        A person who loses a role (a community admin no longer admin, a hub
        admin no longer admin) stops seeing what it showed after at most
        this long. At most 60; 0 asks the hub at every request.

        Example::

            register_page(c, args=["--UsageService.auth_cache_max_age=30"])

        .. versionadded:: 0.1
        """,
    )

    @validate("auth_cache_max_age")
    def _auth_cache_max_age_bounded(self, proposal):
        value = proposal.value
        if not 0 <= value <= MAX_AUTH_CACHE_AGE:
            raise TraitError(
                f"UsageService.auth_cache_max_age: must be from 0 to "
                f"{MAX_AUTH_CACHE_AGE} seconds (a lost role must stop showing "
                f"usage within a minute), got {value}"
            )
        return value

    def __init__(self, sockets=(), **kwargs):
        super().__init__(**kwargs)
        #: listening sockets bound before the app was built (or none)
        self.sockets = list(sockets)
        #: the ledger's engine, made at the first request that finds a ledger
        self.engine = None
        self._engine_lock = threading.Lock()
        self.prices = {}

    def initialize(self, argv=None):
        super().initialize(argv)
        from .._validation import ConfigError, errors_of
        from ..service_data import read_handover

        try:
            handed = read_handover()
        except ConfigError as e:
            for error in errors_of(e):
                self.log.critical("hubext-usage: %s", error)
            self.exit(1)
        self.communities = handed.communities
        if not self.db_url:
            self.db_url = handed.ledger_url or ""
        if not self.db_url:
            self.log.critical(
                "hubext-usage: no ledger URL: the hub keeps no usage ledger "
                "(UsageLedger.enabled is False), and UsageService.db_url is not set"
            )
            self.exit(1)
        self.names = {s: c.display_name for s, c in self.communities.items()}
        self.names.setdefault(HUB_ACCOUNT, "Hub-wide account")
        self.prices = {
            slug: community.prices
            for slug, community in self.communities.items()
            if community.prices is not None
        }

    # -- data (run in a thread: the database is blocking) ---------------------

    def _engine(self):
        """The ledger's engine, made at the first request that finds a ledger."""
        from .store import current_revision, make_engine

        with self._engine_lock:
            if self.engine is not None:
                return self.engine
            url = make_url(self.db_url)
            if url.get_backend_name() == "sqlite" and not os.path.isfile(
                url.database or ""
            ):
                raise NoLedger  # never create the file: the hub does
            engine = make_engine(self.db_url, connect_timeout=5)
            if current_revision(engine) is None:
                engine.dispose()
                raise NoLedger
            self.engine = engine
            return engine

    def reports(self, query: PageQuery, access: Access, now: datetime):
        """The table's report, the buckets and each community's usage in each."""
        from .query import aggregate_report, overlapping_spans
        from .store import password_of, redact

        where = filter_clause(access.filter(query.community))
        prices = self.prices or None
        try:
            engine = self._engine()
            table = aggregate_report(
                engine,
                start=query.start,
                end=query.end,
                now=now,
                by=query.by,
                prices=prices,
                where=where,
            )
            periods = buckets(query.first, query.last, query.step)
            series = usage_per_bucket(
                overlapping_spans(engine, query.start, query.end, where=where),
                periods,
                now,
            )
        except SQLAlchemyError as e:
            cause = getattr(e, "orig", None) or e
            text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            secret = password_of(self.db_url)
            if secret:
                text = text.replace(secret, "***")
            self.log.error(
                "hubext-usage: cannot read %s: %s: %s",
                redact(self.db_url),
                type(cause).__name__,
                text,
            )
            raise LedgerUnreadable(
                "the usage ledger cannot be read right now; the hub's "
                "administrators will find why in the service's log"
            ) from None
        return table, periods, series

    # -- running --------------------------------------------------------------

    def make_hub_auth(self) -> HubOAuth:
        """The page's link to the hub (from the service's environment): what
        the hub says of a token kept :attr:`auth_cache_max_age` seconds,
        sign-in through :mod:`hubext.usage.signin`."""
        auth = HubOAuth(parent=self, cache_max_age=self.auth_cache_max_age)
        auth.login_url = url_concat(
            auth.hub_host + url_path_join(auth.hub_prefix, SIGN_IN_PATH),
            {
                "client_id": auth.oauth_client_id,
                "redirect_uri": auth.oauth_redirect_uri,
                "response_type": "code",
            },
        )
        return auth

    def make_app(self) -> web.Application:
        self.hub_auth = self.make_hub_auth()
        self.hub_links = HubLinks.under(self.hub_auth.hub_prefix)
        settings = {
            "template_path": str(TEMPLATES),
            # signs the OAuth state and token cookies; a new one at each start
            # only means signing in again
            "cookie_secret": os.urandom(32),
        }
        return web.Application(
            [
                (self.prefix, PageHandler, {"service": self}),
                (
                    url_path_join(self.prefix, "usage.csv"),
                    CsvHandler,
                    {"service": self},
                ),
                (
                    url_path_join(self.prefix, "oauth_callback"),
                    CallbackHandler,
                    {"service": self},
                ),
            ],
            **settings,
        )

    def start(self):
        from .store import redact

        server = HTTPServer(self.make_app(), xheaders=True)
        if self.sockets:
            server.add_sockets(self.sockets)
        else:
            server.listen(self.port, self.ip)
        self.log.info(
            "hubext-usage: page at http://%s:%s%s, ledger %s",
            self.ip,
            self.port,
            self.prefix,
            redact(self.db_url),
        )
        loop = IOLoop.current()

        def stop(signum, frame):
            self.log.info("hubext-usage: stopping")
            loop.add_callback_from_signal(loop.stop)

        # JupyterHub stops a service with SIGINT, then SIGTERM
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
        loop.start()


# -- handlers -----------------------------------------------------------------


@dataclass(frozen=True)
class HubLinks:
    """The hub's pages the page's navigation bar links to, as JupyterHub's own
    pages do, under the hub's prefix (``$JUPYTERHUB_BASE_URL`` + ``hub/``)."""

    home: str
    token: str
    admin: str
    logout: str
    logo: str
    stylesheet: str
    favicon: str

    @classmethod
    def under(cls, hub_prefix: str) -> HubLinks:
        prefix = hub_prefix if hub_prefix.endswith("/") else hub_prefix + "/"
        return cls(
            home=prefix + "home",
            token=prefix + "token",
            admin=prefix + "admin",
            logout=prefix + "logout",
            logo=prefix + "logo",
            stylesheet=prefix + "static/css/style.min.css",
            favicon=prefix + "static/favicon.ico",
        )


class CallbackHandler(HubOAuthCallbackHandler):
    """JupyterHub's OAuth callback, with the page's link to the hub."""

    def initialize(self, service: UsageService):
        self.hub_auth = service.hub_auth

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header("Cache-Control", CACHE_CONTROL)


class _UsageHandler(HubOAuthenticated, web.RequestHandler):
    def initialize(self, service: UsageService):
        self.service = service
        self.hub_auth = service.hub_auth

    def set_default_headers(self):
        # usage is private: no shared cache keeps it, no cache at all
        # (set again after an error clears the headers)
        self.set_header("Cache-Control", CACHE_CONTROL)

    def navigation(self) -> dict:
        """What the navigation bar shows (templates/base.html)."""
        # the person, if the hub identified them before an error
        user = getattr(self, "_current_user", None) or {}
        return {
            "hub": self.service.hub_links,
            "user": user.get("name"),
            "admin": "admin-ui" in user.get("scopes", ()),
        }

    def write_error(self, status_code, **kwargs):
        error = kwargs.get("exc_info", (None, None, None))[1]
        message = None
        if isinstance(error, web.HTTPError):
            message = error.get_message()
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.render(
            "error.html",
            status=status_code,
            message=message or self._reason,
            nav=self.navigation(),
        )

    def access(self) -> Access:
        access = access_from_scopes(self.current_user.get("scopes", []))
        if not access.anything:
            raise web.HTTPError(
                403,
                f"{self.current_user.get('name')} may not read usage on this hub "
                f"(no {USAGE_SCOPE} scope)",
            )
        return access

    def query(self) -> PageQuery:
        args = {}
        for name, values in self.request.query_arguments.items():
            if len(values) > 1:
                raise web.HTTPError(400, f"{name[:40]!r} given more than once")
            args[name] = values[0].decode("utf-8", "replace")
        try:
            return parse_query(args, utcnow().date())
        except BadRequest as e:
            raise web.HTTPError(400, str(e)) from None

    async def load(self):
        access = self.access()
        query = self.query()
        now = utcnow()
        try:
            table, periods, series = await asyncio.to_thread(
                self.service.reports, query, access, now
            )
        except NoLedger:
            table, periods, series = None, [], {}
        except LedgerUnreadable as e:
            raise web.HTTPError(503, str(e)) from None
        return access, query, now, table, periods, series


class CsvHandler(_UsageHandler):
    """The table as CSV: ``hubext usage report --format csv``, filtered."""

    @web.authenticated
    async def get(self):
        _, query, _, table, _, _ = await self.load()
        if table is None:
            table = Report(
                by=query.by,
                start=query.start,
                end=query.end,
                now=utcnow(),
                open_until="now",
                priced=bool(self.service.prices),
            )
        name = f"hubext-usage-{query.first}-{query.last}-by-{query.by}.csv"
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(format_csv(table) + "\n")


def _scope_text(access: Access, names) -> str:
    if access.everything:
        return "every community (you are a hub admin)"
    parts = [f"{names.get(slug, slug)} ({slug})" for slug in sorted(access.communities)]
    if access.users:
        parts.append("your own servers")
    return ", ".join(parts)


class PageHandler(_UsageHandler):
    """The page: the form, the charts and the table."""

    @web.authenticated
    async def get(self):
        access, query, now, table, periods, series = await self.load()
        names = self.service.names
        communities = list(series)
        colour_of = colours(communities)
        labels = [bucket.label for bucket in periods]
        charts = [
            bar_chart(title, unit, labels, series, colour_of, names)
            for unit, title in UNITS
        ]
        choices = sorted(
            set(self.service.communities) | set(communities) | {HUB_ACCOUNT}
            if access.everything
            else set(access.communities) | set(communities)
        )
        self.render(
            "page.html",
            nav=self.navigation(),
            user=self.current_user["name"],
            sees=_scope_text(access, names),
            query=query,
            now=now,
            table=table,
            names=names,
            charts=charts,
            colour_of=colour_of,
            choices=choices,
            csv_url="usage.csv?" + urlencode(query.as_query()),
            # the report command reads the whole ledger: for those who see it all
            command=(
                query.command(bool(self.service.prices)) if access.everything else None
            ),
            hub_account=HUB_ACCOUNT,
        )


def main(argv=None, sockets=None):
    """Run the page (``sockets``: already bound, see ``hubext/usage/__main__.py``)."""
    UsageService.launch_instance(argv, sockets=sockets or [])
