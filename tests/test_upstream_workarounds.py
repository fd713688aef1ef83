"""hubext's workarounds for upstream bugs give the same answers once upstream
behaves as proposed in docs/upstream/.

Each test runs twice: on the installed release (the bug present) and with
the upstream method changed the way the proposal says (the bug fixed), the
change made on the upstream class for the length of the test only. hubext's
own code runs as it is.
"""

from __future__ import annotations

import asyncio
import re

import pytest
import requests
from jupyterhub.auth import Authenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.oauth2 import OAuthenticator
from traitlets.config import Config

from hubext.authenticator import CommunityAuthenticator
from hubext.providers.github import GitHubProvider

from .fakes import FakeGitHub

RELEASED = "released"
FIXED = "proposed-fix"


# -- JupyterHub: username_pattern matches the whole name ------------------------

_released_validate_username = Authenticator.validate_username


def _fullmatch_validate_username(self, username):
    """JupyterHub's checks, with ``username_pattern`` matching the whole name
    (docs/upstream/jupyterhub.md, "username_pattern matches a prefix only")."""
    if not _released_validate_username(self, username):
        return False
    return not self.username_regex or bool(self.username_regex.fullmatch(username))


@pytest.fixture(params=[RELEASED, FIXED])
def jupyterhub_validate_username(request, monkeypatch):
    if request.param == FIXED:
        monkeypatch.setattr(
            Authenticator, "validate_username", _fullmatch_validate_username
        )
    return request.param


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        pytest.param("abc", True, id="whole-name"),
        pytest.param("abc-def", False, id="prefix-only"),
        pytest.param("-abc", False, id="no-match"),
        pytest.param("ab/c", False, id="slash"),
        pytest.param("..", False, id="dots"),
    ],
)
def test_username_pattern_workaround(jupyterhub_validate_username, name, valid):
    config = Config()
    config.CommunityAuthenticator.username_pattern = "[a-z/.]+"
    auth = CommunityAuthenticator(config=config)
    assert auth.validate_username(name) is valid
    # the pattern hubext checks and the one upstream checks are the same one
    assert auth.username_regex.pattern == "[a-z/.]+"


# -- OAuthenticator: GitHub's granted scopes are comma-separated ----------------

CALLBACK = "http://127.0.0.1:9/hub/github/oauth_callback"


def _comma_split_build_auth_state_dict(self, token_info, user_info):
    """OAuthenticator's auth_state with GitHub's scopes split on commas too
    (docs/upstream/authenticator.md, "GitHub's granted scopes are
    comma-separated")."""
    auth_state = OAuthenticator.build_auth_state_dict(self, token_info, user_info)
    scope = token_info.get("scope", "")
    if isinstance(scope, str):
        auth_state["scope"] = [s for s in re.split(r"[,\s]+", scope) if s]
    return auth_state


@pytest.fixture(params=[RELEASED, FIXED])
def oauthenticator_scopes(request, monkeypatch):
    if request.param == FIXED:
        monkeypatch.setattr(
            GitHubOAuthenticator,
            "build_auth_state_dict",
            _comma_split_build_auth_state_dict,
            raising=False,
        )
    return request.param


@pytest.fixture(scope="module")
def github():
    with FakeGitHub() as fake:
        # hidden public email: the primary one is fetched from /user/emails
        fake.add_user("hidden", orgs=["ocean-org"])
        yield fake


class _Callback:
    """The part of the OAuth callback request OAuthenticator reads: ``code``."""

    def __init__(self, code):
        self.code = code

    def get_argument(self, name, default=None):
        return self.code if name == "code" else default


def _authorization_code(github, login):
    # the person's answer on GitHub's authorize page, sent as the form does
    r = requests.post(
        github.url + github.authorize_path,
        data={
            "client_id": github.client_id,
            "redirect_uri": CALLBACK,
            "scope": "read:org user:email",
            "login": login,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302, r.text
    return requests.utils.urlparse(r.headers["Location"]).query.split("code=")[1]


def test_github_scope_workaround(oauthenticator_scopes, github):
    provider = GitHubProvider(
        **github.oauthenticator_config(),
        oauth_callback_url=CALLBACK,
        enable_pkce=False,
        provider_name="github",
    )
    github.reset_calls()
    code = _authorization_code(github, "hidden")
    model = asyncio.run(provider.authenticate(_Callback(code), None))
    state = model["auth_state"]
    assert state["token_response"]["scope"] == "read:org,user:email"
    assert state["scope"] == ["read:org", "user:email"]
    # GitHubOAuthenticator's own step saw user:email granted: primary email
    assert state["github_user"]["email"] == "hidden@users.example.org"
    assert state["verified_emails"] == ["hidden@users.example.org"]
    # and the emails were listed once, by hubext, for both
    assert github.count("/api/v3/user/emails", method="GET") == 1
