"""The demo configuration end to end: sign in, start a server, use it, stop it."""

from __future__ import annotations

import re

import pytest

from .hubclient import wait_until

pytestmark = pytest.mark.e2e


def test_login_spawn_use_stop(demo_hub):
    person = demo_hub.session()
    r = person.login("demo", "alice")
    assert r.status_code == 302, r.text[:500]

    user = demo_hub.api.user("alice")
    assert user["groups"] == ["ocean-lab"]
    assert not user["admin"]

    # Start the server as the person does: the spawn page shows the options
    # of her community, with its default profile selected.
    page = person.spawn_form()
    assert page.status_code == 200
    assert "Standard environment" in page.text and "Ocean model run" in page.text
    assert "Astronomy 101 workshop" not in page.text
    assert re.search(r'value="ocean-model"\s+checked', page.text)
    r = person.submit_spawn_form(
        {"profile": "ocean-model", "profile-option-ocean-model--dataset": "sst"}
    )
    assert r.status_code == 302, r.text[:500]
    assert r.headers["Location"].endswith("/hub/spawn-pending/alice")
    demo_hub.api.wait_for_server("alice", timeout=60)

    # Open the server as a browser does: the server's OAuth handshake with
    # the hub sets its cookie. Then its API answers to that cookie alone.
    r = person.get("/user/alice/")
    assert r.status_code == 200, (r.url, r.text[:300])
    assert r.url.startswith(f"{demo_hub.url}/user/alice/lab")
    r = person.get("/user/alice/api/status")
    assert r.status_code == 200, (r.url, r.text[:300])
    assert r.url.endswith("/user/alice/api/status")
    assert "started" in r.json()

    # Her community's shared folder is linked into her home. The demo runs
    # every server as one system user: linked, not enforced.
    r = person.get("/user/alice/api/contents/shared/ocean-lab")
    assert r.status_code == 200, r.text[:300]
    assert [entry["name"] for entry in r.json()["content"]] == ["datasets"]
    assert (demo_hub.env.data_dir / "shared" / "ocean-lab" / "datasets").is_dir()
    assert not (demo_hub.env.data_dir / "shared" / "astro-101").exists()

    # Another person's cookie does not reach it.
    other = demo_hub.session()
    assert other.login("demo", "bob").status_code == 302
    r = other.get("/user/alice/api/status")
    assert r.status_code in (403, 404) or "/user/alice/" not in r.url

    r = demo_hub.api.request("DELETE", "/users/alice/server")
    assert r.status_code in (202, 204)
    demo_hub.api.wait_for_server("alice", ready=False, timeout=30)
    assert (
        person.get("/user/alice/api/status", allow_redirects=False).status_code != 200
    )

    # JupyterLab's Node helpers ran cleanly in her server: the repository's
    # package.json does not turn the virtualenv's .js files into ES modules.
    log = demo_hub.log()
    assert "Fail to get yarn configuration" not in log
    assert "Dynamic require of" not in log
    assert max(len(line) for line in log.splitlines()) < 2000


def test_person_in_no_community_is_refused_with_reason(demo_hub):
    r = demo_hub.session().login("demo", "dave")
    assert r.status_code == 403
    assert "does not belong to any community" in r.text
    assert demo_hub.api.get("/users/dave").status_code == 404


def test_community_admin_claim_and_hub_admin(demo_hub):
    r = demo_hub.session().login("demo", "carol")
    assert r.status_code == 302
    carol = demo_hub.api.user("carol")
    assert sorted(carol["groups"]) == ["astro-101", "ocean-lab"]
    assert carol["admin"] is True


def test_login_page_has_one_button_per_provider(demo_hub):
    r = demo_hub.session().get("/hub/login")
    assert r.status_code == 200
    assert r.text.count('class="btn btn-jupyter btn-lg hubext-provider"') == 1
    assert 'href="/hub/demo/oauth_login?next=' in r.text
    assert "Sign in with the demo identity provider" in r.text


def test_the_demo_shows_limits_and_records_what_servers_request(demo_hub):
    # bob's workshop: one server each and a monthly budget, shown on the form
    bob = demo_hub.session()
    assert bob.login("demo", "bob").status_code == 302
    form = bob.spawn_form().text
    for line in (
        "You: 0 of 1 server charged to Astronomy 101 (workshop).",
        "Astronomy 101 (workshop): 0.0 of 100 server-hours used this month.",
        "You: 0.0 of 10 server-hours used this month.",
    ):
        assert line in form, form
    # alice's lab: CPUs and memory in all
    alice = demo_hub.session()
    assert alice.login("demo", "alice").status_code == 302
    assert "Ocean Modelling Lab: " in alice.spawn_form().text
    assert " of 16 CPUs requested by running servers." in alice.spawn_form().text

    r = bob.submit_spawn_form({"profile": "astro-workshop"})
    assert r.status_code == 302, r.text[:500]
    demo_hub.api.wait_for_server("bob", timeout=60)
    # the ledger records what the profile requests: the usage page's CPU-
    # and GiB-hours are not zero
    assert wait_until(
        lambda: [r for r in demo_hub.ledger_rows() if r["username"] == "bob"]
    )
    (session,) = [r for r in demo_hub.ledger_rows() if r["username"] == "bob"]
    assert session["community"] == "astro-101"
    assert session["profile"] == "astro-workshop"
    assert session["cpu_request"] == 0.5
    assert session["mem_request"] == 2**30
    r = demo_hub.api.request("DELETE", "/users/bob/server")
    assert r.status_code in (202, 204)
    demo_hub.api.wait_for_server("bob", ready=False, timeout=30)


#: Lines a hub admin would read as problems, which were noise: the proxy
#: asked for the hub before routing to it (at start-up), and roles JupyterHub
#: re-created with no scopes at each sign-in.
NOISE = ("404 GET /hub/login", "Failed to get custom error page", "will have no scopes")


def test_start_and_sign_ins_log_nothing_to_act_on(demo_hub):
    # a hub admin who is a community admin, a member, and a refused person
    for account in ("carol", "alice", "bob"):
        assert demo_hub.session().login("demo", account).status_code == 302
    assert demo_hub.session().login("demo", "dave").status_code == 403
    log = demo_hub.log()
    assert "JupyterHub is now running" in log
    assert [line for line in log.splitlines() if any(n in line for n in NOISE)] == []
    # the proxy logged no error at all
    assert [
        line for line in log.splitlines() if "[ConfigProxy]" in line and "error" in line
    ] == []
