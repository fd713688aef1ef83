"""One person, one account: no identity can take over another hub account.

Real hub, real OpenID Connect provider(s). Covers usernames equal after
normalization (case, compatibility characters), another subject at the same
provider, another provider mapping to the same username, the credentials of
a person who left every community (API tokens, named servers, sessions), and
the refusal page (403 with its message once, reloadable, a way out).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from demo.services import IDP_SCRIPT, free_port, stop_process, wait_for_http

from .harness import running_hub
from .hubclient import wait_until

pytestmark = pytest.mark.e2e

ACCOUNTS = {
    "kim": {"preferred_username": "kim", "groups": ["ocean-lab", "ocean-lab-admins"]},
    # Other people whose provider usernames normalize to "kim".
    "kim-upper": {"preferred_username": "KIM", "groups": ["astro-101"]},
    "kim-kelvin": {"preferred_username": "\u212aim", "groups": ["astro-101"]},
    "kim-fullwidth": {"preferred_username": "\uff4b\uff49\uff4d", "groups": []},
    # The same username as kim, another subject (a released, re-registered name).
    "kim-again": {"sub": "someone-else", "preferred_username": "kim", "groups": []},
    "lea": {"preferred_username": "lea", "groups": ["ocean-lab"]},
    "blocked": {"preferred_username": "blocked", "groups": ["ocean-lab"]},
    "odd": {"preferred_username": "odd-one", "groups": ["ocean-lab"]},
    "nobody": {"preferred_username": "nobody", "groups": []},
}

CONFIG = """
c.CommunityAuthenticator.admin_users = set()
c.CommunityAuthenticator.auth_refresh_age = 1
c.CommunityAuthenticator.blocked_users = {"blocked"}
c.CommunityAuthenticator.username_pattern = r"[a-z][a-z0-9]*"
c.JupyterHub.allow_named_servers = True
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory, "accounts", CONFIG, ACCOUNTS) as hub:
        yield hub


@pytest.mark.parametrize(
    "account", ["kim-upper", "kim-kelvin", "kim-fullwidth", "kim-again"]
)
def test_no_sign_in_as_an_account_bound_to_another_person(hub, account):
    hub.signed_in("kim")
    kim = hub.api.user("kim")
    r = hub.session().login("demo", account)
    assert r.status_code == 403, r.text[:300]
    assert "cannot be used with this" in r.text
    # kim's account, communities and admin role are untouched.
    after = hub.api.user("kim")
    assert after["groups"] == kim["groups"] == ["ocean-lab"]
    assert "community-admin-ocean-lab" in after["roles"]
    assert "account bound to another identity" in hub.log()
    # and kim still signs in
    hub.signed_in("kim")


def test_blocked_user_gets_the_403_page(hub):
    r = hub.session().login("demo", "blocked")
    assert r.status_code == 403
    assert "not allowed to use this hub" in r.text


def test_username_pattern_refusal_is_a_403_with_the_reason(hub):
    r = hub.session().login("demo", "odd")
    assert r.status_code == 403
    assert "odd-one" in r.text and "does not accept" in r.text


def test_refusal_page_shows_its_message_once_and_reloads(hub):
    person = hub.session()
    r = person.login("demo", "nobody")
    assert r.status_code == 403
    message = "does not belong to any community"
    assert r.text.count(message) == 1
    assert "403 : Forbidden" in r.text
    assert "Sign in with another account" in r.text
    again = person.get("/hub/hubext/refused", allow_redirects=False)
    assert again.status_code == 403 and again.text.count(message) == 1
    # The refusal logs one line, no traceback.
    assert "Traceback" not in hub.log()


def test_leaving_every_community_ends_every_credential(hub):
    person = hub.signed_in("lea")
    token = hub.token_for("lea")
    api = requests.Session()
    api.headers["Authorization"] = f"token {token}"
    url = f"{hub.url}/hub/api"
    assert api.get(f"{url}/user", timeout=30).status_code == 200
    for name in ("", "second"):
        r = api.post(f"{url}/users/lea/servers/{name}", json={}, timeout=60)
        assert r.status_code in (201, 202), r.text
    for name in ("", "second"):  # both start at once
        assert wait_until(
            lambda n=name: hub.api.user("lea")["servers"].get(n, {}).get("ready"),
            timeout=60,
        )

    hub.idp_control(
        "PUT", "accounts/lea", json={"preferred_username": "lea", "groups": []}
    )
    time.sleep(1.5)  # past auth_refresh_age: the next request refreshes
    # The token is the first to notice: it can do nothing from now on (the
    # request that triggers the refresh included) ...
    r = api.post(f"{url}/users/lea/servers/third", json={}, timeout=30)
    assert r.status_code == 403, r.text
    assert api.get(f"{url}/user", timeout=30).status_code == 403
    assert api.get(f"{url}/users/lea", timeout=30).status_code == 403
    # ... and so does every other credential: the browser session, the
    # servers (named ones too), the other tokens.
    assert person.api("GET", "/user").status_code == 403
    assert wait_until(
        lambda: (
            not any(
                s.get("ready") or s.get("pending")
                for s in hub.api.user("lea")["servers"].values()
            )
        ),
        timeout=30,
    )
    lea = hub.api.user("lea")
    assert lea["groups"] == [] and lea["roles"] == []
    # Ended quietly: no "Failed to get current user" traceback in the hub log.
    assert "Traceback" not in hub.log()
    tokens = hub.api.get("/users/lea/tokens").json()
    assert tokens["api_tokens"] == [] and tokens.get("oauth_tokens", []) == []
    # Back in a community: a new sign-in works, with new credentials.
    hub.idp_control(
        "PUT",
        "accounts/lea",
        json={"preferred_username": "lea", "groups": ["ocean-lab"]},
    )
    hub.signed_in("lea")
    assert hub.api.user("lea")["groups"] == ["ocean-lab"]


def test_another_provider_cannot_take_an_account(tmp_path_factory, tmp_path):
    """Two providers with username_template "{username}": first come, only one served."""
    idp2_port = free_port()
    config = f"""
c.CommunityAuthenticator.admin_users = set()
p = dict(c.CommunityAuthenticator.providers["demo"])
p["config"] = dict(p["config"])
for key in ("authorize_url", "token_url", "userdata_url"):
    p["config"][key] = p["config"][key].replace(
        os.environ["HUBEXT_DEMO_IDP_URL"], "http://127.0.0.1:{idp2_port}"
    )
p["display_name"] = "the second provider"
c.CommunityAuthenticator.providers["second"] = p
"""
    accounts = {"alice": {"preferred_username": "alice", "groups": ["ocean-lab"]}}
    with running_hub(tmp_path_factory, "two-providers", config, accounts) as hub:
        accounts_file = tmp_path / "accounts.json"
        accounts_file.write_text(json.dumps(accounts))
        env = hub.env.env()
        idp2 = subprocess.Popen(
            [
                "node",
                str(IDP_SCRIPT),
                "--port",
                str(idp2_port),
                "--redirect-uri",
                f"{hub.url}/hub/second/oauth_callback",
                "--accounts",
                str(accounts_file),
            ],
            env=env,
            stdout=open(tmp_path / "idp2.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_http(
                f"http://127.0.0.1:{idp2_port}/.well-known/openid-configuration",
                30,
                idp2,
            )
            r = hub.session().login("demo", "alice")
            assert r.status_code == 302
            r = hub.session().login("second", "alice")
            assert r.status_code == 403, r.text[:300]
            assert "signs in through another provider" in r.text
            assert hub.api.user("alice")["groups"] == ["ocean-lab"]
        finally:
            stop_process(idp2, timeout=5)


def test_signing_out_ends_the_provider_session_too(hub):
    """With end_session_url, the next sign-in in the same browser can be another account."""
    from urllib.parse import parse_qs, urljoin, urlsplit

    from .fakes.browser import parse_form

    person = hub.signed_in("lea")
    r = person.get("/hub/logout", allow_redirects=False)
    assert r.status_code == 302
    end_session = r.headers["Location"]
    assert end_session.startswith(f"{hub.env.idp_url}/session/end?")
    query = parse_qs(urlsplit(end_session).query)
    assert query["post_logout_redirect_uri"] == [f"{hub.url}/hub/login"]
    assert query["client_id"] == ["hubext-demo"]
    assert query["id_token_hint"][0].count(".") == 2  # a JWT
    # The provider's confirmation page (submitted by its script in a browser).
    page = person.session.get(end_session, timeout=30)
    action, fields = parse_form(page.text)
    r = person.session.post(
        urljoin(page.url, action),
        data={**fields, "logout": "yes"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.headers["Location"] == f"{hub.url}/hub/login"
    # The hub session is over, and the provider asks who signs in next.
    assert person.api("GET", "/user").status_code == 403
    r = person.login("demo", "kim")
    assert r.status_code == 302
    assert person.api("GET", "/user").json()["name"] == "kim"
