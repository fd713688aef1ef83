"""Community rules: any rule matches, all keys of a rule must match."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from hubext import Communities
from hubext._validation import ConfigErrors, KeyPath
from hubext.identity import MAX_VALUES, Identity, clean_strings
from hubext.rules import parse_rules

COMMUNITIES = {
    "ocean-lab": {
        "members": [
            {"github": "ocean-org"},
            {"provider": "cilogon", "email_domain": "ocean.example.org"},
            {"provider": "uni", "group": "Ocean-Lab"},
        ],
        "admins": [{"github": "ocean-org:hub-admins"}],
    },
    "astro-101": {
        "members": [
            {"provider": "uni", "group": "astro-101"},
            {"idp": "https://idp.astro.example.edu"},
            {"username": "guest-7", "provider": "uni"},
        ],
    },
    "no-rules": {},
}


@pytest.fixture(scope="module")
def index():
    config = Config()
    config.Communities.communities = COMMUNITIES
    return Communities(config=config).rule_index


@pytest.mark.parametrize(
    ("identity", "members", "admins"),
    [
        pytest.param(
            Identity("github", "ann", github_orgs=frozenset({"ocean-org"})),
            {"ocean-lab"},
            set(),
            id="github-org",
        ),
        pytest.param(
            Identity(
                "github",
                "ann",
                github_orgs=frozenset({"ocean-org"}),
                github_teams=frozenset({"ocean-org:hub-admins"}),
            ),
            {"ocean-lab"},
            {"ocean-lab"},
            id="github-team-admin",
        ),
        pytest.param(
            Identity("github", "ann", github_teams=frozenset({"ocean-org:hub-admins"})),
            {"ocean-lab"},
            {"ocean-lab"},
            id="admins-are-members",
        ),
        pytest.param(
            Identity("cilogon", "bo", emails=frozenset({"bo@ocean.example.org"})),
            {"ocean-lab"},
            set(),
            id="all-keys-match",
        ),
        pytest.param(
            Identity("uni", "bo", emails=frozenset({"bo@ocean.example.org"})),
            set(),
            set(),
            id="one-key-of-two-is-not-enough",
        ),
        pytest.param(
            Identity("uni", "cy", groups=frozenset({"OCEAN-LAB", "astro-101"})),
            {"ocean-lab", "astro-101"},
            set(),
            id="groups-casefolded-several-communities",
        ),
        pytest.param(
            Identity("cilogon", "di", idp="HTTPS://idp.astro.example.edu"),
            {"astro-101"},
            set(),
            id="idp",
        ),
        pytest.param(
            Identity("uni", "GUEST-7"), {"astro-101"}, set(), id="username-casefolded"
        ),
        pytest.param(
            Identity("other", "guest-7"), set(), set(), id="username-other-provider"
        ),
        pytest.param(Identity("uni", "nobody"), set(), set(), id="no-match"),
    ],
)
def test_matching(index, identity, members, admins):
    memberships = index.match(identity.atoms())
    assert memberships.member_of == members
    assert memberships.admin_of == admins


def test_unverified_emails_never_reach_rules():
    # An identity only holds verified emails; the adapters drop the others
    # (see test_authenticator_oidc). Here: domain atoms come from emails only.
    identity = Identity("cilogon", "x", emails=frozenset())
    assert not any(k == "email_domain" for k, _ in identity.atoms())


@pytest.mark.parametrize(
    ("value", "kept", "warnings"),
    [
        pytest.param(None, set(), 0, id="none"),
        pytest.param("a", {"a"}, 0, id="single-string"),
        pytest.param(["a", "b", "a"], {"a", "b"}, 0, id="list"),
        pytest.param({"a": 1}, set(), 1, id="dict"),
        pytest.param(42, set(), 1, id="number"),
        pytest.param(
            ["a", 1, None, ["x"], "b\x00", "", "z" * 300], {"a"}, 1, id="junk-dropped"
        ),
        pytest.param([f"g{i}" for i in range(MAX_VALUES + 5)], None, 1, id="too-many"),
    ],
)
def test_claim_values_are_cleaned(value, kept, warnings):
    messages = []
    result = clean_strings(value, "groups", messages.append)
    if kept is not None:
        assert result == kept
    else:
        assert len(result) == MAX_VALUES
    assert len(messages) == warnings
    assert all(len(m) < 200 for m in messages)


def test_every_bad_rule_and_key_is_reported():
    with pytest.raises(ConfigErrors) as info:
        parse_rules(
            [
                {"group": "", "github": "not an org!", "provider": "uni"},
                {"provider": "uni"},
                {"emial_domain": "x.org", "idp": 3},
            ],
            KeyPath("R"),
        )
    assert [str(e) for e in info.value.errors] == [
        "R[0].group: must not be empty",
        "R[0].github: expected 'org' or 'org:team-slug', got 'not an org!'",
        "R[2].emial_domain: unknown key (did you mean 'email_domain'?); known keys: "
        "email_domain, github, group, idp, provider, username",
        "R[2].idp: expected a string, got 3 (int)",
    ]


#: Rule values that no provider's value can equal: each is refused at
#: start-up with its key path, saying why, and the value meant when it can
#: be told.
MATCH_NOBODY = [
    ("email_domain", "@stars.example.edu", "is written with '@': write the domain "
     "alone (did you mean 'stars.example.edu'?)"),
    ("email_domain", "ann@stars.example.edu", "is an email address, not a domain "
     "(did you mean 'stars.example.edu'?)"),
    ("email_domain", "https://stars.example.edu/people", "is a URL, not a domain "
     "(did you mean 'stars.example.edu'?)"),
    ("email_domain", "stars.example.edu.", "ends with '.', which no email address "
     "does (did you mean 'stars.example.edu'?)"),
    ("email_domain", " stars.example.edu", "starts or ends with a space (values "
     "match exactly, spaces included) (did you mean 'stars.example.edu'?)"),
    ("email_domain", "*.example.edu", "rules have no wildcards; an email_domain rule "
     "matches one domain exactly, not its subdomains: write a rule for each domain "
     "(did you mean 'example.edu'?)"),
    ("email_domain", "*", "rules have no wildcards"),
    ("email_domain", "stars example", "'stars example' is not a domain name"),
    ("github", "https://github.com/ocean-org", "(did you mean 'ocean-org'?)"),
    ("github", "https://github.com/orgs/ocean-org/teams/hub-admins",
     "(did you mean 'ocean-org:hub-admins'?)"),
    ("github", "@ocean-org", "(did you mean 'ocean-org'?)"),
    ("github", "ocean-org/hub-admins", "(did you mean 'ocean-org:hub-admins'?)"),
    ("github", "ocean-org:Hub Admins", "(did you mean 'ocean-org:hub-admins'?)"),
    ("group", "ocean-lab ", "starts or ends with a space (values match exactly, "
     "spaces included) (did you mean 'ocean-lab'?)"),
    ("group", "ocean-*", "rules have no wildcards; a value matches exactly (here "
     "only a literal '*'): write a rule for each value"),
    ("username", " ann", "starts or ends with a space"),
    ("idp", "https://idp.example.edu/idp/shibboleth ", "starts or ends with a space"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in MATCH_NOBODY],
)
def test_a_rule_value_that_can_match_nobody_is_refused(key, value, reason):
    path = KeyPath("Communities.communities['astro-101'].members")
    with pytest.raises(ConfigErrors) as info:
        parse_rules([{key: value}], path)
    (error,) = info.value.errors
    assert error.path == f"Communities.communities['astro-101'].members[0].{key}"
    assert reason in error.reason, error.reason


@pytest.mark.parametrize(
    ("key", "value", "folded"),
    [
        ("email_domain", "Stars.Example.EDU", "stars.example.edu"),
        ("github", "Ocean-Org:Hub-Admins", "ocean-org:hub-admins"),
        ("group", "Ocean Lab", "ocean lab"),
        ("idp", "https://idp.example.edu/idp/shibboleth", None),
    ],
)
def test_upper_case_is_folded_not_refused(key, value, folded):
    # ASCII letters match case-insensitively (hubext.identity.fold), as documented.
    (rule,) = parse_rules([{key: value}], KeyPath("R"))
    assert rule == {(key, folded or value)}
