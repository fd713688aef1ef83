"""Every server session in the usage ledger, from a real hub (hubext-local).

One hub, the demo's communities and profiles, polls every second. Sessions
are started and ended through the hub's REST API by their users, an admin,
a service, a culler service; a server is killed behind the hub's back; a
start fails; the hub crashes with a server running and comes back. Each time
the ledger (the default SQLite file beside the hub's database) must hold the
community charged, the options, the resources and how the session ended.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

import pytest

from .harness import running_hub
from .hubclient import wait_until

pytestmark = pytest.mark.e2e

ACCOUNTS = {
    "alice": {"preferred_username": "alice", "groups": ["ocean-lab"]},
    "cy": {"preferred_username": "cy", "groups": ["astro-101", "ocean-lab"]},
    "root": {"preferred_username": "root", "groups": ["astro-101"]},
    "dee": {"preferred_username": "dee", "groups": ["astro-101", "ocean-lab"]},
}

CULLER_TOKEN = secrets.token_hex(32)
OTHER_TOKEN = secrets.token_hex(32)

CONFIG = f"""
c.CommunityAuthenticator.admin_users = {{"root"}}
c.LocalCommunitySpawner.poll_interval = 1
c.UsageLedger.culler_services = ["test-culler"]
c.Communities.communities["blue-team"] = {{
    "members": [{{"provider": "demo", "group": "blue-team"}}],
}}
for name, token, scopes in [
    ("test-culler", {CULLER_TOKEN!r}, ["delete:servers", "list:users"]),
    ("test-other", {OTHER_TOKEN!r}, ["delete:servers", "list:users"]),
]:
    c.JupyterHub.services.append({{"name": name, "api_token": token}})
    c.JupyterHub.load_roles.append(
        {{"name": name, "scopes": scopes, "services": [name]}}
    )
c.LocalCommunitySpawner.profile_list.append(
    {{
        "display_name": "Sized",
        "slug": "sized",
        "kubespawner_override": {{"mem_limit": "2G", "cpu_limit": 1.5}},
    }}
)
c.LocalCommunitySpawner.profile_list.append(
    {{
        "display_name": "Broken",
        "slug": "broken",
        "kubespawner_override": {{"cmd": ["/nonexistent/jupyterhub-singleuser"]}},
    }}
)
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory, "usage-rec", CONFIG, ACCOUNTS) as hub:
        hub.people = {name: hub.signed_in(name) for name in ACCOUNTS}
        yield hub


def sessions_of(hub, user: str) -> list[dict]:
    return [r for r in hub.ledger_rows() if r["username"] == user]


def wait_for_rows(hub, user: str, count: int, ended: bool = True) -> list[dict]:
    def done():
        rows = sessions_of(hub, user)
        return len(rows) >= count and (
            not ended or all(r["stopped_at"] is not None for r in rows[:count])
        )

    assert wait_until(done, timeout=30), sessions_of(hub, user)
    return sessions_of(hub, user)


def start(hub, user: str, options: dict, token: str | None = None):
    person = hub.people[user]
    r = person.api("POST", f"/users/{user}/server", json=options)
    return r


def start_ready(hub, user: str, options: dict) -> None:
    r = start(hub, user, options)
    assert r.status_code in (201, 202), (r.status_code, r.text)
    hub.api.wait_for_server(user)


def stop_with(hub, user: str, token: str | None) -> None:
    if token is None:
        r = hub.people[user].api("DELETE", f"/users/{user}/server")
    else:
        import requests

        r = requests.delete(
            f"{hub.url}/hub/api/users/{user}/server",
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )
    assert r.status_code in (202, 204), (r.status_code, r.text)
    hub.api.wait_for_server(user, ready=False)


def test_charged_to_first_community_in_registry_order(hub):
    # cy is in astro-101 and ocean-lab; the registry lists ocean-lab first
    start_ready(hub, "cy", {"profile": "standard"})
    stop_with(hub, "cy", None)
    (row,) = wait_for_rows(hub, "cy", 1)
    assert row["community"] == "ocean-lab"
    assert row["profile"] == "standard"
    assert row["end_reason"] == "stopped_by_user"
    assert row["server_name"] == ""
    assert row["stopped_at"] >= row["started_at"]


def test_chosen_community_is_charged_and_admin_stop_recorded(hub):
    start_ready(hub, "cy", {"profile": "standard", "community": "astro-101"})
    server = hub.api.user("cy")["servers"][""]
    assert server["user_options"]["community"] == "astro-101"
    stop_with(hub, "cy", hub.token)  # the suite's own service: an admin
    rows = wait_for_rows(hub, "cy", 2)
    assert rows[1]["community"] == "astro-101"
    assert rows[1]["end_reason"] == "stopped_by_admin"


@pytest.mark.parametrize(
    ("options", "status", "words"),
    [
        pytest.param(
            {"profile": "standard", "community": "nope"},
            400,
            "There is no community 'nope'",
            id="unknown",
        ),
        pytest.param(
            {"profile": "standard", "community": "blue-team"},
            403,
            "not a member of the community 'blue-team'",
            id="not-member",
        ),
        pytest.param(
            # 8 threads are Ocean Lab's: astro-101 does not offer them
            {"profile": "standard", "threads": "8", "community": "astro-101"},
            403,
            "'astro-101' does not offer these server options",
            id="not-offered",
        ),
        pytest.param(
            {"profile": "standard", "community": ["ocean-lab"]},
            400,
            "'community' must be a string",
            id="not-a-string",
        ),
    ],
)
def test_bad_community_is_refused_before_start(hub, options, status, words):
    r = start(hub, "dee", options)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]
    assert hub.api.user("dee")["servers"] == {}
    assert sessions_of(hub, "dee") == []


def test_the_form_offers_a_choice_of_community_only_where_several_pay(hub):
    page = hub.people["cy"].spawn_form().text
    # standard: both communities offer it; ocean-model: only ocean-lab
    assert 'name="profile-option-standard--community"' in page
    assert "Usage charged to" in page
    assert 'name="profile-option-ocean-model--community"' not in page
    page = hub.people["alice"].spawn_form().text
    assert "--community" not in page


def test_form_submission_charges_the_chosen_community(hub):
    r = hub.people["dee"].submit_spawn_form(
        {
            "profile": "standard",
            "profile-option-standard--threads": "1",
            "profile-option-standard--community": "astro-101",
        }
    )
    assert r.status_code in (200, 302), r.text[:500]
    hub.api.wait_for_server("dee")
    stop_with(hub, "dee", CULLER_TOKEN)
    (row,) = wait_for_rows(hub, "dee", 1)
    assert row["community"] == "astro-101"
    assert row["choices"] == '{"threads": "1"}' or row["choices"] == {"threads": "1"}
    assert row["end_reason"] == "culled"


def test_other_service_and_hub_admin_and_hub_account(hub):
    # root is a hub admin in astro-101 only; ocean-model is ocean-lab's
    start_ready(hub, "root", {"profile": "ocean-model"})
    stop_with(hub, "root", OTHER_TOKEN)
    start_ready(hub, "root", {"profile": "astro-workshop"})
    root_token = hub.token_for("root")
    stop_with(hub, "root", root_token)
    first, second = wait_for_rows(hub, "root", 2)
    assert (first["community"], first["end_reason"]) == ("_hub", "stopped_by_admin")
    assert (second["community"], second["end_reason"]) == (
        "astro-101",
        "stopped_by_user",
    )
    # root stopping someone else's server: an admin
    start_ready(hub, "alice", {"profile": "ocean-model"})
    stop_with(hub, "alice", root_token)
    (row,) = wait_for_rows(hub, "alice", 1)
    assert (row["community"], row["end_reason"]) == ("ocean-lab", "stopped_by_admin")


def test_resources_after_overrides(hub):
    start_ready(hub, "alice", {"profile": "sized"})
    stop_with(hub, "alice", None)
    row = wait_for_rows(hub, "alice", 2)[1]
    assert row["mem_limit"] == 2 * 1024**3  # JupyterHub: G is 1024**3
    assert row["cpu_limit"] == 1.5
    assert row["gpus"] == 0
    assert row["cpu_request"] is None


def _server_pid(user: str) -> int | None:
    """The newest single-user server process of ``user`` (an older one may linger)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            started = int(
                Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[19]
            )
        except (OSError, IndexError, ValueError):
            continue
        if f"JUPYTERHUB_USER={user}".encode() in environ and b"jupyterhub" in cmdline:
            found.append((started, int(entry)))
    return max(found)[1] if found else None


def test_server_that_dies_is_closed_by_poll(hub):
    before = len(sessions_of(hub, "cy"))
    start_ready(hub, "cy", {"profile": "standard"})
    pid = _server_pid("cy")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    rows = wait_for_rows(hub, "cy", before + 1)
    assert rows[before]["end_reason"] == "died"
    # found within a poll interval (1 s) or so of its death
    assert hub.api.wait_for_server("cy", ready=False) == {}


def test_failed_start(hub):
    r = start(hub, "dee", {"profile": "broken"})
    assert r.status_code in (201, 202, 500), r.text
    assert wait_until(lambda: not hub.api.user("dee")["servers"], timeout=30)
    rows = wait_for_rows(hub, "dee", 2)
    assert rows[1]["profile"] == "broken"
    assert rows[1]["end_reason"] == "failed_to_start"


def test_hub_crash_closes_at_last_heartbeat_and_resumes(hub):
    start_ready(hub, "alice", {"profile": "ocean-model"})
    time.sleep(2.5)  # a few heartbeats (poll_interval 1 s)
    before = sessions_of(hub, "alice")
    assert before[-1]["stopped_at"] is None
    assert before[-1]["last_seen_at"] > before[-1]["started_at"]
    hub.stop_hub(signal.SIGKILL)
    hub.restart_hub()
    rows = wait_for_rows(hub, "alice", len(before) + 1, ended=False)
    closed = rows[len(before) - 1]
    assert closed["id"] == before[-1]["id"]
    assert closed["end_reason"] == "hub_restart"
    assert closed["stopped_at"] == closed["last_seen_at"]
    resumed = rows[len(before)]
    assert resumed["community"] == "ocean-lab"
    assert resumed["profile"] == "ocean-model"
    assert resumed["stopped_at"] is None
    assert resumed["started_at"] > closed["stopped_at"]
    assert hub.api.user("alice")["servers"][""]["ready"]
    stop_with(hub, "alice", None)
    rows = wait_for_rows(hub, "alice", len(before) + 1)
    assert rows[-1]["end_reason"] == "stopped_by_user"
