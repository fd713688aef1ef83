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
