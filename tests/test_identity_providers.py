"""Several providers in one real hub: the demo OIDC provider, GitHub and CILogon.

GitHub's and CILogon's APIs cannot be reached from here, so they are local
HTTP servers answering with the providers' documented shapes
(tests/fakes); everything else is real: JupyterHub, the proxy, OAuthenticator.
"""

from __future__ import annotations

import time

import pytest

from .fakes import FakeCILogon, FakeGitHub
from .hubclient import wait_until

pytestmark = pytest.mark.e2e

OCEAN_IDP = "https://idp.ocean.example.org/idp/shibboleth"
ASTRO_IDP = "urn:mace:incommon:astro.example.edu"


@pytest.fixture(scope="module")
def github():
    with FakeGitHub() as fake:
        fake.add_user("alice", orgs=["ocean-org"], teams=["ocean-org:hub-admins"])
        fake.add_user("gina", orgs=["ocean-org", "other-org"], teams=[])
        fake.add_user("outsider", orgs=["elsewhere"])
        # many teams: the listing spans several pages
        fake.add_user(
            "paula", orgs=["big-org"], teams=[f"big-org:team-{i}" for i in range(230)]
        )
        fake.set_teams(
            "paula", [*(f"big-org:team-{i}" for i in range(230)), "ocean-org:readers"]
        )
        yield fake


@pytest.fixture(scope="module")
def cilogon():
    with FakeCILogon() as fake:
        fake.add_user(
            "alice",
            idp=OCEAN_IDP,
            eppn="alice@ocean.example.org",
            email="alice@ocean.example.org",
        )
        fake.add_user(
            "sam",
            idp=ASTRO_IDP,
            eppn="sam@astro.example.edu",
            email="sam@astro.example.edu",
        )
        fake.add_user(
            "nolan",
            idp="https://idp.unknown.example.net",
            eppn="nolan@unknown.example.net",
        )
        fake.add_user("nameless", idp=OCEAN_IDP, email="nameless@ocean.example.org")
        yield fake


#: The providers' back-off in these tests: long, so that a test sees it hold;
#: tests end it by moving the back-off's clock (:func:`end_backoff`).
BACKOFF = 60


def end_backoff(hub) -> None:
    """Move the hub's back-off clock past any back-off (no provider is resting)."""
    hub.move_outage_clock(10 * BACKOFF)


@pytest.fixture(scope="module")
def hub(tmp_path_factory, github, cilogon):
    from .harness import OUTAGE_CLOCK, RunningHub

    config = (
        OUTAGE_CLOCK
        + f"""
c.CommunityAuthenticator.admin_users = set()
c.CommunityAuthenticator.auth_refresh_age = 1
c.CommunityAuthenticator.providers["github"] = {{
    "kind": "github",
    "display_name": "GitHub",
    "config": {{
        **{github.oauthenticator_config()!r},
        "outage_backoff": {BACKOFF},
        "outage_backoff_max": {BACKOFF},
        "outage_clock": outage_clock,
        "http_request_kwargs": {{"request_timeout": 1}},
    }},
}}
c.CommunityAuthenticator.providers["cilogon"] = {{
    "kind": "cilogon",
    "display_name": "CILogon",
    "config": {{
        **{cilogon.oauthenticator_config()!r},
        "idps": {{
            {OCEAN_IDP!r}: {{"username_derivation": {{"username_claim": "eppn",
                "action": "strip_idp_domain", "domain": "ocean.example.org"}}}},
            {ASTRO_IDP!r}: {{"username_derivation": {{"username_claim": "eppn"}}}},
        }},
    }},
}}
communities = c.Communities.communities
communities["ocean-lab"]["members"] += [
    {{"github": "ocean-org"}},
    {{"provider": "cilogon", "idp": {OCEAN_IDP!r}}},
]
communities["ocean-lab"]["admins"] += [{{"github": "ocean-org:hub-admins"}}]
communities["astro-101"]["members"] += [
    {{"provider": "cilogon", "email_domain": "astro.example.edu"}},
]
"""
    )
    hub = RunningHub(tmp_path_factory.mktemp("providers"), config).start()
    yield hub
    hub.stop()


def test_one_button_per_provider(hub):
    page = hub.session().get("/hub/login").text
    for name, label in [
        ("demo", "the demo identity provider"),
        ("github", "GitHub"),
        ("cilogon", "CILogon"),
    ]:
        assert f'href="/hub/{name}/oauth_login?next=' in page
        assert f"Sign in with {label}" in page


def test_usernames_do_not_collide_across_providers(hub):
    hub.signed_in(
        provider="demo", account="alice"
    )  # the demo provider keeps bare usernames
    hub.signed_in(provider="github", account="alice")
    hub.signed_in(provider="cilogon", account="alice")
    names = {u["name"] for u in hub.api.get("/users").json()}
    assert {"alice", "alice@github", "alice@cilogon"} <= names


def test_github_orgs_and_teams(hub, github):
    github.reset_calls()
    hub.signed_in(provider="github", account="alice")
    alice = hub.api.user("alice@github")
    assert alice["groups"] == ["ocean-lab"]
    assert "community-admin-ocean-lab" in alice["roles"]
    # One token exchange, /user, /user/orgs, /user/teams, /user/emails.
    api_calls = [path for method, path in github.calls if path.startswith("/api/v3")]
    assert sorted(api_calls) == sorted(
        [
            "/api/v3/user",
            "/api/v3/user/orgs",
            "/api/v3/user/teams",
            "/api/v3/user/emails",
        ]
    )


def test_github_team_listing_is_paginated(hub, github):
    github.reset_calls()
    hub.signed_in(provider="github", account="paula")
    assert github.count("/api/v3/user/teams") == 3  # 231 teams, 100 a page
    assert hub.api.user("paula@github")["groups"] == ["ocean-lab"]


def test_github_account_in_no_community(hub):
    r = hub.session().login("github", "outsider")
    assert r.status_code == 403
    assert "outsider@github" in r.text and "does not belong to any community" in r.text


def test_cilogon_idp_and_email_domain(hub):
    hub.signed_in(provider="cilogon", account="sam")
    assert hub.api.user("sam@astro.example.edu@cilogon")["groups"] == ["astro-101"]
    assert hub.api.user("alice@cilogon")["groups"] == ["ocean-lab"]


def test_cilogon_unconfigured_institution_is_refused(hub):
    r = hub.session().login("cilogon", "nolan")
    assert r.status_code == 403
    assert "not pre-configured" in r.text


def test_cilogon_missing_username_claim_is_403_not_500(hub):
    r = hub.session().login("cilogon", "nameless")
    assert r.status_code == 403
    assert "did not send the information" in r.text


def test_github_refresh_follows_membership(hub, github):
    person = hub.signed_in(provider="github", account="gina")
    assert hub.api.user("gina@github")["groups"] == ["ocean-lab"]
    github.set_teams("gina", ["ocean-org:hub-admins"])
    assert wait_until(
        lambda: (
            person.api("GET", "/user").status_code == 200
            and "community-admin-ocean-lab" in hub.api.user("gina@github")["roles"]
        )
    )
    github.set_orgs("gina", ["other-org"])  # leaves ocean-org and its teams
    # at the next refresh her groups, roles and session all go
    assert wait_until(lambda: person.api("GET", "/user").status_code == 403)
    gina = hub.api.user("gina@github")
    assert gina["groups"] == []
    assert gina["roles"] == []


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 403, "rate_limit": True}, id="rate-limit-403"),
        pytest.param({"status": 429, "retry_after": 1}, id="rate-limit-429"),
        pytest.param({"status": 502}, id="bad-gateway"),
        pytest.param({"hang": 3}, id="timeout"),
    ],
)
def test_github_outage_during_refresh(hub, github, fault):
    github.recover()
    github.set_orgs("alice", ["ocean-org"])
    github.set_teams("alice", ["ocean-org:hub-admins"])
    person = hub.signed_in(provider="github", account="alice")
    end_backoff(hub)  # whatever an earlier test left
    github.reset_calls()
    if "hang" in fault:
        github.hang(fault["hang"], paths="/api/v3")
    else:
        github.fail(**fault, paths="/api/v3")
    try:
        # ~12 requests over 3 refresh ages (1 s): the first refresh tries the
        # provider, the next ones leave it alone (without the back-off: 3 tries)
        deadline = time.monotonic() + 3.2
        while time.monotonic() < deadline:
            r = person.api("GET", "/user")
            assert r.status_code == 200
            assert r.json()["groups"] == ["ocean-lab"]
            time.sleep(0.25)
        assert github.count("/api/v3/user", method="GET") == 1
        # once the back-off is over, the next refresh tries again
        end_backoff(hub)
        assert wait_until(
            lambda: (
                person.api("GET", "/user").json()["groups"] == ["ocean-lab"]
                and github.count("/api/v3/user", method="GET") == 2
            ),
            timeout=10,
        )
        user = hub.api.user("alice@github")
        assert "community-admin-ocean-lab" in user["roles"]
    finally:
        github.recover()
        end_backoff(hub)
    assert "keeping their communities ['ocean-lab']" in hub.log()


def test_cilogon_refresh_follows_claims(hub, cilogon):
    person = hub.signed_in(provider="cilogon", account="sam")
    assert hub.api.user("sam@astro.example.edu@cilogon")["groups"] == ["astro-101"]
    # the institution now asserts another email: no astro-101 any more
    cilogon.set_claims("sam", email="sam@elsewhere.example.net")
    assert wait_until(lambda: person.api("GET", "/user").status_code == 403)
    assert hub.api.user("sam@astro.example.edu@cilogon")["groups"] == []


def test_github_login_during_outage_is_503(hub, github):
    github.fail(503, paths="/api/v3")
    try:
        r = hub.session().login("github", "alice")
    finally:
        github.recover()
    assert r.status_code == 503
    assert "GitHub is not answering right now" in r.text


def test_github_revoked_token_means_new_login(hub, github):
    person = hub.signed_in(provider="github", account="alice")
    github.revoke("alice")
    assert wait_until(lambda: person.api("GET", "/user").status_code == 403)
    hub.signed_in(provider="github", account="alice")


def test_no_secret_in_logs(hub, github, cilogon):
    log = hub.log()
    for secret in (github.client_secret, cilogon.client_secret, hub.env.client_secret):
        assert secret not in log
