"""Validation of ``CommunityAuthenticator.providers``. No I/O."""

from __future__ import annotations

import string

from .._validation import (
    ConfigError,
    KeyPath,
    check_keys,
    expect_mapping,
    expect_text,
    show,
)
from ..communities import ROOT_PATH as COMMUNITIES_PATH
from ..communities import Communities
from ..slugs import community_slug_problem
from . import PROVIDER_KINDS

PROVIDERS_PATH = KeyPath("CommunityAuthenticator.providers")

_RULES = "Communities.communities[...].members / .admins"
#: Settings of the provider's OAuthenticator class that would do nothing in a
#: provider adapter (the hub's CommunityAuthenticator makes these decisions),
#: and where each belongs instead.
IGNORED_PROVIDER_KEYS = {
    "allow_all": f"membership comes from community rules ({_RULES})",
    "allowed_users": "c.CommunityAuthenticator.allowed_users",
    "blocked_users": "c.CommunityAuthenticator.blocked_users",
    "admin_users": "c.CommunityAuthenticator.admin_users",
    "allow_existing_users": "c.CommunityAuthenticator.allow_existing_users",
    "any_allow_config": f"membership comes from community rules ({_RULES})",
    "whitelist": f"membership comes from community rules ({_RULES})",
    "manage_groups": "communities are the groups (always on in hubext)",
    "manage_roles": "community admins get roles from hubext (always on)",
    "reset_managed_roles_on_startup": "always on in hubext",
    "enable_auth_state": "c.CommunityAuthenticator.enable_auth_state",
    "auth_refresh_age": "c.CommunityAuthenticator.auth_refresh_age",
    "auth_refresh_strict": "c.CommunityAuthenticator.auth_refresh_strict",
    "refresh_pre_spawn": "c.CommunityAuthenticator.refresh_pre_spawn",
    "refresh_pre_stop": "c.CommunityAuthenticator.refresh_pre_stop",
    "username_map": "c.CommunityAuthenticator.username_map",
    "username_pattern": "c.CommunityAuthenticator.username_pattern",
    "delete_invalid_users": "c.CommunityAuthenticator.delete_invalid_users",
    "post_auth_hook": "c.CommunityAuthenticator.post_auth_hook",
    "reconcile_auth_state_hook": "c.CommunityAuthenticator.reconcile_auth_state_hook",
    "auto_login": "c.CommunityAuthenticator.auto_login",
    "auto_login_oauth2_authorize": "c.CommunityAuthenticator.auto_login",
    "request_otp": "not supported with identity providers",
    "otp_prompt": "not supported with identity providers",
    "custom_403_message": "c.CommunityAuthenticator.custom_403_message",
    "logout_redirect_url": "the provider's end_session_url (sign-out at the provider)",
    "login_service": "the provider's display_name",
    "allowed_groups": f"a community rule with 'group' ({_RULES})",
    "admin_groups": (
        "a community rule with 'group' in a community's admins, or "
        "c.CommunityAuthenticator.admin_users"
    ),
    "allowed_scopes": f"community rules ({_RULES}); scopes are not checked",
    "auth_state_groups_key": "the provider's groups_claim (kind oidc)",
    "claim_groups_key": "the provider's groups_claim (kind oidc)",
    "allowed_organizations": f"a community rule with 'github': 'org' ({_RULES})",
    "github_organization_whitelist": (
        f"a community rule with 'github': 'org' ({_RULES})"
    ),
}

#: Keys of CILogon's per-institution settings (``allowed_idps[<entity id>]``)
#: that decide who is allowed, which hubext's community rules do instead.
IGNORED_CILOGON_IDP_KEYS = {
    "allow_all": f"a community rule with 'idp' ({_RULES})",
    "allowed_domains": f"a community rule with 'email_domain' ({_RULES})",
    "allowed_domains_claim": f"a community rule with 'email_domain' ({_RULES})",
}


def _check_ignored_keys(kind: str, config, path: KeyPath) -> None:
    for key in config:
        if key in IGNORED_PROVIDER_KEYS:
            raise ConfigError(
                path.attr(key),
                "has no effect in a hubext provider; set it as "
                f"{IGNORED_PROVIDER_KEYS[key]}",
            )
    if kind == "cilogon":
        for entity, settings in (config.get("allowed_idps") or {}).items():
            if not isinstance(settings, dict):
                continue
            for key in settings:
                if key in IGNORED_CILOGON_IDP_KEYS:
                    raise ConfigError(
                        path.attr("allowed_idps")[entity].attr(key),
                        "has no effect in a hubext provider; use "
                        f"{IGNORED_CILOGON_IDP_KEYS[key]}",
                    )


_PROVIDER_KEYS = ("kind", "display_name", "username_template", "config")
_TEMPLATE_FIELDS = {"username", "provider"}


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
        _check_ignored_keys(kind, config, path.attr("config"))
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
