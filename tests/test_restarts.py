"""The hub always comes back: restarts of real hubs on one database.

Each test keeps one data directory (SQLite database, cookie secret, encrypted
auth_state) across several hub processes, stopped cleanly (SIGTERM) or
crashed (SIGKILL), with users, groups, community-admin roles, API tokens,
auth state and running servers in the database, and with the communities
changed between two starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from demo.services import REPO

from .harness import TEST_SERVICE_SCOPES, RunningHub, running_hub
from .hubclient import wait_until

pytestmark = pytest.mark.e2e

SCOPES = [*TEST_SERVICE_SCOPES, "admin:auth_state"]
DATA = Path(__file__).parent / "data"

#: The demo's communities with ocean-lab renamed, astro-101 removed and a new
#: community for every account of the demo provider; profiles follow.
CHANGED_COMMUNITIES = """
comms = dict(c.Communities.communities)
comms["ocean-lab-2"] = comms.pop("ocean-lab")
del comms["astro-101"]
comms["everyone"] = {"members": [{"provider": "demo"}]}
c.Communities.communities = comms

def _regroup(entry):
    if isinstance(entry, dict):
        out = {k: _regroup(v) for k, v in entry.items()}
        if "allowed_groups" in out:
            out["allowed_groups"] = [
                {"ocean-lab": "ocean-lab-2"}.get(g, g) for g in out["allowed_groups"]
            ]
        return out
    return entry

c.LocalCommunitySpawner.profile_list = [
    _regroup(p)
    for p in c.LocalCommunitySpawner.profile_list
    if p.get("allowed_groups") != ["astro-101"]
]
"""


def user(hub: RunningHub, name: str) -> dict:
    r = hub.api.get(f"/users/{name}", params={"include_stopped_servers": "1"})
    r.raise_for_status()
    return r.json()


def as_user(hub: RunningHub, token: str, path: str) -> requests.Response:
    return requests.get(
        f"{hub.url}/hub/api{path}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )


def sign_in(hub: RunningHub, *names: str) -> None:
    for name in names:
        hub.signed_in(name)


@pytest.fixture(scope="module")
def restarted_hub(tmp_path_factory):
    """One demo hub and its database, restarted by the tests that use it.

    Each test leaves it running on the demo configuration.
    """
    h = RunningHub(tmp_path_factory.mktemp("restarts"), service_scopes=SCOPES)
    yield h.start()
    h.stop()


def assert_demo_state(hub: RunningHub, alice_token: str) -> None:
    carol = user(hub, "carol")
    assert sorted(carol["groups"]) == ["astro-101", "ocean-lab"]
    assert "community-admin-ocean-lab" in carol["roles"]
    assert carol["admin"] is True
    assert carol["auth_state"]["hubext"]["provider"] == "demo"
    assert user(hub, "alice")["groups"] == ["ocean-lab"]
    assert user(hub, "bob")["groups"] == ["astro-101"]
    if alice_token is not None:
        r = as_user(hub, alice_token, "/user")
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "alice"


def test_hub_restarts_with_a_community_admin_in_the_database(restarted_hub):
    """JupyterHub 6.1 raised KeyError 'users' here once a community admin signed in.

    A clean stop (SIGTERM), then a crash (SIGKILL), of the hub with a
    running server; then a clean stop again after new sign-ins.
    """
    h = restarted_hub
    sign_in(h, "carol", "alice", "bob")
    token = h.token_for("alice")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        h.api.request("POST", "/users/alice/server", json={}).raise_for_status()
        h.api.wait_for_server("alice")
        pid = user(h, "alice")["servers"][""]["state"]["pid"]

        h.restart(sig)
        assert_demo_state(h, token)
        server = user(h, "alice")["servers"].get("")
        if sig == signal.SIGTERM:
            # A clean stop stops the servers the hub manages (cleanup_servers).
            assert not server or not server.get("ready")
        else:
            # After a crash the server kept running, and the hub found it again.
            assert server and server["ready"] and server["state"]["pid"] == pid
            r = requests.get(f"{h.url}/user/alice/api", timeout=30)
            assert r.status_code == 200, r.text
    # Sign-in still works for everyone, and again after a further restart.
    sign_in(h, "carol", "alice")
    h.restart(signal.SIGTERM)
    assert_demo_state(h, token)
    assert "KeyError" not in h.log()


def test_running_server_survives_a_restart_when_the_proxy_keeps_running(tmp_path):
    """Local servers survive the hub; with an external proxy so do their routes."""
    auth_token = os.urandom(16).hex()
    os.environ["CONFIGPROXY_AUTH_TOKEN"] = auth_token
    h = RunningHub(
        tmp_path / "h",
        """
        c.JupyterHub.cleanup_servers = False
        c.ConfigurableHTTPProxy.should_start = False
        c.ConfigurableHTTPProxy.auth_token = os.environ["CONFIGPROXY_AUTH_TOKEN"]
        """,
        service_scopes=SCOPES,
    )
    env = h.env
    env.proxy_auth_token = auth_token  # the hub's environment: the proxy's token
    # An external proxy, as z2jh runs it: started before the hub, outlives it.
    proxy = subprocess.Popen(
        [
            str(REPO / "node_modules" / ".bin" / "configurable-http-proxy"),
            "--ip=127.0.0.1",
            f"--port={env.port}",
            "--api-ip=127.0.0.1",
            f"--api-port={env.proxy_api_port}",
            f"--default-target=http://127.0.0.1:{env.hub_port}",
            f"--error-target=http://127.0.0.1:{env.hub_port}/hub/error",
        ],
        env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": auth_token},
        stdout=open(tmp_path / "proxy.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _listening(env.proxy_api_port), timeout=30)
        h.start()
        sign_in(h, "alice")
        h.api.request("POST", "/users/alice/server", json={}).raise_for_status()
        h.api.wait_for_server("alice")
        pid = user(h, "alice")["servers"][""]["state"]["pid"]
        h.stop_hub(signal.SIGTERM)
        # The hub is down; the server still answers through the proxy.
        r = requests.get(f"{h.url}/user/alice/api", timeout=30)
        assert r.status_code == 200, r.text
        h.restart_hub()
        server = user(h, "alice")["servers"][""]
        assert server["ready"] and server["state"]["pid"] == pid
        assert requests.get(f"{h.url}/user/alice/api", timeout=30).status_code == 200
    finally:
        h.stop()
        proxy.kill()
        proxy.wait()
        del os.environ["CONFIGPROXY_AUTH_TOKEN"]


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_restart_after_communities_changed(restarted_hub):
    """Removed, renamed and added communities take effect at start-up.

    Nobody keeps a group or role of a removed community; everyone gets the
    renamed and added ones from the identity recorded at their sign-in;
    nobody loses another membership. And back again.
    """
    h = restarted_hub
    sign_in(h, "carol", "alice", "bob")
    h.restart(signal.SIGTERM, extra_config=CHANGED_COMMUNITIES)
    # What changed, and why, is in the hub's log.
    log = h.log().rsplit("===== hub start", 1)[1]
    assert (
        "hubext: 'carol': communities ['astro-101', 'ocean-lab'] -> "
        "['everyone', 'ocean-lab-2'] (current rules, recorded identity)" in log
    )
    assert (
        "hubext: 'carol': community-admin roles set to "
        "['community-admin-ocean-lab-2']" in log
    )
    assert "hubext: removed groups of communities no longer configured: " in log
    assert re.search(
        r"hubext: start-up: communities of 3 users matched against the current "
        r"rules \(new or changed for everyone, ocean-lab-2\) in [0-9.]+ s: "
        r"3 changed \(astro-101 -2, everyone \+3, ocean-lab -2, ocean-lab-2 \+2\)",
        log,
    )
    assert sorted(user(h, "carol")["groups"]) == ["everyone", "ocean-lab-2"]
    assert sorted(user(h, "alice")["groups"]) == ["everyone", "ocean-lab-2"]
    assert user(h, "bob")["groups"] == ["everyone"]
    roles = user(h, "carol")["roles"]
    assert "community-admin-ocean-lab-2" in roles
    assert "community-admin-ocean-lab" not in roles
    groups = {g["name"] for g in h.api.get("/groups").json()}
    assert groups == {"everyone", "ocean-lab-2"}
    assert h.api.get("/roles/community-admin-ocean-lab").status_code == 404
    # The renamed community's admin administers its members at once.
    carol_token = h.token_for("carol")
    assert as_user(h, carol_token, "/users/alice").status_code == 200

    h.restart(signal.SIGKILL, extra_config="")
    assert sorted(user(h, "carol")["groups"]) == ["astro-101", "ocean-lab"]
    assert user(h, "alice")["groups"] == ["ocean-lab"]
    assert user(h, "bob")["groups"] == ["astro-101"]
    assert {g["name"] for g in h.api.get("/groups").json()} == {
        "astro-101",
        "ocean-lab",
    }
    assert "community-admin-ocean-lab" in user(h, "carol")["roles"]
    assert "community-admin-ocean-lab-2" not in user(h, "carol")["roles"]
    assert h.api.get("/roles/community-admin-ocean-lab-2").status_code == 404


def test_database_of_the_previous_release_starts(tmp_path):
    """A database written by hubext 0.1.dev0 (before this change) starts.

    ``tests/data/previous-release/`` holds the database of a demo hub in which
    carol (an ocean-lab admin), alice and bob had signed in and alice had an
    API token, written by the previous release, and the key of its
    encrypted auth_state.
    """
    source = DATA / "previous-release"
    secrets = json.loads((source / "secrets.json").read_text())
    h = RunningHub(tmp_path / "prev", service_scopes=SCOPES)
    h.env.crypt_key = secrets["crypt_key"]
    h.env.data_dir.mkdir(parents=True)
    shutil.copy(source / "jupyterhub.sqlite", h.env.data_dir / "jupyterhub.sqlite")
    h.start()
    try:
        # Everything the previous release stored is there ...
        assert_demo_state(h, None)
        assert "subject" not in user(h, "alice")["auth_state"]["hubext"]
        # ... the accounts are bound to their subjects at their next sign-in
        # (this provider is new: it knows none of the old tokens, and
        # JupyterHub 6.0 refuses API tokens whose owner's refresh failed) ...
        sign_in(h, "carol", "alice")
        assert user(h, "alice")["auth_state"]["hubext"]["subject"] == "alice"
        # ... and alice's API token of the previous release still works.
        assert_demo_state(h, secrets["alice_token"])
        h.restart(signal.SIGTERM)
        sign_in(h, "alice")
        assert_demo_state(h, secrets["alice_token"])
    finally:
        h.stop()


def test_turning_the_restart_workaround_off_is_refused(tmp_path):
    """reset_managed_roles_on_startup=False is refused at start-up, by name."""
    hub = RunningHub(
        tmp_path / "bad",
        "c.CommunityAuthenticator.reset_managed_roles_on_startup = False\n",
    )
    with pytest.raises(RuntimeError):
        hub.start()
    assert (
        "CommunityAuthenticator.reset_managed_roles_on_startup: must be True"
        in hub.log()
    )


DEBUG_DB = "c.JupyterHub.debug_db = True\n"


def startup_statements(hub: RunningHub) -> list[str]:
    """The SQL statements of the hub's last start, until it answered
    (``debug_db``: SQLAlchemy logs each, an executemany once)."""
    start = hub.log().rsplit("===== hub start", 1)[1]
    before = start.split("JupyterHub is now running", 1)[0]
    statements = re.findall(
        r"INFO sqlalchemy\.engine\.Engine ((?:SELECT|INSERT|UPDATE|DELETE)\b.*)",
        before,
    )
    # JupyterHub rewrites the user role's scopes when the order of its
    # extra_user_scopes (a set) differs from the last start's: not ours.
    return [s for s in statements if not s.startswith("UPDATE roles SET scopes")]


def add_people_like(hub: RunningHub, model: str, names: list[str]) -> None:
    """New users whose recorded identity is ``model``'s but for name and subject."""
    state = user(hub, model)["auth_state"]
    hub.api.request("POST", "/users", json={"usernames": names}).raise_for_status()
    for name in names:
        record = dict(state["hubext"])
        record.update(subject=name, provider_username=name)
        record["atoms"] = [
            ["username", name] if key == "username" else [key, value]
            for key, value in record["atoms"]
        ]
        hub.api.request(
            "PATCH", f"/users/{name}", json={"auth_state": {**state, "hubext": record}}
        ).raise_for_status()


def test_a_start_does_the_same_database_work_for_3_or_23_people(tmp_path):
    """Start-up reads every recorded identity in one query and writes the
    differences in bulk when the communities' rules changed, and reads none
    when they did not: the hub runs the same SQL statements with 3 or 23
    users (hubext 0.1 looked each person's communities up one by one)."""
    h = RunningHub(tmp_path / "h", DEBUG_DB, service_scopes=SCOPES).start()
    try:
        sign_in(h, "carol", "alice", "bob")
        counts = {}
        for people in (3, 23):
            if people == 23:
                add_people_like(h, "alice", [f"alice-{i:02d}" for i in range(20)])
            h.restart(signal.SIGTERM, extra_config=DEBUG_DB + CHANGED_COMMUNITIES)
            changed = startup_statements(h)
            assert (
                f"hubext: start-up: communities of {people} users matched"
                in (h.log().rsplit("===== hub start", 1)[1])
            )
            h.restart(signal.SIGTERM)
            unchanged = startup_statements(h)
            assert "no identity read" in h.log().rsplit("===== hub start", 1)[1]
            counts[people] = (changed, unchanged)
            h.restart(signal.SIGTERM, extra_config=DEBUG_DB)  # back to the demo's
        assert sorted(user(h, "alice-07")["groups"]) == ["ocean-lab"]
        changed_3, unchanged_3 = counts[3]
        changed_23, unchanged_23 = counts[23]
        assert len(changed_23) == len(changed_3), (changed_3, changed_23)
        assert len(unchanged_23) == len(unchanged_3), (unchanged_3, unchanged_23)
        # the identities are read (in one query) only when the rules changed
        identities = "SELECT users.id, users.name, users.encrypted_auth_state "
        assert changed_23.count(identities) == 1
        assert identities not in unchanged_23
    finally:
        h.stop()


#: The demo's communities with ocean-lab renamed (and nothing else).
RENAMED_OCEAN_LAB = (
    CHANGED_COMMUNITIES.replace(
        'comms["everyone"] = {"members": [{"provider": "demo"}]}\n', ""
    )
    .replace('del comms["astro-101"]\n', "")
    .replace('if p.get("allowed_groups") != ["astro-101"]', "")
)


def test_who_left_every_community_gets_nothing_back_when_the_rules_change(
    tmp_path_factory,
):
    """Leaving every community (found at a refresh) is recorded: a later start
    with other rules matches what the provider said then, not before."""
    config = (
        "c.CommunityAuthenticator.admin_users = set()\n"
        "c.CommunityAuthenticator.auth_refresh_age = 1\n"
    )
    accounts = {"lea": {"preferred_username": "lea", "groups": ["ocean-lab"]}}
    with running_hub(tmp_path_factory, "left", config, accounts) as h:
        person = h.signed_in("lea")
        assert user(h, "lea")["groups"] == ["ocean-lab"]
        h.idp_control(
            "PUT", "accounts/lea", json={"preferred_username": "lea", "groups": []}
        )
        time.sleep(1.5)  # past auth_refresh_age: the next request refreshes
        assert person.api("GET", "/user").status_code == 403
        assert user(h, "lea")["groups"] == []
        h.restart(signal.SIGTERM, extra_config=config + RENAMED_OCEAN_LAB)
        assert user(h, "lea")["groups"] == []
        assert ["group", "ocean-lab"] not in (
            user(h, "lea")["auth_state"]["hubext"]["atoms"]
        )
