"""CommunityAuthenticator: several identity providers, one set of communities.

The hub's authenticator (entry point ``hubext``). It

- runs one OAuthenticator-based adapter per configured provider, each under
  its own URL prefix, and shows one sign-in button per provider;
- gives every provider's users a username from the provider's
  ``username_template``, so that the same name at two providers gives two
  hub users;
- turns each sign-in into a normalized identity and matches it against the
  community rules: the user's JupyterHub groups are exactly the communities
  they match, and community admins get their community's admin role;
- re-checks all of it on ``refresh_user``, and keeps the last known
  communities while a provider is down;
- loads and validates :class:`hubext.Communities` when the hub starts, so a
  bad community definition stops the hub with the exact key path.
"""

from __future__ import annotations

import asyncio
import contextvars
import html
import logging
import re
from collections.abc import Mapping

from jupyterhub import orm
from jupyterhub.auth import Authenticator
from jupyterhub.utils import maybe_future, url_path_join
from sqlalchemy.orm import object_session
from tornado import web
from traitlets import Bool, Dict, Unicode, default, validate

from . import accounts
from ._validation import (
    ConfigError,
    ErrorCollector,
    describe_trait_error,
    expect_mapping,
    show,
)
from .accounts import AUTH_STATE_KEY, Binding, binding_conflict, stored_binding
from .communities import Communities
from .config_reading import configured_value
from .console.access import ADMIN_SCOPE
from .console.handlers import console_handlers
from .console.join import invitation_handlers
from .handlers import CommunityLogoutHandler, RefusedHandler
from .hub_start import at_hub_start
from .identity import atoms_from_json
from .ignored_settings import check_authenticator_sections
from .providers import PROVIDER_KINDS, ProviderUnavailable
from .providers.base import transient_failures
from .providers.config import PROVIDERS_PATH, check_rule_providers, parse_providers
from .reconcile import preload_managed_roles, reconcile_at_startup
from .roles import (
    community_admin_role,
    community_admin_roles,
    hub_admin_roles,
)
from .startup import (
    check_authenticator_config,
    check_crypt_keys,
    config_errors_stop_the_hub,
)
from .usage.access import USAGE_SCOPE
from .usage.model import EndReason
from .usage.model import stop_reason as usage_stop_reason
from .usage.signin import SIGN_IN_PATH, UsageSignInHandler

_BAD_USERNAME_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")
_MAX_USERNAME_LENGTH = 255


class CommunityAuthenticator(Authenticator):
    """Sign-in through several identity providers into one set of communities."""

    providers = Dict(
        config=True,
        help="""
        The identity providers people sign in with, keyed by provider name.

        A provider name is lowercase letters, digits and ``-``; it appears in
        the provider's URLs (``/hub/<name>/oauth_login`` and
        ``/hub/<name>/oauth_callback``, the redirect URL to register with the
        provider) and in usernames.

        Each value is a mapping:

        ``kind`` (required)
            ``github`` (GitHubOAuthenticator), ``cilogon``
            (CILogonOAuthenticator) or ``oidc``: any OpenID Connect
            provider (GenericOAuthenticator).
        ``display_name``
            The text of the sign-in button (defaults to the name).
        ``username_template``
            How a hub username is made from the provider's username, with
            fields ``{username}`` and ``{provider}``. Default
            ``{username}@{provider}``, so that ``alice`` at two providers is
            two hub users. Give ``{username}`` alone only to a provider whose
            usernames no other provider can produce. Changing it later
            renames nobody: users get new, empty accounts.
        ``config``
            Traits of the provider's OAuthenticator class
            (``client_id``, ``client_secret``, ``authorize_url``, ...).
            Values set in ``c.GitHubOAuthenticator``,
            ``c.CILogonOAuthenticator`` or ``c.GenericOAuthenticator`` apply
            to every provider of that kind unless overridden here.

        Example::

            c.CommunityAuthenticator.providers = {
                "uni": {
                    "kind": "oidc",
                    "display_name": "University login",
                    "config": {
                        "client_id": "hub",
                        "client_secret": os.environ["UNI_CLIENT_SECRET"],
                        "authorize_url": "https://login.uni.example/auth",
                        "token_url": "https://login.uni.example/token",
                        "userdata_url": "https://login.uni.example/userinfo",
                        "username_claim": "preferred_username",
                        "scope": ["openid", "email", "profile"],
                    },
                },
            }

        .. versionadded:: 0.1
        """,
    )

    manage_groups = Bool(
        True,
        config=True,
        help="""
        Communities are JupyterHub groups owned by this authenticator, so this
        is True by default: group membership is set at every login and
        refresh. Turning it off turns hubext's communities off.
        """,
    )

    manage_roles = Bool(
        True,
        config=True,
        help="""
        Community admins get the role ``community-admin-<slug>``, assigned by
        this authenticator, so this is True by default. As with any
        authenticator that manages roles, users' roles then come from the
        authenticator alone: hub admins are ``admin_users``, and
        ``JupyterHub.load_roles`` may assign roles to services only.
        """,
    )

    community_admins_access_servers = Bool(
        False,
        config=True,
        help="""
        Let community admins use their members' servers
        (``access:servers!group=<slug>``): open their notebooks and
        terminals. Off by default.

        .. versionadded:: 0.1
        """,
    )

    no_community_message = Unicode(
        "You signed in as {username}, but that account does not belong to any "
        "community on this hub. Ask the administrators of your community or "
        "of this hub to add it.",
        config=True,
        help="""
        The message on the 403 page for a person who signed in but matches no
        community (``{username}`` is replaced by their hub username). Say whom
        to ask.

        Example::

            c.CommunityAuthenticator.no_community_message = (
                "{username} is not in any community. Ask help@hub.example.org."
            )
        """,
    )

    custom_403_message = Unicode(
        "Sorry, you are not allowed to use this hub. "
        "Please contact the hub's administrators.",
        config=True,
        help="""
        The message on the 403 page for a person who may not sign in for any
        reason other than having no community (that one is
        :attr:`no_community_message`): a blocked user, a username refused by
        ``username_pattern``. (The same trait as OAuthenticator's.)

        .. versionadded:: 0.1
        """,
    )

    @default("allow_all")
    def _allow_all_default(self):
        return False

    @default("enable_auth_state")
    def _enable_auth_state_default(self):
        # The identity each account is bound to, and the provider tokens
        # refresh_user needs, live in the encrypted auth_state.
        return True

    @default("reset_managed_roles_on_startup")
    def _reset_managed_roles_default(self):
        # Community-admin roles are all from load_managed_roles(): one of a
        # community that was removed is deleted at start-up. (With False,
        # JupyterHub 6.1 cannot restart once such a role is held:
        # KeyError 'users' in init_role_assignment; docs/upstream/jupyterhub.md.)
        return True

    def _check_settings(self) -> None:
        """Refuse hub-level settings hubext cannot work with."""
        errors = ErrorCollector()
        for name in REQUIRED_SETTINGS:
            with errors.check():
                check_required_setting(name, getattr(self, name))
        errors.raise_errors()

    @default("allow_existing_users")
    def _allow_existing_users_default(self):
        # Access follows communities: someone who has left every community
        # must not stay allowed because they signed in once. (JupyterHub's
        # default is True whenever allowed_users is set.)
        return False

    @validate("providers")
    def _validate_providers(self, proposal):
        parse_providers(proposal["value"])
        return proposal["value"]

    @classmethod
    def check_hub_config(cls, config, communities, *, environ=None) -> None:
        """Start-up checks of this authenticator's configuration, all at once.

        Its required settings, its providers (each on its own, so that every
        bad one is reported), that every rule names a configured provider,
        settings of other authenticators' sections it would ignore, and with
        ``environ`` (the hub's environment) the key that encrypts auth_state.
        Run by :func:`hubext.startup.check_configuration` (the hub's start and
        ``hubext check-config``). Raises ConfigErrors.
        """
        errors = ErrorCollector()
        for name in REQUIRED_SETTINGS:
            value = configured_value(cls, config, name, True)
            with errors.check():
                check_required_setting(name, value)
        if environ is not None:
            with errors.check():
                check_crypt_keys(config, environ)
        raw_providers = configured_value(cls, config, "providers", {})
        providers = None
        with errors.check():
            expect_mapping(raw_providers, PROVIDERS_PATH)
            before = len(errors.errors)
            for name, entry in raw_providers.items():
                with errors.check():
                    parse_providers({name: entry})
            if len(errors.errors) == before:
                providers = parse_providers(raw_providers)
        if providers is not None:
            with errors.check():
                check_rule_providers(communities, providers)
        kinds = {
            entry.get("kind")
            for entry in (
                raw_providers if isinstance(raw_providers, Mapping) else {}
            ).values()
            if isinstance(entry, Mapping)
        }
        with errors.check():
            check_authenticator_sections(config, cls, kinds, hubext=True)
        errors.raise_errors()

    def __init__(self, **kwargs):
        # Every error of the configuration at once, before any is raised by a
        # trait validator; in the hub, one log line each and exit status 1.
        with config_errors_stop_the_hub(kwargs.get("parent")):
            check_authenticator_config(type(self), kwargs)
            super().__init__(**kwargs)
            self.communities = Communities(parent=self)
            self._check_settings()
            self._providers = self._make_providers(parse_providers(self.providers))
            # Validated: the hub's start-up work (the services' data, the
            # usage ledger, the budgets, the console), JupyterHub has no hook
            # of its own.
            started = at_hub_start(kwargs.get("parent"), self.communities, self.log)
        self._console = started.console
        # memberships by invitation (#23), in the delegated state's database
        self._invitations = started.invitations
        self._reconciled_at_startup = False
        self._hub_role_definitions = None
        if not self._providers:
            self.log.warning(
                "hubext: CommunityAuthenticator.providers is empty: nobody can sign in"
            )

    def _make_providers(self, parsed):
        providers = {}
        for name, entry in parsed.items():
            cls = PROVIDER_KINDS[entry["kind"]]
            path = PROVIDERS_PATH[name].attr("config")
            try:
                provider = cls(
                    parent=self,
                    provider_name=name,
                    login_service=entry["display_name"],
                    enable_auth_state=self.enable_auth_state,
                    manage_groups=False,
                    allow_all=True,
                    username_template=entry["username_template"],
                    **entry["config"],
                )
            except Exception as e:
                raise ConfigError(path, describe_trait_error(e)) from None
            providers[name] = provider
        return providers

    @property
    def provider_adapters(self):
        """The provider adapters, by provider name (read-only view)."""
        return dict(self._providers)

    # -- the sign-in page ---------------------------------------------------

    def get_custom_html(self, base_url):
        # JupyterHub renders this as a Jinja template with `next` in its
        # context: configured text is escaped for HTML and for Jinja.
        buttons = []
        for name, provider in self._providers.items():
            url = _escape(url_path_join(base_url, name, "oauth_login"))
            buttons.append(
                f'<a role="button" class="btn btn-jupyter btn-lg hubext-provider" '
                f'data-provider="{_escape(name)}" href="{url}?next={{{{ next }}}}">'
                f"Sign in with {_escape(provider.login_service)}</a>"
            )
        body = "\n".join(buttons) or "<p>No identity provider is configured.</p>"
        return f'<div class="service-login hubext-login">\n{body}\n</div>'

    def get_handlers(self, app):
        handlers = [
            ("/logout", CommunityLogoutHandler),
            ("/hubext/refused", RefusedHandler),
            *super().get_handlers(app),
        ]
        for provider in self._providers.values():
            handlers.extend(provider.provider_handlers())
        custom_scopes = getattr(app, "custom_scopes", {})
        if USAGE_SCOPE in custom_scopes:
            # the usage page's sign-in (hubext.usage.register_page)
            handlers.append((f"/{SIGN_IN_PATH}", UsageSignInHandler))
        if ADMIN_SCOPE in custom_scopes and self._console is not None:
            # the console (hubext.console.register_console)
            handlers.extend(console_handlers(self._console))
        if self._invitations is not None:
            # the join page and the invitations' REST API (hubext.console.join)
            handlers.extend(invitation_handlers(self._invitations, app))
            self._invitations.start(self)
        return handlers

    # -- start-up -------------------------------------------------------------

    def check_allow_config(self):
        # JupyterHub warns "No allow config found" because allowed_users and
        # allow_all are empty: with hubext, community rules say who is allowed.
        if not len(self.communities) and not self.admin_users:
            self.log.warning(
                "hubext: no communities and no admin_users: nobody can sign in"
            )

    def add_user(self, user):
        """Called for every user in the database at start-up, and for new users.

        At start-up (``user`` is a database row), the first call brings every
        user's communities in line with the current configuration, in bulk
        (:mod:`hubext.reconcile`), before the hub answers.

        Not a coroutine: JupyterHub awaits one per user at start-up, a turn
        of the event loop each (a second at 50,000 users).
        """
        super().add_user(user)
        if not isinstance(user, orm.User) or self._reconciled_at_startup:
            return
        self._reconciled_at_startup = True
        invited = None
        if self._invitations is not None:
            try:
                invited = self._invitations.invited_now()
            except Exception as e:
                # kept as they are: reconcile leaves nobody's groups alone
                # then, so it does not run (the next start does)
                self.log.error(
                    "hubext: memberships by invitation cannot be read at "
                    "start-up (%s); communities not reconciled this time",
                    type(e).__name__,
                )
                return
        reconcile_at_startup(
            object_session(user),
            self.communities.registry,
            self.communities.rule_index,
            log=self.log,
            invited=invited,
        )

    # -- roles ----------------------------------------------------------------

    async def load_managed_roles(self):
        # JupyterHub goes through every managed role at start-up, one query
        # each for its services and groups: load them all in two.
        db = getattr(self.parent, "db", None)
        if db is not None:
            self._managed_roles = preload_managed_roles(db)
        # the usage page's scope, when hubext.usage.register_page defined it
        custom_scopes = getattr(self.parent, "custom_scopes", {})
        return community_admin_roles(
            self.communities,
            access_servers=self.community_admins_access_servers,
            custom_scopes=custom_scopes,
        ) + hub_admin_roles(custom_scopes)

    def _roles_for(self, admin: bool, admin_of) -> list[dict]:
        """The user's roles, each as the hub defines it.

        JupyterHub's ``sync_roles()`` replaces all of a user's roles (so the
        default ones are kept here) and writes every role it is given back
        into the database: a role given by its name alone would be logged
        as ``Role ... will have no scopes`` at every sign-in. hubext's own
        roles are defined as ``load_managed_roles`` defines them; JupyterHub's
        (``user``, ``admin``) as the hub's database holds them (the hub may
        have changed ``user``'s scopes).
        """
        custom_scopes = getattr(self.parent, "custom_scopes", {})
        roles = self._hub_roles(["user", "admin"] if admin else ["user"])
        if admin:
            roles += hub_admin_roles(custom_scopes)
        roles += [
            community_admin_role(
                self.communities[slug],
                access_servers=self.community_admins_access_servers,
                custom_scopes=custom_scopes,
            )
            for slug in sorted(admin_of)
        ]
        return roles

    def _hub_roles(self, names: list[str]) -> list[dict]:
        """JupyterHub's roles ``names`` as the hub's database defines them
        (by name alone without a hub).

        Read once: JupyterHub defines its roles at start-up only
        (``load_roles``), and sync_roles writes back what is read here.
        """
        defined = self._hub_role_definitions
        if defined is None:
            db = getattr(self.parent, "db", None)
            if db is None:
                return [{"name": name} for name in names]
            defined = self._hub_role_definitions = {
                role.name: {
                    "name": role.name,
                    "description": role.description,
                    "scopes": list(role.scopes),
                }
                for role in db.query(orm.Role).filter(
                    orm.Role.name.in_(["user", "admin"])
                )
            }
        # copies: JupyterHub's sync_roles changes the dicts it is given
        return [
            {**defined[name], "scopes": list(defined[name]["scopes"])}
            if name in defined
            else {"name": name}
            for name in names
        ]

    # -- authentication -------------------------------------------------------

    def normalize_username(self, username):
        """NFKC, then lowercase (:func:`hubext.accounts.normalize_username`)."""
        return super().normalize_username(accounts.normalize_username(username))

    def validate_username(self, username):
        """hubext's username rules, then JupyterHub's, with ``username_pattern``
        matching the whole name.

        (JupyterHub 6.1 uses ``re.match``: ``[a-z]+`` accepted ``odd-one``.)
        """
        if username_problem(username) is not None:
            # hubext's own rules (no '/', '\\', control characters, only dots,
            # ...), whatever the JupyterHub version checks (6.0 accepts '..').
            return False
        if self.username_pattern and not re.fullmatch(self.username_pattern, username):
            return False
        return super().validate_username(username)

    def provider_for(self, handler):
        provider = getattr(handler, "hubext_provider", None)
        if provider is None:
            raise web.HTTPError(400, "Sign in through one of the identity providers.")
        return provider

    async def authenticate(self, handler, data=None):
        provider = self.provider_for(handler)
        try:
            auth_model = await provider.authenticate(handler, data)
        except ProviderUnavailable as e:
            self.log.warning("hubext: sign-in failed: %s", e)
            raise web.HTTPError(
                503,
                "%s",
                f"{provider.login_service} is not answering right now. "
                "Please try again in a few minutes.",
            ) from None
        if not auth_model:
            return None
        model = self._finish_auth_model(provider, auth_model)
        user = handler.find_user(model["name"])
        await self._check_binding(provider, model, user)
        await self._add_invited(model)
        refused_invitation = None
        if self._invitations is not None:
            # a code confirmed on the join page before this sign-in
            refused_invitation = await self._invitations.redeem_at_sign_in(
                handler, model
            )
        leave_out_unchanged_roles(model, user.orm_user if user is not None else None)
        if not self._allowed_by_model(model["name"], model):
            # in no community: why the invitation gave none, if it was one
            handler.hubext_refusal = refused_invitation or (
                self.no_community_message.format(username=model["name"])
            )
        return model

    def _refuse(self, provider, reason: str, log_reason: str, name: str):
        """A 403 for a sign-in, with one warning line in the log."""
        self.log.warning(
            "hubext: provider %s: refusing sign-in as %s: %s",
            provider.provider_name,
            show(name),
            log_reason,
        )
        return web.HTTPError(403, "%s", reason, reason="Forbidden")

    def _finish_auth_model(self, provider, auth_model):
        """Username (template, normalization, checks), binding and communities.

        Reads the identity the adapter recorded in ``auth_state["hubext"]``
        (:meth:`hubext.providers.base.ProviderMixin.update_auth_model`) and
        adds the communities it gives under the current rules.
        """
        raw_name = provider.hub_username(auth_model)
        problem = username_problem(raw_name)
        if problem:
            raise self._refuse(
                provider,
                f"Your {provider.login_service} username cannot be used on this "
                f"hub: {problem}. Ask the hub's administrators.",
                problem,
                raw_name,
            )
        # One normalization, before every check (JupyterHub would otherwise
        # lowercase the name only after the allow and admin checks).
        name = self.normalize_username(raw_name)
        if not self.validate_username(name):
            raise self._refuse(
                provider,
                f"Your {provider.login_service} username makes the hub username "
                f"{name!r}, which this hub does not accept. Ask the hub's "
                "administrators.",
                "refused by username_pattern",
                name,
            )
        # The identity the adapter recorded (ProviderMixin.update_auth_model).
        auth_state = dict(auth_model.get("auth_state") or {})
        record = auth_state.get(AUTH_STATE_KEY)
        atoms = (
            atoms_from_json(record.get("atoms")) if isinstance(record, dict) else None
        )
        if atoms is None or record.get("provider") != provider.provider_name:
            # Only a provider's refresh_user_hook returning a model of its own
            # (not made by update_auth_model) can get here: fail closed.
            raise self._refuse(
                provider,
                f"{provider.login_service} sign-in could not be checked. "
                "Ask the hub's administrators.",
                "no identity recorded by the provider adapter in auth_state",
                name,
            )
        if record.get("subject") is None:
            raise self._refuse(
                provider,
                f"{provider.login_service} did not send a stable identifier for "
                "your account, which this hub needs. Ask the hub's administrators.",
                "no subject (stable id) in the provider's answer",
                name,
            )
        memberships = self.communities.rule_index.match(atoms)
        auth_state[AUTH_STATE_KEY] = {
            **Binding(provider.provider_name, record["subject"]).as_dict(),
            "provider_username": record.get("provider_username"),
            "member_of": sorted(memberships.member_of),
            "admin_of": sorted(memberships.admin_of),
            # The identity as the rules see it, to recompute communities at
            # start-up when the configuration changed (hubext.reconcile).
            "atoms": sorted([key, value] for key, value in atoms),
        }
        admin = name in self.admin_users
        model = {
            **auth_model,
            "name": name,
            "admin": admin,
            "groups": sorted(memberships.member_of),
            "auth_state": auth_state,
        }
        if self.manage_roles:
            model["roles"] = self._roles_for(admin, memberships.admin_of)
        return model

    async def _check_binding(self, provider, model, user) -> None:
        """Refuse a sign-in into ``user``'s account (None: a new one) when
        it is bound to another identity."""
        if user is None:
            return
        stored = await user.get_auth_state()
        if stored is None and user.encrypted_auth_state is not None:
            raise self._refuse(
                provider,
                "This hub cannot check that the account belongs to you. "
                "Ask the hub's administrators.",
                "the account's recorded identity cannot be decrypted",
                model["name"],
            )
        conflict = binding_conflict(stored_binding(stored), _binding_of(model))
        if conflict:
            raise self._refuse(
                provider,
                f"The hub account {model['name']!r} cannot be used with this "
                f"{provider.login_service} account: {conflict}. Ask the hub's "
                "administrators.",
                f"account bound to another identity ({conflict})",
                model["name"],
            )

    async def _add_invited(self, model: dict) -> None:
        """Add the account's communities by invitation to the model's groups,
        next to those the provider's claims give (#23)."""
        if self._invitations is None:
            return
        invited = await self._invitations.invited(model["name"])
        if invited:
            model["groups"] = sorted(set(model["groups"]) | invited)

    def _allowed_by_model(self, username, auth_model) -> bool:
        return bool(
            username in self.admin_users
            or (auth_model and auth_model.get("groups"))
            or self.allow_all
            or username in self.allowed_users
        )

    async def check_allowed(self, username, auth_model=None):
        """Allowed: hub admins, members of a community, and allowed_users.

        Returns False otherwise (OAuthenticator's contract; the sign-in page
        then shows :attr:`no_community_message`).
        """
        if await maybe_future(super().check_allowed(username, auth_model)):
            return True
        return self._allowed_by_model(username, auth_model)

    async def session_of(self, user) -> tuple[str | None, str | None]:
        """The provider a user signed in through, and their id token if any."""
        auth_state = await user.get_auth_state() or {}
        binding = stored_binding(auth_state)
        token = (auth_state.get("token_response") or {}).get("id_token")
        return (
            binding.provider if binding else None,
            token if isinstance(token, str) else None,
        )

    async def pre_spawn_start(self, user, spawner):
        """Let a hubext spawner decide on the server before the spawn waits.

        The first step of JupyterHub's spawn with the options known: the
        spawner validates them and checks its community's limits
        (``check_before_spawn``), so a refusal is the answer to the start
        request even when the hub is too busy to finish a spawn within
        ``slow_spawn_timeout`` (see hubext's upstream notes on JupyterHub).
        """
        await maybe_future(super().pre_spawn_start(user, spawner))
        check = getattr(spawner, "check_before_spawn", None)
        if check is not None:
            await check()

    async def refresh_user(self, user, handler=None):
        """Re-check the user's identity and communities with their provider.

        - Provider down (5xx, timeout, rate limit): keep the last known
          communities, log a warning, and leave the provider alone for a
          back-off period (no call at all for anyone in that time).
        - Token revoked or refused: a new login is needed.
        - In no community any more: every credential ends now: their groups
          and roles are removed, their servers stopped, their API tokens
          and browser sessions revoked (:meth:`revoke_access`).
        """
        if handler is not None and not hasattr(handler, "_token_authenticated"):
            # JupyterHub 6.1 reads this attribute when a refresh returns
            # False, but sets it only on token-authenticated requests: a
            # cookie-authenticated API request would fail with AttributeError
            # and a traceback (docs/upstream/jupyterhub.md).
            handler._token_authenticated = False
        auth_state = await user.get_auth_state()
        state = (auth_state or {}).get(AUTH_STATE_KEY) or {}
        provider = self._providers.get(state.get("provider"))
        if provider is None:
            # Signed in through a provider that is no longer configured.
            return False
        if provider.is_resting():
            return True
        with transient_failures() as failures:
            try:
                refreshed = await provider.refresh_user(user, handler)
            except ProviderUnavailable as e:
                failures.append(e)
                refreshed = None
        if failures:
            # An outage, even if OAuthenticator turned it into "log in again".
            wait = provider.record_failure(failures[-1])
            self.log.warning(
                "hubext: refreshing %s: %s; keeping their communities %s; "
                "provider %s left alone for %.0f s",
                show(user.name),
                failures[-1].reason,
                state.get("member_of", []),
                provider.provider_name,
                wait,
            )
            return True
        provider.record_success()
        if not isinstance(refreshed, dict):
            return refreshed
        try:
            model = self._finish_auth_model(provider, refreshed)
        except web.HTTPError:
            return False
        if model["name"] != user.name or binding_conflict(
            stored_binding(auth_state), _binding_of(model)
        ):
            self.log.warning(
                "hubext: refreshing %s: the provider now answers for another "
                "account; sign-in needed",
                show(user.name),
            )
            return False
        await self._add_invited(model)
        if not self._allowed_by_model(user.name, model):
            self.log.info(
                "hubext: %s is no longer in any community; ending their access",
                show(user.name),
            )
            # Recorded as the provider answers now: a start with other rules
            # matches this identity, not the one that gave communities.
            await user.save_auth_state(model["auth_state"])
            await self.revoke_access(user, handler)
            return False
        leave_out_unchanged_roles(model, user.orm_user)
        return model

    async def revoke_access(self, user, handler=None) -> None:
        """End every credential of ``user``: roles, groups, tokens, sessions, servers.

        Their groups and roles go (so whatever token is being checked right
        now carries no permission), every API and OAuth token is deleted,
        the browser sessions end (a new cookie id), and their servers, named
        ones included, are stopped. Their data is kept.
        """
        orm_user = user.orm_user
        db = user.db
        orm_user.groups = []
        orm_user.roles = []
        for token in list(orm_user.api_tokens):
            db.delete(token)
        orm_user.cookie_id = orm.new_token()
        db.commit()
        for name, spawner in list(user.spawners.items()):
            if spawner.active and not spawner.pending:
                self.log.info("hubext: stopping %s's server %r", show(user.name), name)
                # Not awaited: the request that triggered the refresh may come
                # from that very server.
                stop = handler.stop_single_user if handler is not None else None
                # the usage ledger records these stops as the hub's, not the user's
                context = contextvars.copy_context()
                context.run(usage_stop_reason.set, EndReason.STOPPED_BY_ADMIN)
                future = asyncio.get_running_loop().create_task(
                    stop(user, name) if stop else user.stop(name), context=context
                )
                future.add_done_callback(_log_failed_stop)


#: Settings of CommunityAuthenticator that must stay True, and why.
REQUIRED_SETTINGS = {
    "enable_auth_state": (
        "hubext keeps the identity each account is bound to and the provider "
        "tokens in the encrypted auth_state; set JUPYTERHUB_CRYPT_KEY "
        "(zero-to-jupyterhub generates it) and leave this True"
    ),
    "reset_managed_roles_on_startup": (
        "community-admin roles of removed communities must be deleted at "
        "start-up, and JupyterHub 6.1 cannot restart with False "
        "(KeyError 'users'); leave this True"
    ),
    "manage_groups": "communities are JupyterHub groups owned by hubext",
    "manage_roles": "community admins get their roles from hubext",
}


def check_required_setting(name: str, value) -> None:
    """Raise ConfigError if the required setting ``name`` is not True."""
    if value is not True:
        raise ConfigError(
            f"CommunityAuthenticator.{name}",
            f"must be True: {REQUIRED_SETTINGS[name]}",
        )


def _binding_of(model: dict) -> Binding:
    """The identity a finished auth model signs in as (see _finish_auth_model)."""
    state = model["auth_state"][AUTH_STATE_KEY]
    return Binding(state["provider"], state["subject"])


def leave_out_unchanged_roles(model: dict, orm_user) -> None:
    """Take ``roles`` out of a finished auth model when they would change nothing.

    ``orm_user``: the account signing in or refreshed (None: a new one).
    JupyterHub's ``auth_to_user`` first gives every user the ``user`` role,
    and ``admin`` to admins (taking it from others), then syncs the model's
    ``roles``: when that leaves the user holding exactly those, its
    ``sync_roles`` changes nothing, yet re-creates each role (scopes checked,
    a query each): about 3 ms of the hub's CPU per sign-in, of some 50
    (the sign-in storm of docs/benchmarks.md). Without ``roles`` it leaves
    the roles alone; their definitions are written at start-up
    (``load_managed_roles``).
    """
    if "roles" not in model:
        return
    held = {role.name for role in orm_user.roles} if orm_user is not None else set()
    after_defaults = (held - {"admin"}) | {"user"}
    if model["admin"]:
        after_defaults.add("admin")
    if after_defaults == {role["name"] for role in model["roles"]}:
        del model["roles"]


def _log_failed_stop(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logging.getLogger(__name__).warning(
            "hubext: stopping a server of a person with no community failed: %s",
            future.exception(),
        )


def username_problem(name: str) -> str | None:
    """Why ``name`` cannot be a hub username, or None."""
    if not name or not name.strip():
        return "it is empty"
    if len(name) > _MAX_USERNAME_LENGTH:
        return f"it is longer than {_MAX_USERNAME_LENGTH} characters"
    if _BAD_USERNAME_CHARS.search(name) or not name.isprintable():
        return "it contains '/', '\\' or control characters"
    if name != name.strip():
        return "it starts or ends with a space"
    if set(name) <= {"."}:
        return "it is only dots"
    return None


def _escape(text: str) -> str:
    """Escape for HTML, and braces so Jinja renders them as text."""
    return html.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")
