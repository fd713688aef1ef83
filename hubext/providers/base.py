"""What every provider adapter shares: name, URLs, handlers, outage handling."""

from __future__ import annotations

import asyncio
import contextvars
import time
from urllib.parse import urlunsplit

from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Callable, Float, HasTraits, Integer, Unicode, default

from .._validation import show
from ..accounts import AUTH_STATE_KEY, Binding
from ..handlers import remember_refusal
from ..identity import Identity

#: Transient provider failures seen in the current task (see ``transient_failures``).
_failures: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "hubext_provider_failures", default=None
)


class ProviderUnavailable(Exception):
    """The provider failed in a way that says nothing about the person.

    A 5xx answer, a timeout or a refused connection, or a rate limit (429, or
    GitHub's 403 with ``X-RateLimit-Remaining: 0``). Never carries a token.
    """

    def __init__(self, provider: str, reason: str, retry_after: float | None = None):
        self.provider = provider
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(f"provider {provider} unavailable: {reason}")


class transient_failures:
    """Collect the transient failures of provider requests made inside the block.

    OAuthenticator's ``refresh_user`` turns any failure of a token refresh
    into "log in again"; this lets the caller tell an outage from a revoked
    token afterwards.
    """

    def __enter__(self) -> list[ProviderUnavailable]:
        self.failures: list[ProviderUnavailable] = []
        self._token = _failures.set(self.failures)
        return self.failures

    def __exit__(self, *exc):
        _failures.reset(self._token)


def _retry_after(response) -> float | None:
    if response is None:
        return None
    headers = response.headers
    value = headers.get("Retry-After")
    if value and value.isdigit():
        return float(value)
    reset = headers.get("X-RateLimit-Reset")
    if headers.get("X-RateLimit-Remaining") == "0" and reset and reset.isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def classify_failure(error: Exception) -> str | None:
    """Why ``error`` is a transient provider failure, or None if it is not."""
    if isinstance(error, HTTPClientError):
        code, response = error.code, error.response
        if code == 599:
            return "no answer (timeout or connection error)"
        if code >= 500:
            return f"HTTP {code}"
        if code == 429:
            return "rate limited (HTTP 429)"
        if code == 403 and response is not None:
            body = (response.body or b"")[:2000].decode("utf8", "replace").lower()
            if (
                response.headers.get("X-RateLimit-Remaining") == "0"
                or "rate limit" in body
            ):
                return "rate limited (HTTP 403)"
        return None
    if isinstance(error, (OSError, asyncio.TimeoutError)):
        return f"no answer ({type(error).__name__})"
    return None


class RefusingCallbackMixin:
    """OAuth callback that sends a refused sign-in to the refusal page.

    The callback URL cannot be reloaded (its state cookie is used up), so a
    refusal redirects to ``/hub/hubext/refused``, which shows the reason and
    can be reloaded (:mod:`hubext.handlers`).
    """

    hubext_refusal: str | None = None

    async def get(self):
        self.check_arguments()
        try:
            user = await self.login_user()
        except web.HTTPError as e:
            if e.status_code != 403:
                raise
            self.hubext_refusal = e.log_message % e.args if e.args else e.log_message
            user = None
        if user is None:
            message = self.hubext_refusal or self.authenticator.custom_403_message
            remember_refusal(self, message, self.hubext_provider.provider_name)
            self.redirect(url_path_join(self.hub.base_url, "hubext/refused"))
            return
        self.redirect(self.get_next_url(user))


class ProviderMixin(HasTraits):
    """Mixed into an OAuthenticator subclass to run it as one of several providers.

    The owning :class:`~hubext.authenticator.CommunityAuthenticator` creates
    the adapter with ``parent=`` itself and sets :attr:`provider_name`.
    """

    provider_name = Unicode(
        help="The provider's name: its key in CommunityAuthenticator.providers."
    )

    username_template = Unicode(
        "{username}@{provider}",
        help="""
        The hub username of this provider's users: ``{username}`` is the
        provider's username, ``{provider}`` the provider's name. Set from the
        provider's ``username_template`` in
        ``CommunityAuthenticator.providers`` (validated there).
        """,
    )

    def hub_username(self, auth_model: dict) -> str:
        """The hub username (before normalization) of a finished auth model."""
        return self.username_template.format(
            username=auth_model["name"], provider=self.provider_name
        )

    outage_backoff = Float(
        60,
        config=True,
        help="""
        Seconds to leave the provider alone after it failed transiently (5xx,
        timeout, rate limit) while refreshing a user; doubled after each
        further failure, up to :attr:`outage_backoff_max`. In that time,
        refreshes keep everyone's last known communities without calling the
        provider. A ``Retry-After`` or rate-limit reset from the provider is
        honoured when it is longer.
        """,
    )

    request_timeout = Float(
        5,
        config=True,
        help="""
        Seconds one request to the provider may take in all (token exchange,
        user info, GitHub listings), before it counts as the provider not
        answering (a 503 page at sign-in; memberships kept and the provider
        left alone for :attr:`outage_backoff` at refresh). Tornado's default
        is 20 s, which holds a person's request that long when a provider
        hangs. A ``request_timeout`` in ``http_request_kwargs`` takes
        precedence.

        .. versionadded:: 0.1
        """,
    )

    connect_timeout = Float(
        3,
        config=True,
        help="""
        Seconds to wait for a connection to the provider (part of
        :attr:`request_timeout`). A ``connect_timeout`` in
        ``http_request_kwargs`` takes precedence.

        .. versionadded:: 0.1
        """,
    )

    max_concurrent_requests = Integer(
        100,
        min=1,
        config=True,
        help="""
        Requests to the provider that may be under way at once (token
        exchanges, user info, GitHub listings, refreshes); more wait for a
        free slot, for at most :attr:`connect_timeout`.

        Each provider has an HTTP client of its own with this many slots.
        Without it, the provider's requests would share the hub's one client,
        which runs 10 requests at a time (Tornado's default) and also carries
        the hub's calls to the proxy: in a sign-in storm, people's requests
        waited for a slot longer than :attr:`connect_timeout` and their
        sign-in failed as if the provider were down, and the hub's own calls
        waited behind them.

        Example::

            c.CommunityAuthenticator.providers["uni"]["config"]["max_concurrent_requests"] = 200

        .. versionadded:: 0.1
        """,
    )

    @default("http_client")
    def _http_client_default(self):
        # Made at the first request, on the hub's event loop.
        return AsyncHTTPClient(
            force_instance=True, max_clients=self.max_concurrent_requests
        )

    end_session_url = Unicode(
        "",
        config=True,
        help="""
        The provider's end-session endpoint (OpenID Connect RP-initiated
        logout, ``end_session_endpoint`` in its discovery document). When
        set, signing out of the hub also signs out of the provider, so the
        next sign-in can be another account; the provider sends the person
        back to the hub's login page (register ``https://<hub>/hub/login``
        as a post-logout redirect URI). Empty: the provider's session stays.

        Example::

            c.CommunityAuthenticator.providers["uni"]["config"]["end_session_url"] = (
                "https://login.uni.example/session/end"
            )

        .. versionadded:: 0.1
        """,
    )

    outage_backoff_max = Float(
        1800,
        config=True,
        help="Longest wait between two tries of a provider that keeps failing.",
    )

    outage_clock = Callable(
        config=True,
        help="""
        The clock of the outage back-off: a callable without arguments
        returning seconds, like :func:`time.monotonic` (the default). Only
        differences between two of its readings count. Tests set a clock
        they can move forward, to end a back-off without waiting it out.

        Example::

            c.CommunityAuthenticator.providers["uni"]["config"]["outage_clock"] = (
                time.monotonic
            )

        .. versionadded:: 0.1
        """,
    )

    @default("outage_clock")
    def _outage_clock_default(self):
        return time.monotonic

    _unavailable_until = 0.0
    _consecutive_failures = 0

    async def update_auth_model(self, auth_model):
        """OAuthenticator's steps, then who the person is, in ``auth_state["hubext"]``.

        OAuthenticator calls this at sign-in and at every refresh, after it
        built ``auth_state`` from the provider's answer. The upstream class's
        own steps run first (and an adapter's own lookups, such as GitHub's
        organization and team listings, before those), so the identity is
        made once, from the finished auth model, by the adapter that knows
        the provider's claims:

        ``auth_state["hubext"]``
            ``provider`` (this adapter's name), ``subject`` (the provider's
            stable id of the person, None if it sent none),
            ``provider_username`` (before the username template) and
            ``atoms`` (the identity as community rules see it,
            :meth:`~hubext.identity.Identity.atoms`, as sorted pairs).

        The hub's :class:`~hubext.authenticator.CommunityAuthenticator`
        reads only this record: it makes the hub username, checks the
        account's binding and adds the communities (``member_of``,
        ``admin_of``). It never calls back into the adapter.
        """
        auth_model = await super().update_auth_model(auth_model)
        identity = self.identity_from_auth_model(auth_model)
        subject = self.subject_from_auth_model(auth_model)
        auth_model["auth_state"][AUTH_STATE_KEY] = {
            **Binding(self.provider_name, subject).as_dict(),
            "provider_username": auth_model["name"],
            "atoms": sorted([key, value] for key, value in identity.atoms()),
        }
        return auth_model

    def identity_from_auth_model(self, auth_model: dict) -> Identity:
        """The normalized identity from this provider's auth model.

        Called by :meth:`update_auth_model`, after every other step.
        """
        raise NotImplementedError

    def subject_from_auth_model(self, auth_model: dict) -> str | None:
        """The provider's stable id of the person (never reassigned), or None.

        A hub account is bound to it at its first sign-in
        (:mod:`hubext.accounts`).
        """
        raise NotImplementedError

    @staticmethod
    def _subject(value) -> str | None:
        # An id is a non-empty printable string, or an integer (GitHub's).
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return str(value)
        if (
            isinstance(value, str)
            and value
            and len(value) <= 255
            and value.isprintable()
        ):
            return value
        return None

    def user_info_to_username(self, user_info):
        """The provider's username, or a 403 that says what is wrong with it."""
        try:
            username = super().user_info_to_username(user_info)
        except ValueError:
            username = None
        if not isinstance(username, str) or not username:
            raise web.HTTPError(
                403,
                "%s",
                f"{self.login_service} did not send a username this hub can use. "
                "Ask the hub's administrators.",
            )
        return username

    # -- outages ------------------------------------------------------------

    async def fetch(self, req, label="fetching", parse_json=True, **kwargs):
        if not isinstance(req, HTTPRequest):
            req = HTTPRequest(req)
        if req.request_timeout is None:
            req.request_timeout = self.request_timeout
        if req.connect_timeout is None:
            req.connect_timeout = self.connect_timeout
        try:
            return await super().fetch(
                req, label=label, parse_json=parse_json, **kwargs
            )
        except Exception as e:
            reason = classify_failure(e)
            if reason is None:
                raise
            unavailable = ProviderUnavailable(
                self.provider_name,
                f"{reason} while {label}",
                _retry_after(getattr(e, "response", None)),
            )
            failures = _failures.get()
            if failures is not None:
                failures.append(unavailable)
            raise unavailable from None

    def is_resting(self, now: float | None = None) -> bool:
        """True while the provider is being left alone after failures."""
        return (
            now if now is not None else self.outage_clock()
        ) < self._unavailable_until

    def record_failure(self, failure: ProviderUnavailable) -> float:
        """Note an outage; return the seconds until the provider is tried again."""
        self._consecutive_failures += 1
        wait = min(
            self.outage_backoff * 2 ** (self._consecutive_failures - 1),
            self.outage_backoff_max,
        )
        if failure.retry_after:
            wait = max(wait, min(failure.retry_after, self.outage_backoff_max))
        self._unavailable_until = self.outage_clock() + wait
        return wait

    def record_success(self) -> None:
        self._consecutive_failures = 0
        self._unavailable_until = 0.0

    # -- logging --------------------------------------------------------------

    def _claim_warning(self, username: str):
        """A ``warn(message)`` for bad claims, naming provider and user safely."""

        def warn(message: str) -> None:
            self.log.warning(
                "hubext: provider %s, user %s: %s",
                self.provider_name,
                show(username),
                message,
            )

        return warn

    # -- URLs and handlers -----------------------------------------------------

    def login_url(self, base_url):
        return url_path_join(base_url, self.provider_name, "oauth_login")

    def get_callback_url(self, handler=None):
        if self.oauth_callback_url:
            return self.oauth_callback_url
        if handler is None:
            raise ValueError(
                f"providers[{self.provider_name!r}]: set oauth_callback_url, "
                "or give a request handler to derive it from"
            )
        path = url_path_join(
            handler.hub.server.base_url, self.provider_name, "oauth_callback"
        )
        request = handler.request
        return urlunsplit((request.protocol, request.host, path, "", ""))

    def provider_handlers(self):
        """``(path, handler)`` pairs under this provider's prefix.

        The login handler talks to the provider, so its ``authenticator`` is
        this adapter; the callback handler goes through the hub's own
        authenticator (whose ``authenticate`` dispatches back to this adapter),
        so that JupyterHub's allow, block, admin and group logic runs once,
        in one place, for every provider.
        """
        adapter = self
        login = type(
            f"{type(self).__name__}LoginHandler",
            (self.login_handler,),
            {"authenticator": property(lambda handler: adapter)},
        )
        callback = type(
            f"{type(self).__name__}CallbackHandler",
            (RefusingCallbackMixin, self.callback_handler),
            {"hubext_provider": adapter},
        )
        prefix = f"/{self.provider_name}"
        return [
            (f"{prefix}/oauth_login", login),
            (f"{prefix}/oauth_callback", callback),
        ]
