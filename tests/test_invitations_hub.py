"""Invitations through a real hub and the real OIDC provider (demo/idp.mjs).

A community admin makes a join code through the REST API; people join on
the join page (a GET shows the community and changes nothing, a confirmed
POST with the hub's XSRF check joins), signed in or signing in on the way;
the uses are counted; cross-site and replayed attempts get nothing; the
membership survives a restart and a refresh from the provider; a removal
and an end date take the community away with no sign-in, stopping the
servers charged to it and, with no community left, every credential.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import pytest
import requests

from .harness import running_hub
from .hubclient import HubSession, wait_until

pytestmark = pytest.mark.e2e

CONFIG = """
c.JupyterHub.custom_scopes.update(
    {"custom:hubext-console:admin": {"description": "change a community"}}
)
c.CommunityAuthenticator.admin_users = set()
comms = dict(c.Communities.communities)
comms["ocean-lab"] = {
    **comms["ocean-lab"],
    "self_service": {"invitations": {"max_uses": 300, "max_days": 30}},
}
c.Communities.communities = comms
c.CommunityAuthenticator.auth_refresh_age = 1
"""

ACCOUNTS = {
    "lead": {"preferred_username": "lead", "groups": ["ocean-lab", "ocean-lab-admins"]},
    "alice": {"preferred_username": "alice", "groups": ["ocean-lab"]},
    "bob": {"preferred_username": "bob", "groups": ["astro-101"]},
    "dave": {"preferred_username": "dave", "email": "x@example.org", "groups": []},
    "erin": {"preferred_username": "erin", "groups": []},
    "finn": {"preferred_username": "finn", "groups": []},
    "gus": {"preferred_username": "gus", "groups": ["astro-101"]},
    "hana": {"preferred_username": "hana", "groups": []},
}


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def _invite(lead: HubSession, **body) -> dict:
    r = lead.api("POST", "/hubext/communities/ocean-lab/invitations", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _xsrf(page: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', page) or re.search(
        r'xsrf_token: "([^"]+)"', page
    )
    assert match, page[:500]
    return match[1]


def _join_page(person: HubSession, code: str) -> requests.Response:
    return person.get("/hub/hubext/join", params={"code": code})


def _confirm(person: HubSession, code: str) -> requests.Response:
    page = _join_page(person, code)
    assert page.status_code == 200, page.text[:500]
    return person.session.post(
        urljoin(person.hub_url, "/hub/hubext/join"),
        data={"_xsrf": _xsrf(page.text), "code": code},
        allow_redirects=False,
        timeout=60,
    )


def _sign_in_and_join(hub, account: str, code: str) -> tuple[HubSession, str]:
    """A person not signed in confirms on the join page, then signs in."""
    person = hub.session()
    page = _join_page(person, code)
    assert page.status_code == 200, page.text[:500]
    assert "Ocean" in page.text and 'data-provider="demo"' in page.text
    r = person.session.post(
        urljoin(hub.url, "/hub/hubext/join"),
        data={"_xsrf": _xsrf(page.text), "code": code, "provider": "demo"},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code == 302, r.text[:300]
    assert "/hub/demo/oauth_login" in r.headers["Location"]
    assert code not in r.headers["Location"]
    r = person.login(None, account, login_path=r.headers["Location"])
    if r.status_code == 302:
        r = person.get(r.headers["Location"])
    return person, r.text if r.status_code == 200 else f"{r.status_code} {r.text}"


def _groups(hub, name: str) -> list[str]:
    return sorted(hub.api.user(name)["groups"])


def _audit(hub) -> list[tuple[str, str | None]]:
    from sqlalchemy import create_engine, text

    files = list(hub.env.data_dir.rglob("hubext-state.sqlite"))
    engine = create_engine(f"sqlite:///{files[0]}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT action, after FROM hubext_audit ORDER BY seq")
            ).all()
    finally:
        engine.dispose()
    import json

    return [(a, (json.loads(b) or {}).get("result") if b else None) for a, b in rows]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory, "invitations", CONFIG, ACCOUNTS) as h:
        yield h


def test_join_with_a_code_bound_to_the_account(hub):
    lead = hub.signed_in("lead")
    made = _invite(lead, kind="code", max_uses=2, expires_at=_iso(timedelta(days=1)))
    code = made["code"]
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    assert made["invitation"]["uses"] == 0 and "code_hash" not in made["invitation"]
    assert code not in hub.log()

    # dave is in no community: the join page (no state change), then the
    # confirmed sign-in, joins him
    before = len(_audit(hub))
    prefetch = requests.get(made["link"], timeout=30)  # a mail scanner
    assert prefetch.status_code == 200 and "Ocean" in prefetch.text
    assert len(_audit(hub)) == before
    dave, text = _sign_in_and_join(hub, "dave", code)
    assert "You are now a member" in text, text[:800]
    assert _groups(hub, "dave") == ["ocean-lab"]

    # bob (astro-101), signed in: GET shows, nothing changes; POST joins
    bob = hub.signed_in("bob")
    page = _join_page(bob, code)
    assert "Join Ocean" in page.text or "Join " in page.text
    assert _groups(hub, "bob") == ["astro-101"]
    # cross-site: no XSRF token, refused, nothing joined
    forged = bob.session.post(
        urljoin(hub.url, "/hub/hubext/join"), data={"code": code}, timeout=30
    )
    assert forged.status_code == 403
    assert _groups(hub, "bob") == ["astro-101"]
    r = _confirm(bob, code)
    assert r.status_code == 200 and "You are now a member" in r.text, r.text[:500]
    assert _groups(hub, "bob") == ["astro-101", "ocean-lab"]

    # two uses: the third person gets nothing, shown at once
    page = _join_page(hub.session(), code)
    assert page.status_code == 410 and "used as many times as it allows" in page.text
    alice = hub.signed_in("alice")
    form = alice.get("/hub/hubext/join")
    r = alice.session.post(
        urljoin(hub.url, "/hub/hubext/join"),
        data={"_xsrf": _xsrf(form.text), "code": code},
        timeout=30,
    )
    assert r.status_code == 410 and "used as many times" in r.text

    listed = lead.api("GET", "/hubext/communities/ocean-lab/invitations").json()
    [invitation] = listed["invitations"]
    assert invitation["uses"] == 2
    assert [(r["user"], r["result"]) for r in invitation["redeemed_by"]] == [
        ("dave", "joined"),
        ("bob", "joined"),
        ("alice", "used_up"),
    ]
    members = lead.api(
        "GET", "/hubext/communities/ocean-lab/invitations/members"
    ).json()
    sources = {
        m["user"]: [s["source"] for s in m["sources"]] for m in members["members"]
    }
    assert sources["dave"] == ["invitation"] and sources["alice"] == ["provider"]
    actions = _audit(hub)
    assert ("invitation.redeem", "joined") in actions
    assert ("invitation.refuse", "used_up") in actions

    # cross-site, not signed in: no XSRF token, no code kept for a sign-in
    stranger = hub.session()
    _join_page(stranger, code)
    r = stranger.session.post(
        urljoin(hub.url, "/hub/hubext/join"),
        data={"code": code, "provider": "demo"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 403 and "hubext-join" not in r.headers.get("Set-Cookie", "")
    # the code is in no log line (the join page's URL is scrubbed)
    assert code not in hub.log() and code.replace("-", "") not in hub.log()

    # the membership is kept across a refresh from the provider and a restart
    time.sleep(1.1)  # auth_refresh_age = 1: the next request refreshes
    assert dave.get("/hub/api/user").status_code == 200
    assert _groups(hub, "dave") == ["ocean-lab"]
    hub.restart()
    assert _groups(hub, "dave") == ["ocean-lab"]
    assert _groups(hub, "bob") == ["astro-101", "ocean-lab"]
    r = hub.session().login("demo", "dave")
    assert r.status_code == 302
    assert _groups(hub, "dave") == ["ocean-lab"]
    # a start with other rules reconciles everyone's communities from their
    # recorded identity: the memberships by invitation are kept
    hub.restart(
        extra_config="""
c.Communities.communities = {
    **c.Communities.communities,
    "new-lab": {"members": [{"provider": "demo", "group": "new-lab"}]},
}
"""
    )
    assert "communities of" in hub.log() and "matched against the current" in hub.log()
    assert _groups(hub, "dave") == ["ocean-lab"]
    assert _groups(hub, "bob") == ["astro-101", "ocean-lab"]
    hub.restart(extra_config="")


def test_a_personal_link_cannot_be_replayed_and_codes_are_not_guessed(hub):
    lead = hub.signed_in("lead")
    made = _invite(lead, kind="personal", expires_at=_iso(timedelta(days=1)))
    _, text = _sign_in_and_join(hub, "finn", made["code"])
    assert "You are now a member" in text
    # replay by someone else, signed in
    bob = hub.signed_in("bob")
    page = _join_page(bob, made["code"])
    assert page.status_code == 410 and "used as many times" in page.text
    # an expired code: refused from its expiry on
    soon = _invite(lead, kind="code", max_uses=5, expires_at=_iso(timedelta(seconds=2)))
    assert _join_page(bob, soon["code"]).status_code == 200
    assert wait_until(
        lambda: _join_page(bob, soon["code"]).status_code == 410, 30, interval=0.5
    )
    assert "expired" in _join_page(bob, soon["code"]).text
    # a revoked code
    revoked = _invite(lead, kind="code", max_uses=5, expires_at=_iso(timedelta(days=1)))
    r = lead.api(
        "DELETE",
        f"/hubext/communities/ocean-lab/invitations/{revoked['invitation']['id']}",
    )
    assert r.status_code == 200 and r.json()["invitation"]["revoked_at"]
    assert _join_page(bob, revoked["code"]).status_code == 410
    # unknown codes: 404, then throttled (429) per account
    statuses = [
        _join_page(bob, f"AAAA-AAAA-AAAA-{n:04d}").status_code for n in range(12)
    ]
    assert statuses[:10] == [404] * 10 and statuses[10:] == [429, 429]
    # even a valid code waits out the throttle
    fresh = _invite(lead, kind="code", max_uses=5, expires_at=_iso(timedelta(days=1)))
    assert _join_page(bob, fresh["code"]).status_code == 429


def test_community_admins_act_on_their_community_only(hub):
    lead = hub.signed_in("lead")
    r = lead.api("GET", "/hubext/communities/astro-101/invitations")
    assert r.status_code == 404
    r = lead.api(
        "POST",
        "/hubext/communities/astro-101/invitations",
        json={"kind": "code", "max_uses": 1, "expires_at": _iso(timedelta(days=1))},
    )
    assert r.status_code == 404
    alice = hub.signed_in("alice")  # a member, not an admin
    r = alice.api("GET", "/hubext/communities/ocean-lab/invitations")
    assert r.status_code in (403, 404)
    # outside the bounds: the field and the bound
    r = lead.api(
        "POST",
        "/hubext/communities/ocean-lab/invitations",
        json={"kind": "code", "max_uses": 301, "expires_at": _iso(timedelta(days=1))},
    )
    assert r.status_code == 400 and "max_uses" in r.json()["message"]
    # a member through the provider's claims is governed by the rules
    r = lead.api("DELETE", "/hubext/communities/ocean-lab/members/alice")
    assert r.status_code == 409 and "rules" in r.json()["message"]


def test_removal_and_end_date_take_effect_without_sign_in(hub):
    lead = hub.signed_in("lead")
    made = _invite(lead, kind="code", max_uses=2, expires_at=_iso(timedelta(days=1)))
    r = _confirm(hub.signed_in("gus"), made["code"])
    assert "You are now a member" in r.text
    hana, text = _sign_in_and_join(hub, "hana", made["code"])
    assert "You are now a member" in text
    # gus runs a server charged to ocean-lab, which he is in by invitation
    assert _groups(hub, "gus") == ["astro-101", "ocean-lab"]
    r = hub.api.request("POST", "/users/gus/server", json={"profile": "ocean-model"})
    assert r.status_code in (201, 202), r.text
    hub.api.wait_for_server("gus")
    hana_token = hub.token_for("hana")
    r = lead.api("DELETE", "/hubext/communities/ocean-lab/members/gus")
    assert r.status_code == 204, r.text
    r = lead.api("DELETE", "/hubext/communities/ocean-lab/members/hana")
    assert r.status_code == 204, r.text
    assert wait_until(lambda: _groups(hub, "gus") == ["astro-101"], 60)
    assert wait_until(lambda: not hub.api.user("gus")["servers"], 60)
    # hana is in no community any more: every credential ends
    assert _groups(hub, "hana") == []
    r = requests.get(
        f"{hub.url}/hub/api/user",
        headers={"Authorization": f"token {hana_token}"},
        timeout=30,
    )
    assert r.status_code == 403
    assert hana.get("/hub/api/user").status_code == 403
    stops = [row for row in hub.ledger_rows() if row["username"] == "gus"]
    assert stops and stops[-1]["end_reason"] == "stopped_by_admin", stops
    assert [a for a, _ in _audit(hub)].count("membership.remove") == 2
    # removing again: no such member
    r = lead.api("DELETE", "/hubext/communities/ocean-lab/members/hana")
    assert r.status_code == 404

    # an end date: the membership ends with no sign-in, within 60 s
    made = _invite(
        lead,
        kind="code",
        max_uses=1,
        expires_at=_iso(timedelta(seconds=20)),
        membership_ends_at=_iso(timedelta(seconds=25)),
    )
    erin, text = _sign_in_and_join(hub, "erin", made["code"])
    assert "You are now a member" in text and "membership ends" in text
    assert _groups(hub, "erin") == ["ocean-lab"]
    assert erin.get("/hub/api/user").status_code == 200
    assert wait_until(lambda: _groups(hub, "erin") == [], 60)
    assert "membership.end" in [a for a, _ in _audit(hub)]
    # in no community any more: signed out
    assert erin.get("/hub/api/user").status_code == 403


def test_the_same_email_at_another_provider_gets_nothing(tmp_path_factory, tmp_path):
    """An invitation is bound to the hub account, itself bound to one
    provider's subject: another provider's account with the same email
    (and even the same username) is not a member."""
    import json
    import subprocess

    from demo.services import IDP_SCRIPT, free_port, stop_process, wait_for_http

    idp2_port = free_port()
    config = (
        CONFIG
        + f"""
p = dict(c.CommunityAuthenticator.providers["demo"])
p["config"] = dict(p["config"])
for key in ("authorize_url", "token_url", "userdata_url"):
    p["config"][key] = p["config"][key].replace(
        os.environ["HUBEXT_DEMO_IDP_URL"], "http://127.0.0.1:{idp2_port}"
    )
p["config"].pop("end_session_url", None)
p["display_name"] = "the second provider"
c.CommunityAuthenticator.providers["second"] = p
"""
    )
    same = {"preferred_username": "dave", "email": "dave@ocean.example.org"}
    accounts = {
        "lead": ACCOUNTS["lead"],
        "dave": {**same, "email_verified": True, "groups": []},
    }
    with running_hub(tmp_path_factory, "two-providers", config, accounts) as h:
        accounts_file = tmp_path / "accounts.json"
        accounts_file.write_text(
            json.dumps(
                {
                    "dave": {**same, "email_verified": True, "groups": []},
                    "dave2": {
                        **same,
                        "preferred_username": "dave2",
                        "email_verified": True,
                        "groups": [],
                    },
                }
            )
        )
        idp2 = subprocess.Popen(
            [
                "node",
                str(IDP_SCRIPT),
                "--port",
                str(idp2_port),
                "--redirect-uri",
                f"{h.url}/hub/second/oauth_callback",
                "--accounts",
                str(accounts_file),
            ],
            env=h.env.env(),
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
            lead = h.signed_in("lead")
            made = _invite(
                lead, kind="code", max_uses=5, expires_at=_iso(timedelta(days=1))
            )
            _, text = _sign_in_and_join(h, "dave", made["code"])
            assert "You are now a member" in text
            assert _groups(h, "dave") == ["ocean-lab"]
            # the same email and username at the second provider: refused
            # (the account is bound to the first provider's subject), and
            # the membership stays with the first provider's account
            r = h.session().login("second", "dave")
            assert r.status_code == 403, r.text[:300]
            assert "another provider" in r.text
            assert _groups(h, "dave") == ["ocean-lab"]
            # another account with the same email: in no community
            r = h.session().login("second", "dave2")
            assert r.status_code == 403 and "any community" in r.text, r.text[:300]
            r = h.api.request("GET", "/users/dave2")
            assert r.status_code == 404 or r.json()["groups"] == []
            user = h.api.request(
                "GET", "/users/dave", params={"include_stopped_servers": "1"}
            ).json()
            assert user["name"] == "dave"
        finally:
            stop_process(idp2, timeout=5)
