"""Pure parts of account ownership: normalization, bindings, rule comparison,
and the settings hubext refuses at start-up."""

from __future__ import annotations

import logging

import pytest
from traitlets.config import Config

from hubext._validation import ConfigError
from hubext.accounts import (
    Binding,
    binding_conflict,
    normalize_username,
    stored_binding,
)
from hubext.authenticator import CommunityAuthenticator
from hubext.identity import Identity, fold
from hubext.providers.config import (
    IGNORED_CILOGON_IDP_KEYS,
    IGNORED_PROVIDER_KEYS,
    parse_providers,
)
from hubext.rules import RuleIndex, parse_rules


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        pytest.param("alice", "alice", id="plain"),
        pytest.param("Alice", "alice", id="upper"),
        pytest.param("\u212aim", "kim", id="kelvin-sign"),
        pytest.param("\uff4b\uff49\uff4d", "kim", id="fullwidth"),
        pytest.param("\ufb01ona", "fiona", id="ligature-fi"),
        pytest.param("e\u0301mile", "\u00e9mile", id="decomposed-e-acute"),
        pytest.param("\u00c9MILE", "\u00e9mile", id="composed-upper"),
        pytest.param("alice@GitHub", "alice@github", id="template-suffix"),
        pytest.param("\u2160", "i", id="roman-numeral-one"),
    ],
)
def test_one_normalization(name, normalized):
    assert normalize_username(name) == normalized
    # a fixed point, and a fixed point of JupyterHub's own lowercasing
    assert normalize_username(normalized) == normalized
    assert normalized.lower() == normalized


def test_normalization_is_applied_by_the_authenticator():
    config = Config()
    config.CommunityAuthenticator.username_map = {"kim": "kim-mapped"}
    auth = CommunityAuthenticator(config=config)
    assert auth.normalize_username("\u212aIM") == "kim-mapped"
    assert auth.normalize_username("Lea") == "lea"


@pytest.mark.parametrize(
    ("stored", "new", "conflict"),
    [
        pytest.param(None, Binding("uni", "1"), None, id="unbound-account"),
        pytest.param(Binding("uni", "1"), Binding("uni", "1"), None, id="same"),
        pytest.param(
            Binding("uni", "1"), Binding("uni", "2"), "another person", id="subject"
        ),
        pytest.param(
            Binding("uni", "1"), Binding("gh", "1"), "another provider", id="provider"
        ),
        pytest.param(
            Binding("uni", None), Binding("uni", "7"), None, id="previous-release"
        ),
        pytest.param(
            Binding("uni", None),
            Binding("gh", "7"),
            "another provider",
            id="previous-release-other-provider",
        ),
    ],
)
def test_binding_conflict(stored, new, conflict):
    problem = binding_conflict(stored, new)
    if conflict is None:
        assert problem is None
    else:
        assert conflict in problem


@pytest.mark.parametrize(
    ("auth_state", "binding"),
    [
        (None, None),
        ({}, None),
        ({"hubext": "junk"}, None),
        ({"hubext": {"provider": 3}}, None),
        ({"hubext": {"provider": "uni"}}, Binding("uni", None)),
        ({"hubext": {"provider": "uni", "subject": "s"}}, Binding("uni", "s")),
        ({"hubext": {"provider": "uni", "subject": 5}}, Binding("uni", None)),
    ],
)
def test_stored_binding(auth_state, binding):
    assert stored_binding(auth_state) == binding


@pytest.mark.parametrize(
    ("claim", "rule", "matches"),
    [
        pytest.param("ocean-lab", "ocean-lab", True, id="same"),
        pytest.param("OCEAN-LAB", "ocean-lab", True, id="ascii-case"),
        pytest.param("ocean-lab", "Ocean-Lab", True, id="ascii-case-rule"),
        pytest.param("\u212aelp", "kelp", False, id="kelvin-sign-claim"),
        pytest.param("kelp", "\u212aelp", False, id="kelvin-sign-rule"),
        pytest.param("\uff4f\uff43\uff45\uff41\uff4e", "ocean", False, id="fullwidth"),
        pytest.param("\u043ecean", "ocean", False, id="cyrillic-o"),
        pytest.param("stra\u00dfe", "strasse", False, id="sharp-s"),
        pytest.param("\u00c4rzte", "\u00e4rzte", False, id="non-ascii-case"),
        pytest.param("\u00e4rzte", "\u00e4rzte", True, id="non-ascii-exact"),
    ],
)
def test_rule_values_compare_ascii_case_insensitively_only(claim, rule, matches):
    rules = parse_rules([{"group": rule}], path=_path())
    index = RuleIndex({"c": {"members": rules, "admins": ()}})
    identity = Identity(provider="uni", username="x", groups=frozenset({claim}))
    assert ("c" in index.match(identity.atoms()).member_of) is matches


def test_fold_lowercases_ascii_only():
    assert fold("ABC-xyz") == "abc-xyz"
    assert fold("\u212a\u00c4") == "\u212a\u00c4"


def test_emails_and_github_names_fold_the_same_way():
    identity = Identity(
        provider="gh",
        username="x",
        emails=frozenset({"a@\u212aelp.org"}),
        github_orgs=frozenset({"\u212aelp"}),
    )
    rules = parse_rules(
        [{"email_domain": "kelp.org"}, {"github": "kelp"}], path=_path()
    )
    index = RuleIndex({"c": {"members": rules, "admins": ()}})
    assert index.match(identity.atoms()).member_of == frozenset()


def _path():
    from hubext._validation import KeyPath

    return KeyPath("Communities.communities")["c"].attr("members")


def _providers(kind, config):
    return {"p": {"kind": kind, "config": config}}


@pytest.mark.parametrize("key", sorted(IGNORED_PROVIDER_KEYS))
def test_provider_settings_that_would_do_nothing_are_refused(key):
    from hubext.providers import PROVIDER_KINDS

    kind = "github" if "organization" in key else "oidc"
    with pytest.raises(ConfigError) as e:
        parse_providers(_providers(kind, {key: None}))
    message = str(e.value)
    assert message.startswith(f"CommunityAuthenticator.providers['p'].config.{key}:")
    if key in PROVIDER_KINDS[kind].class_trait_names(config=True):
        assert IGNORED_PROVIDER_KEYS[key] in message
    else:
        # a trait of a newer JupyterHub (auth_refresh_strict: 6.1): unknown here
        assert "unknown key" in message


@pytest.mark.parametrize("key", sorted(IGNORED_CILOGON_IDP_KEYS))
def test_cilogon_institution_allow_rules_are_refused(key):
    idp = "https://idp.ocean.example.org/idp/shibboleth"
    config = {
        "allowed_idps": {
            idp: {"username_derivation": {"username_claim": "eppn"}, key: True}
        }
    }
    with pytest.raises(ConfigError) as e:
        parse_providers(_providers("cilogon", config))
    assert str(e.value).startswith(
        f"CommunityAuthenticator.providers['p'].config.allowed_idps[{idp!r}].{key}:"
    )


def test_provider_settings_that_work_are_accepted():
    parsed = parse_providers(
        _providers(
            "github",
            {
                "client_id": "a",
                "populate_teams_in_auth_state": True,
                "request_timeout": 2,
                "end_session_url": "https://example.org/logout",
            },
        )
    )
    assert parsed["p"]["config"]["populate_teams_in_auth_state"] is True


@pytest.mark.parametrize(
    "setting",
    [
        "enable_auth_state",
        "reset_managed_roles_on_startup",
        "manage_groups",
        "manage_roles",
    ],
)
def test_hub_settings_hubext_needs_are_refused_when_off(setting):
    config = Config()
    setattr(config.CommunityAuthenticator, setting, False)
    with pytest.raises((ConfigError, SystemExit)):
        CommunityAuthenticator(config=config)


def test_no_allow_config_warning_is_replaced(caplog):
    config = Config()
    config.Communities.communities = {"a": {"members": [{"provider": "p"}]}}
    config.CommunityAuthenticator.providers = {"p": {"kind": "oidc"}}
    auth = CommunityAuthenticator(config=config)
    with caplog.at_level(logging.WARNING):
        auth.check_allow_config()
    assert "No allow config found" not in caplog.text
    assert caplog.text == ""


def test_username_pattern_matches_the_whole_name():
    config = Config()
    config.CommunityAuthenticator.username_pattern = "[a-z]+"
    auth = CommunityAuthenticator(config=config)
    assert auth.validate_username("abc")
    assert not auth.validate_username("abc-def")


def test_check_config_reports_every_refused_setting_at_once():
    from hubext._validation import errors_of
    from hubext.startup import check_configuration

    config = Config()
    config.CommunityAuthenticator.enable_auth_state = False
    config.CommunityAuthenticator.manage_roles = False
    config.CommunityAuthenticator.providers = {
        "p": {"kind": "github", "config": {"allowed_organizations": ["x"]}}
    }
    with pytest.raises(ConfigError) as e:
        check_configuration(config, authenticator_class="hubext")
    paths = [error.path for error in errors_of(e.value)]
    assert paths == [
        "CommunityAuthenticator.enable_auth_state",
        "CommunityAuthenticator.manage_roles",
        "CommunityAuthenticator.providers['p'].config.allowed_organizations",
    ]


def _oidc_authenticator():
    config = Config()
    config.Communities.communities = {
        "ocean-lab": {"members": [{"group": "ocean"}], "admins": [{"group": "leads"}]}
    }
    config.CommunityAuthenticator.providers = {
        "uni": {"kind": "oidc", "config": {"client_id": "a", "client_secret": "b"}}
    }
    return CommunityAuthenticator(config=config)


def _oidc_model(claims):
    return {
        "name": claims.get("preferred_username", "ann"),
        "admin": None,
        "auth_state": {"oauth_user": claims, "access_token": "not-logged"},
    }


async def test_the_adapter_records_the_identity_in_update_auth_model():
    provider = _oidc_authenticator().provider_adapters["uni"]
    model = await provider.update_auth_model(
        _oidc_model(
            {
                "sub": "s-1",
                "preferred_username": "Ann",
                "email": "ann@Uni.example",
                "email_verified": True,
                "groups": ["ocean", "leads"],
            }
        )
    )
    assert model["auth_state"]["hubext"] == {
        "provider": "uni",
        "subject": "s-1",
        "provider_username": "Ann",
        "atoms": [
            ["email_domain", "uni.example"],
            ["group", "leads"],
            ["group", "ocean"],
            ["provider", "uni"],
            ["username", "ann"],
        ],
    }
    # A provider with no stable id gives a record without a subject.
    model = await provider.update_auth_model(_oidc_model({"groups": ["ocean"]}))
    assert model["auth_state"]["hubext"]["subject"] is None


async def test_the_authenticator_reads_the_record_and_adds_communities():
    auth = _oidc_authenticator()
    provider = auth.provider_adapters["uni"]
    model = await provider.update_auth_model(
        _oidc_model({"sub": "s-1", "preferred_username": "Ann", "groups": ["leads"]})
    )
    finished = auth._finish_auth_model(provider, model)
    assert finished["name"] == "ann@uni"
    # A community's admins are its members too.
    assert finished["groups"] == ["ocean-lab"]
    record = finished["auth_state"]["hubext"]
    assert record["admin_of"] == ["ocean-lab"] and record["member_of"] == ["ocean-lab"]
    # each role as the hub defines it, not by name alone (JupyterHub writes
    # back every role a sign-in gives; a bare name has no scopes)
    roles = {role["name"]: role for role in finished["roles"]}
    assert list(roles) == ["user", "community-admin-ocean-lab"]
    assert "servers!group=ocean-lab" in roles["community-admin-ocean-lab"]["scopes"]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(None, id="no-record"),
        pytest.param("uni", id="not-a-dict"),
        pytest.param({"provider": "uni", "subject": "s-1"}, id="no-atoms"),
        pytest.param(
            {"provider": "other", "subject": "s-1", "atoms": []}, id="other-provider"
        ),
        pytest.param({"provider": "uni", "subject": None, "atoms": []}, id="no-sub"),
    ],
)
def test_a_model_without_the_adapters_record_is_refused(record):
    # What a refresh_user_hook returning a model of its own could hand over.
    from tornado import web

    auth = _oidc_authenticator()
    provider = auth.provider_adapters["uni"]
    model = _oidc_model({"sub": "s-1", "groups": ["ocean"]})
    if record is not None:
        model["auth_state"]["hubext"] = record
    with pytest.raises(web.HTTPError) as e:
        auth._finish_auth_model(provider, model)
    assert e.value.status_code == 403
