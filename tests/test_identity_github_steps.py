"""GitHub through a real hub: GitHubOAuthenticator's own auth-model steps are
kept, and a hung provider is given up on after the provider's timeout.

GitHub's API is a local HTTP server with its documented shapes (tests/fakes).
"""

from __future__ import annotations

import time

import pytest

from .fakes import FakeGitHub
from .harness import TEST_SERVICE_SCOPES, RunningHub

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def github():
    with FakeGitHub() as fake:
        # A hidden public email: GitHubOAuthenticator fills in the primary one.
        fake.add_user(
            "hidden",
            orgs=["ocean-org"],
            teams=["ocean-org:hub-admins", "ocean-org:readers"],
        )
        fake.add_user("open", email="open@ocean.example.org", orgs=["ocean-org"])
        yield fake


@pytest.fixture(scope="module")
def hub(tmp_path_factory, github):
    config = f"""
c.CommunityAuthenticator.admin_users = set()
c.CommunityAuthenticator.providers["github"] = {{
    "kind": "github",
    "display_name": "GitHub",
    "config": {{
        **{github.oauthenticator_config()!r},
        "populate_teams_in_auth_state": True,
    }},
}}
c.Communities.communities["ocean-lab"]["members"] += [{{"github": "ocean-org"}}]
"""
    hub = RunningHub(
        tmp_path_factory.mktemp("github-steps"),
        config,
        service_scopes=[*TEST_SERVICE_SCOPES, "admin:auth_state"],
    ).start()
    yield hub
    hub.stop()


def auth_state(hub, name):
    return hub.api.get(f"/users/{name}").json()["auth_state"]


def test_github_oauthenticator_steps_are_kept(hub, github):
    github.reset_calls()
    r = hub.session().login("github", "hidden")
    assert r.status_code == 302, r.text[:300]
    state = auth_state(hub, "hidden@github")
    # GitHubOAuthenticator's primary email, for a hidden public email ...
    assert state["github_user"]["email"] == "hidden@users.example.org"
    # ... and its `teams` (populate_teams_in_auth_state), in its own shape.
    assert sorted(t["slug"] for t in state["teams"]) == ["hub-admins", "readers"]
    assert state["github_teams"] == ["ocean-org:hub-admins", "ocean-org:readers"]
    # One listing of each: the upstream steps reuse hubext's requests.
    assert github.count("/api/v3/user/teams", method="GET") == 1
    assert github.count("/api/v3/user/emails", method="GET") == 1
    assert hub.api.user("hidden@github")["groups"] == ["ocean-lab"]
    # The identity the adapter recorded after GitHubOAuthenticator's steps.
    atoms = state["hubext"]["atoms"]
    assert ["github", "ocean-org"] in atoms
    assert ["github", "ocean-org:hub-admins"] in atoms
    assert ["email_domain", "users.example.org"] in atoms


def test_public_email_is_kept(hub):
    r = hub.session().login("github", "open")
    assert r.status_code == 302
    assert auth_state(hub, "open@github")["github_user"]["email"] == (
        "open@ocean.example.org"
    )


def test_a_hung_provider_is_given_up_on_after_its_request_timeout(hub, github):
    """Default request_timeout (5 s) instead of tornado's 20 s."""
    github.hang(60, paths="/api/v3")
    try:
        started = time.monotonic()
        r = hub.session().login("github", "open")
        elapsed = time.monotonic() - started
    finally:
        github.recover()
    assert r.status_code == 503
    assert "GitHub is not answering right now" in r.text
    # Given up on after the provider's 5 s, not tornado's default 20 s (the
    # margin is wide on both sides: this checks which timeout applied, not
    # a speed).
    assert elapsed < 15, elapsed
    assert "no answer (timeout or connection error)" in hub.log()
