"""CommunityAuthenticator: several identity providers, one set of communities.

The hub's authenticator (entry point ``hubext``). It

- runs one OAuthenticator-based adapter per configured provider, each under
  its own URL prefix, and shows one sign-in button per provider;
- gives every provider's users a username from the provider's
  ``username_template``, so that the same name at two providers gives two
  hub users;
- loads and validates :class:`hubext.Communities` when the hub starts, so a
  bad community definition stops the hub with the exact key path.
"""

from __future__ import annotations

import html
import string

from jupyterhub.auth import Authenticator
from jupyterhub.utils import maybe_future, url_path_join
from tornado import web
from traitlets import Bool, Dict, Unicode, default, validate

from ._validation import (
    ConfigError,
    KeyPath,
    check_keys,
    expect_mapping,
    expect_text,
    show,
)
from .communities import ROOT_PATH as COMMUNITIES_PATH
from .communities import Communities
from .providers import PROVIDER_KINDS
from .slugs import community_slug_problem

PROVIDERS_PATH = KeyPath("CommunityAuthenticator.providers")
_PROVIDER_KEYS = ("kind", "display_name", "username_template", "config")
_TEMPLATE_FIELDS = {"username", "provider"}
_SECRET_WORDS = ("secret", "token", "password", "key")


def _check_username_template(value, path: KeyPath) -> str:
    expect_text(value, path, max_length=200)
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as e:
        raise ConfigError(path, f"is not a valid template: {e}") from None
    unknown = fields - _TEMPLATE_FIELDS
    if unknown:
        raise ConfigError(
            path,
            f"unknown field {{{sorted(unknown)[0]}}}; "
            f"available fields: {{username}}, {{provider}}",
        )
    if "username" not in fields:
        raise ConfigError(path, "must contain {username}")
    return value


def parse_providers(raw) -> dict[str, dict]:
    """Validate ``CommunityAuthenticator.providers``; return normalized entries."""
    expect_mapping(raw, PROVIDERS_PATH)
    parsed = {}
    for name, entry in raw.items():
        problem = community_slug_problem(name)
        if problem:
            raise ConfigError(
                PROVIDERS_PATH[name] if isinstance(name, str) else PROVIDERS_PATH,
                "provider name: " + problem.replace("slug ", "", 1),
            )
        path = PROVIDERS_PATH[name]
        expect_mapping(entry, path)
        check_keys(entry, path, _PROVIDER_KEYS, required=("kind",))
        kind = entry["kind"]
        if kind not in PROVIDER_KINDS:
            raise ConfigError(
                path.attr("kind"),
                f"unknown provider kind {show(kind)}; "
                f"known kinds: {', '.join(sorted(PROVIDER_KINDS))}",
            )
        cls = PROVIDER_KINDS[kind]
        config = expect_mapping(entry.get("config", {}), path.attr("config"))
        check_keys(
            config,
            path.attr("config"),
            cls.class_trait_names(config=True),
            list_known=False,
        )
        parsed[name] = {
            "kind": kind,
            "display_name": expect_text(
                entry.get("display_name", name),
                path.attr("display_name"),
                max_length=100,
            ),
            "username_template": _check_username_template(
                entry.get("username_template", "{username}@{provider}"),
                path.attr("username_template"),
            ),
            "config": dict(config),
        }
    return parsed


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
            ``oidc``: any OpenID Connect provider (OAuthenticator's
            GenericOAuthenticator).
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
            Values set in ``c.GenericOAuthenticator`` apply to every
            ``oidc`` provider unless overridden here.

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
        is True by default: group membership is set at every login.
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

    @default("allow_all")
    def _allow_all_default(self):
        return False

    @validate("providers")
    def _validate_providers(self, proposal):
        parse_providers(proposal["value"])
        return proposal["value"]

    def __init__(self, **kwargs):
        try:
            super().__init__(**kwargs)
            self.communities = Communities(parent=self)
            self._providers = self._make_providers(parse_providers(self.providers))
            check_rule_providers(self.communities, self._providers)
        except ConfigError as e:
            # One clear line in the hub log before JupyterHub's traceback.
            self.log.critical("hubext: invalid configuration: %s", e)
            raise
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
                    **entry["config"],
                )
            except Exception as e:
                raise ConfigError(path, _describe_trait_error(e)) from None
            provider.hubext_username_template = entry["username_template"]
            providers[name] = provider
        return providers

    # -- the sign-in page -------------------------------------------------

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
        handlers = list(super().get_handlers(app))
        for provider in self._providers.values():
            handlers.extend(provider.provider_handlers())
        return handlers

    # -- authentication ---------------------------------------------------

    def provider_for(self, handler):
        provider = getattr(handler, "hubext_provider", None)
        if provider is None:
            raise web.HTTPError(400, "Sign in through one of the identity providers.")
        return provider

    async def authenticate(self, handler, data=None):
        provider = self.provider_for(handler)
        auth_model = await provider.authenticate(handler, data)
        if not auth_model:
            return None
        return self._finish_auth_model(provider, auth_model)

    def _finish_auth_model(self, provider, auth_model):
        """Apply the username template and the community rules."""
        identity = provider.identity_from_auth_model(auth_model)
        memberships = self.communities.rule_index.match(identity.atoms())
        name = provider.hubext_username_template.format(
            username=auth_model["name"], provider=provider.provider_name
        )
        auth_state = dict(auth_model.get("auth_state") or {})
        auth_state["hubext"] = {
            "provider": provider.provider_name,
            "member_of": sorted(memberships.member_of),
            "admin_of": sorted(memberships.admin_of),
        }
        return {
            **auth_model,
            "name": name,
            "groups": sorted(memberships.member_of),
            "auth_state": auth_state,
        }

    async def check_allowed(self, username, auth_model=None):
        if await maybe_future(super().check_allowed(username, auth_model)):
            return True
        if username in self.admin_users:
            return True
        if auth_model and auth_model.get("groups"):
            return True
        raise web.HTTPError(
            403,
            "%s",
            self.no_community_message.format(username=username),
        )

    async def refresh_user(self, user, handler=None):
        if not self.enable_auth_state:
            return True
        auth_state = await user.get_auth_state()
        name = ((auth_state or {}).get("hubext") or {}).get("provider")
        provider = self._providers.get(name)
        if provider is None:
            # Signed in through a provider that is no longer configured.
            return False
        refreshed = await provider.refresh_user(user, handler)
        if isinstance(refreshed, dict):
            return self._finish_auth_model(provider, refreshed)
        return refreshed


def check_rule_providers(communities: Communities, providers) -> None:
    """Every ``provider`` named in a community rule must be configured."""
    for community in communities:
        for role in ("members", "admins"):
            for i, rule in enumerate(community.get(role, ())):
                for key, value in rule:
                    if key == "provider" and value not in providers:
                        path = COMMUNITIES_PATH[community.slug].attr(role)[i].attr(key)
                        known = ", ".join(sorted(providers)) or "none"
                        raise ConfigError(
                            path,
                            f"no provider named {show(value)} in "
                            f"CommunityAuthenticator.providers (configured: {known})",
                        )


def _escape(text: str) -> str:
    """Escape for HTML, and braces so Jinja renders them as text."""
    return html.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def _describe_trait_error(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if any(word in text.lower() for word in _SECRET_WORDS):
        # Never echo a value that may be a secret.
        return f"invalid value ({type(error).__name__}); check the types of the values"
    return text
