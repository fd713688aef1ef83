"""The fake GitHub and CILogon: their wire format, faults and call log, and the real
oauthenticator authenticators driven against them."""

from __future__ import annotations

import base64
import json
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from oauthenticator.cilogon import CILogonOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.oauth2 import _serialize_state

from .fakes import FakeCILogon, FakeGitHub
from .fakes.browser import parse_form, pkce_pair, sign_in

CALLBACK = "http://127.0.0.1:1/hub/oauth_callback"
IDP = "https://idp.example.edu/idp/shibboleth"


@pytest.fixture
def github():
    with FakeGitHub(client_id="gh-id", client_secret="gh-secret") as fake:
        yield fake


@pytest.fixture
def cilogon():
    with FakeCILogon(client_id="cilogon:/client_id/1", client_secret="s3") as fake:
        yield fake


def authorize(fake, login, *, redirect_uri=CALLBACK, **params) -> dict:
    """The browser step as ``login``; returns the query of the redirect back."""
    params = {"client_id": fake.client_id, "redirect_uri": redirect_uri, **params}
    url = f"{fake.url}{fake.authorize_path}?{urlencode(params)}"
    location = urlsplit(sign_in(url, login))
    assert location._replace(query="") == urlsplit(redirect_uri)._replace(query="")
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def github_token(fake, login, scope="read:org") -> str:
    code = authorize(fake, login, scope=scope)["code"]
    resp = requests.post(
        fake.url + fake.token_path,
        data={
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "code": code,
        },
        headers={"Accept": "application/json"},
        timeout=5,
    )
    return resp.json()["access_token"]


def gh_get(fake, path, token, timeout=5, **params):
    headers = {
        "Authorization": f"token {token}",
        "Accept": "application/vnd.github+json",
    }
    url = fake.api_url + path
    return requests.get(url, params=params, headers=headers, timeout=timeout)


# -- the browser step and the token endpoint --------------------------------------


def test_authorize_redirect_keeps_query_and_codes_are_single_use(github):
    github.add_user("alice")
    back = authorize(
        github,
        "alice",
        redirect_uri="http://h/cb?next=%2Fa%26b",
        state="x y&z",
        scope="read:org",
    )
    assert back["next"] == "/a&b" and back["state"] == "x y&z"
    body = {"client_id": "gh-id", "client_secret": "gh-secret", "code": back["code"]}
    url = github.url + "/login/oauth/access_token"
    first = requests.post(url, data=body, timeout=5)  # no Accept: form-encoded
    assert first.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    token = parse_qs(first.text)
    assert token["access_token"][0].startswith("gho_")
    assert token["token_type"] == ["bearer"] and token["scope"] == ["read:org"]
    again = requests.post(
        url, data=body, headers={"Accept": "application/json"}, timeout=5
    )
    assert again.status_code == 200  # GitHub reports token errors with 200
    assert again.json()["error"] == "bad_verification_code"
    assert "error_description" in again.json()

    code = authorize(github, "alice")["code"]
    wrong = requests.post(
        url, data={**body, "code": code, "client_secret": "nope"}, timeout=5
    )
    assert parse_qs(wrong.text)["error"] == ["incorrect_client_credentials"]
    page = requests.post(
        github.url + github.authorize_path,
        data={"client_id": "gh-id", "redirect_uri": CALLBACK, "login": "mallory"},
        timeout=5,
    )
    assert page.status_code == 400
    query = {"client_id": "gh-id", "redirect_uri": CALLBACK, "state": "s"}
    page = requests.get(github.url + github.authorize_path, params=query, timeout=5)
    assert parse_form(page.text) == (github.url + github.authorize_path, query)
    denied = sign_in(
        f"{github.url}{github.authorize_path}?{urlencode(query)}", "alice", deny=True
    )
    assert parse_qs(urlsplit(denied).query)["error"] == ["access_denied"]


def test_pkce_and_redirect_uri_are_checked(cilogon):
    cilogon.add_user("ann", idp=IDP, email="ann@example.edu")
    verifier, challenge = pkce_pair()
    token = {"grant_type": "authorization_code", "redirect_uri": CALLBACK}
    auth = ("cilogon:/client_id/1", "s3")
    for change, error in [
        ({"code_verifier": "wrong"}, "invalid_grant"),
        (
            {"code_verifier": verifier, "redirect_uri": "http://evil/cb"},
            "redirect_uri_mismatch",
        ),
    ]:
        code = authorize(
            cilogon, "ann", code_challenge=challenge, code_challenge_method="S256"
        )["code"]
        assert code.startswith(cilogon.url + "/oauth2/")  # URL-like, as CILogon's
        resp = requests.post(
            cilogon.token_url,
            data={**token, "code": code, **change},
            auth=auth,
            timeout=5,
        )
        assert resp.status_code == 400 and resp.json()["error"] == error


# -- GitHub REST ------------------------------------------------------------------


def test_github_pagination_link_headers(github):
    github.add_user("alice", teams=[f"big-org:team-{i:03}" for i in range(250)])
    token = github_token(github, "alice")
    pages, rels = [], []
    for page in (1, 2, 3):
        resp = gh_get(github, "/user/teams", token, per_page=100, page=page)
        assert resp.status_code == 200
        pages.append(resp.json())
        rels.append(requests.utils.parse_header_links(resp.headers["Link"]))
    assert [len(p) for p in pages] == [100, 100, 50]
    slugs = [t["slug"] for p in pages for t in p]
    assert slugs == [f"team-{i:03}" for i in range(250)]
    assert pages[0][0]["organization"]["login"] == "big-org"
    url = f"{github.api_url}/user/teams?per_page=100&page="
    assert [(r["rel"], r["url"]) for r in rels[0]] == [
        ("next", url + "2"),
        ("last", url + "3"),
    ]
    assert [r["rel"] for r in rels[1]] == ["prev", "next", "last", "first"]
    assert [(r["rel"], r["url"]) for r in rels[2]] == [
        ("prev", url + "2"),
        ("first", url + "1"),
    ]
    default = gh_get(github, "/user/teams", token)
    assert (
        len(default.json()) == 30 and 'page=9>; rel="last"' in default.headers["Link"]
    )
    orgs = gh_get(github, "/user/orgs", token)
    assert [o["login"] for o in orgs.json()] == [
        "big-org"
    ] and "Link" not in orgs.headers


def test_github_user_emails_and_membership(github):
    github.add_user(
        "Alice", id=42, name="Alice A", orgs=["org-a"], teams=["org-b:team-x"]
    )
    token = github_token(github, "Alice")
    user = gh_get(github, "/user", token).json()
    assert (user["login"], user["id"], user["type"], user["email"]) == (
        "Alice",
        42,
        "User",
        None,
    )
    assert user["node_id"] == base64.b64encode(b"04:User42").decode()
    [email] = gh_get(github, "/user/emails", token).json()
    assert email["primary"] and email["verified"] and email["visibility"] == "private"
    assert [o["login"] for o in gh_get(github, "/user/orgs", token).json()] == [
        "org-a",
        "org-b",
    ]
    assert gh_get(github, "/orgs/org-b/members/alice", token).status_code == 204
    assert (
        gh_get(github, "/orgs/org-b/teams/team-x/members/alice", token).status_code
        == 204
    )
    assert (
        gh_get(github, "/orgs/org-a/teams/team-x/members/alice", token).status_code
        == 404
    )
    github.set_orgs("Alice", ["org-a"])  # leaving org-b also leaves its teams
    assert (
        gh_get(github, "/orgs/org-b/teams/team-x/members/alice", token).status_code
        == 404
    )
    missing = gh_get(github, "/orgs/org-b/members/alice", token)
    assert missing.status_code == 404 and "message" in missing.json()
    assert gh_get(github, "/nope", token).json()["message"] == "Not Found"


def test_github_rate_limits_and_revoked_tokens(github):
    github.add_user("alice", id=7)
    token = github_token(github, "alice")
    github.fail(403, rate_limit=True, times=1)
    limited = gh_get(github, "/user", token)
    assert limited.status_code == 403
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > time.time()
    assert limited.json()["message"] == "API rate limit exceeded for user ID 7."
    assert "documentation_url" in limited.json()
    ok = gh_get(github, "/user", token)
    assert ok.status_code == 200 and int(ok.headers["X-RateLimit-Remaining"]) > 0

    github.fail(429, retry_after=30)
    for _ in range(2):
        secondary = gh_get(github, "/user", token)
        assert secondary.status_code == 429 and secondary.headers["Retry-After"] == "30"
        assert "secondary rate limit" in secondary.json()["message"]
    github.recover()

    github.revoke("alice")
    revoked = gh_get(github, "/user", token)
    assert revoked.status_code == 401 and revoked.json()["message"] == "Bad credentials"
    anonymous = requests.get(github.api_url + "/user", timeout=5)
    assert anonymous.json()["message"] == "Requires authentication"


def test_faults_are_limited_by_times_and_paths(github):
    github.add_user("alice", teams=["o:t"])
    token = github_token(github, "alice")
    github.fail(502, times=2, paths="/api/v3/user/teams")
    github.fail(500)  # default paths: everything but the authorize page
    assert [gh_get(github, "/user/teams", token).status_code for _ in range(3)] == [
        502,
        502,
        500,
    ]
    page = requests.get(
        github.url + github.authorize_path,
        params={"client_id": "gh-id", "redirect_uri": CALLBACK},
        timeout=5,
    )
    assert page.status_code == 200
    github.recover()
    assert gh_get(github, "/user/teams", token).status_code == 200


def test_call_log_latency_and_hang(github):
    github.add_user("alice")
    token = github_token(github, "alice")
    assert github.count("/login/oauth/") == 3  # authorize GET + POST, token POST
    assert github.count("/login/oauth/authorize", method="POST") == 1
    github.reset_calls()
    github.latency = 0.2
    threads = [
        threading.Thread(target=gh_get, args=(github, "/user", token)) for _ in range(5)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 0.8  # slept concurrently, not 5 x 0.2
    assert github.calls == [("GET", "/api/v3/user")] * 5
    github.latency = 0
    github.hang(5, times=1, paths="/api/v3/user")
    with pytest.raises(requests.exceptions.ReadTimeout):
        gh_get(github, "/user", token, timeout=0.2)
    assert gh_get(github, "/user", token).status_code == 200
    github.hang(30)
    errors = []

    def stuck_request():
        try:
            gh_get(github, "/user", token)
        except requests.exceptions.ConnectionError as e:
            errors.append(e)

    stuck = threading.Thread(target=stuck_request)
    stuck.start()
    time.sleep(0.1)
    started = time.monotonic()
    github.stop()  # wakes the hanging handler and drops its connection
    stuck.join(timeout=2)
    assert not stuck.is_alive() and time.monotonic() - started < 1
    assert errors  # the connection was dropped, not answered
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(github.api_url + "/user", timeout=1)
    url = github.url
    github.recover()
    github.start()  # the same port again
    assert github.url == url and gh_get(github, "/user", token).status_code == 200


# -- CILogon ----------------------------------------------------------------------


def cilogon_code(fake, account, scope="openid email profile org.cilogon.userinfo"):
    return authorize(
        fake, account, scope=scope, state="st", selected_idp=IDP, skin="x"
    )["code"]


def test_cilogon_token_userinfo_refresh_and_revoke(cilogon):
    cilogon.add_user(
        "ann", idp=IDP, idp_name="Example U", email="ann@example.edu", given_name="Ann"
    )
    body = {"grant_type": "authorization_code", "redirect_uri": CALLBACK}
    by_basic = requests.post(
        cilogon.token_url,
        data={**body, "code": cilogon_code(cilogon, "ann")},
        auth=("cilogon:/client_id/1", "s3"),
        timeout=5,
    )
    secret = {"client_id": "cilogon:/client_id/1", "client_secret": "s3"}
    in_body = requests.post(
        cilogon.token_url,
        data={**body, **secret, "code": cilogon_code(cilogon, "ann", "openid")},
        timeout=5,
    )
    tokens = by_basic.json()
    assert by_basic.status_code == in_body.status_code == 200
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    claims = json.loads(
        base64.urlsafe_b64decode(tokens["id_token"].split(".")[1] + "==")
    )
    assert (
        claims["aud"] == "cilogon:/client_id/1" and claims["email"] == "ann@example.edu"
    )

    def userinfo(access):
        headers = {"Authorization": f"Bearer {access}"}
        return requests.get(cilogon.userdata_url, headers=headers, timeout=5)

    info = userinfo(tokens["access_token"]).json()
    assert set(info) == {"sub", "idp", "idp_name", "email", "given_name"}
    assert info["sub"].startswith("http://cilogon.org/serverA/users/")
    assert set(userinfo(in_body.json()["access_token"]).json()) == {
        "sub"
    }  # openid only

    cilogon.set_claims("ann", affiliation="faculty@example.edu", given_name=None)
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = requests.post(cilogon.token_url, data={**refresh, **secret}, timeout=5)
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]  # rotated
    assert userinfo(new["access_token"]).json()["affiliation"] == "faculty@example.edu"
    reused = requests.post(cilogon.token_url, data={**refresh, **secret}, timeout=5)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    cilogon.revoke("ann")
    denied = userinfo(new["access_token"])
    assert (
        denied.status_code == 401
        and "invalid_token" in denied.headers["WWW-Authenticate"]
    )
    again = {"grant_type": "refresh_token", "refresh_token": new["refresh_token"]}
    assert requests.post(
        cilogon.token_url, data={**again, **secret}, timeout=5
    ).json() == {
        "error": "invalid_grant",
        "error_description": "invalid refresh",
    }
    wrong = requests.post(
        cilogon.token_url, data={**again, "client_id": "x"}, timeout=5
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


# -- the real authenticators against the fakes ------------------------------------


class _Callback:
    """Just what OAuthenticator.authenticate reads from the oauth_callback handler."""

    def __init__(self, code, verifier):
        self.code, self.verifier = code, verifier

    def get_argument(self, name, default=None):
        return {"code": self.code}.get(name, default)

    def get_state_cookie(self):
        return _serialize_state({"state_id": "s", "code_verifier": self.verifier})


async def login_via(fake, authenticator, account, **params) -> dict:
    verifier, challenge = pkce_pair()
    back = authorize(
        fake,
        account,
        redirect_uri=authenticator.get_callback_url(),
        scope=" ".join(authenticator.scope),
        state="s",
        code_challenge=challenge,
        code_challenge_method="S256",
        **params,
    )
    return await authenticator.authenticate(_Callback(back["code"], verifier))


async def test_github_oauthenticator_against_fake(github):
    teams = [f"org-a:team-{i}" for i in range(120)] + ["org-a:team-x"]
    github.add_user("alice", teams=teams)
    auth = GitHubOAuthenticator(
        github_url=github.url,
        client_id="gh-id",
        client_secret="gh-secret",
        oauth_callback_url=CALLBACK,
        populate_teams_in_auth_state=True,
        scope=["read:org"],
        allowed_organizations={"org-a:team-x"},
    )
    assert auth.github_api == github.url + "/api/v3"
    model = await login_via(github, auth, "alice")
    assert model["name"] == "alice"
    assert len(model["auth_state"]["teams"]) == 121
    assert model["auth_state"]["github_user"]["login"] == "alice"
    assert github.count("/api/v3/user/teams") == 2  # followed Link rel="next"
    membership = "/api/v3/orgs/org-a/teams/team-x/members/alice"
    assert await auth.check_allowed("alice", model)
    assert github.count(membership) == 1
    github.set_teams("alice", teams[:3])
    assert not await auth.check_allowed("alice", model)
    assert github.count(membership) == 2


async def test_github_scope_is_comma_separated_for_oauthenticator(github):
    github.add_user("bob")
    both = GitHubOAuthenticator(
        github_url=github.url,
        client_id="gh-id",
        client_secret="gh-secret",
        oauth_callback_url=CALLBACK,
        scope=["read:org", "user:email"],
    )
    model = await login_via(github, both, "bob")
    # GitHub's "read:org,user:email" is split on spaces by oauthenticator 17.4, so
    # the private email is not fetched when more than one scope is requested
    assert model["auth_state"]["scope"] == ["read:org,user:email"]
    assert model["auth_state"]["github_user"]["email"] is None
    assert github.count("/api/v3/user/emails") == 0
    both.scope = ["user:email"]
    model = await login_via(github, both, "bob")
    assert model["auth_state"]["github_user"]["email"] == "bob@users.example.org"
    assert github.count("/api/v3/user/emails") == 1


async def test_cilogon_oauthenticator_against_fake(cilogon):
    cilogon.add_user("ann", idp=IDP, email="ann@example.edu", eppn="ann@example.edu")
    auth = CILogonOAuthenticator(
        **cilogon.oauthenticator_config(),
        oauth_callback_url=CALLBACK,
        idps={
            IDP: {"username_derivation": {"username_claim": "email"}, "allow_all": True}
        },
        enable_auth_state=True,
    )
    model = await login_via(cilogon, auth, "ann", selected_idp=IDP)
    assert model["name"] == "ann@example.edu"
    assert await auth.check_allowed(model["name"], model)
    assert model["auth_state"]["cilogon_user"]["idp"] == IDP

    class User:
        name = model["name"]
        auth_state = model["auth_state"]

        async def get_auth_state(self):
            return self.auth_state

    user = User()
    cilogon.reset_calls()
    cilogon.set_claims("ann", affiliation="member@example.edu")
    fresh = await auth.refresh_user(user)
    assert fresh["auth_state"]["cilogon_user"]["affiliation"] == "member@example.edu"
    assert cilogon.calls == [("GET", "/oauth2/userinfo")]

    cilogon.expire_access_tokens("ann")
    fresh = await auth.refresh_user(user)  # 401, refresh_token grant, userinfo again
    assert (
        cilogon.count("/oauth2/token") == 1 and cilogon.count("/oauth2/userinfo") == 3
    )
    assert fresh["auth_state"]["refresh_token"] != model["auth_state"]["refresh_token"]

    user.auth_state = fresh["auth_state"]
    cilogon.revoke("ann")
    assert await auth.refresh_user(user) is False
