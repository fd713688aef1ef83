"""Community limits and budgets in a real hub (hubext-local), before servers start.

Ocean Lab may run 3 servers, 1 per member; Astronomy 101 has a budget of one
server-hour a month, already spent in the ledger (written before the hub
starts, at past moments: no waiting). Starts go through the REST API, the
form, named servers and an admin starting a server for someone; refusals are
403s naming the community, what is used, the limit and when to try again,
counted by JupyterHub as refused spawns, not failed ones.
"""

from __future__ import annotations

import concurrent.futures
from datetime import UTC, datetime, timedelta

import pytest
import requests

from hubext.usage.ledger import Ledger

from .harness import running_hub
from .hubclient import wait_until

pytestmark = pytest.mark.e2e

ACCOUNTS = {
    "alice": {"preferred_username": "alice", "groups": ["ocean-lab"]},
    "olga": {"preferred_username": "olga", "groups": ["ocean-lab"]},
    "oscar": {"preferred_username": "oscar", "groups": ["ocean-lab"]},
    "otto": {"preferred_username": "otto", "groups": ["ocean-lab"]},
    "bob": {"preferred_username": "bob", "groups": ["astro-101"]},
    "root": {"preferred_username": "root", "groups": ["astro-101"]},
}

CONFIG = """
c.CommunityAuthenticator.admin_users = {{"root"}}
c.JupyterHub.allow_named_servers = True
c.JupyterHub.authenticate_prometheus = False
c.UsageLedger.db_url = {ledger!r}
c.Communities.communities["ocean-lab"]["limits"] = {{
    "max_servers": 3,
    "max_servers_per_member": 1,
}}
c.Communities.communities["astro-101"]["limits"] = {{
    "budget": {{"server_hours": 1, "period": "month"}},
}}
"""


def this_month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    ledger_dir = tmp_path_factory.mktemp("limits-ledger")
    url = f"sqlite:///{ledger_dir}/usage.sqlite"
    # Astronomy 101 used a server for an hour earlier this month (and much
    # more last month, which does not count)
    now = datetime.now(UTC)
    start = this_month_start(now)
    ledger = Ledger(url)
    ledger.start()
    for user, begin, hours in [
        ("bob", start + (now - start) / 4, 1.0),
        ("bob", start - timedelta(days=3), 50.0),
    ]:
        begin = min(begin, now - timedelta(hours=hours))
        key = ledger.session_started(user=user, community="astro-101", at=begin)
        ledger.session_ended(key, at=begin + timedelta(hours=hours), reason="died")
    ledger.close()
    config = CONFIG.format(ledger=url)
    with running_hub(tmp_path_factory, "limits", config, ACCOUNTS) as hub:
        hub.people = {name: hub.signed_in(name) for name in ACCOUNTS}
        yield hub


def post_server(hub, user: str, options: dict, server: str = "", as_user=None):
    person = hub.people[as_user or user]
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    return person.api("POST", path, json=options)


def stop(hub, user: str, server: str = "") -> None:
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    r = hub.api.request("DELETE", path)
    assert r.status_code in (202, 204), r.text
    assert wait_until(lambda: server not in hub.api.user(user)["servers"], timeout=30)


def ready(hub, user: str, server: str = "") -> None:
    assert wait_until(
        lambda: hub.api.user(user)["servers"].get(server, {}).get("ready"),
        timeout=60,
    ), hub.api.user(user)


def test_max_servers_per_member_counts_named_servers(hub):
    assert post_server(hub, "alice", {"profile": "ocean-model"}).status_code in (
        201,
        202,
    )
    ready(hub, "alice")
    r = post_server(hub, "alice", {"profile": "ocean-model"}, server="second")
    assert r.status_code == 403, r.text
    message = r.json()["message"]
    assert "You have 1 server charged to Ocean Modelling Lab running" in message
    assert "max_servers_per_member" in message
    assert "Stop one of them first" in message
    assert "second" not in hub.api.user("alice")["servers"]


def test_max_servers_refuses_the_community_past_its_limit(hub):
    for user in ("olga", "oscar"):
        assert post_server(hub, user, {"profile": "ocean-model"}).status_code in (
            201,
            202,
        )
    for user in ("olga", "oscar"):
        ready(hub, user)
    # an admin starting a server for a member is refused the same way
    r = post_server(hub, "otto", {"profile": "ocean-model"}, as_user="root")
    assert r.status_code == 403, r.text
    assert r.json()["message"] == (
        "Ocean Modelling Lab has 3 of its 3 servers running (max_servers). "
        "Try again when one of them stops."
    )
    # the form says what is left before submitting
    page = hub.people["otto"].spawn_form().text
    assert "Ocean Modelling Lab: 3 of 3 servers running." in page
    assert "You: 0 of 1 server charged to Ocean Modelling Lab." in page
    # one stops: otto may start
    stop(hub, "oscar")
    assert post_server(hub, "otto", {"profile": "ocean-model"}).status_code in (
        201,
        202,
    )
    ready(hub, "otto")
    for user in ("alice", "olga", "otto"):
        stop(hub, user)


def test_budget_spent_this_month(hub):
    r = post_server(hub, "bob", {"profile": "astro-workshop"})
    assert r.status_code == 403, r.text
    message = r.json()["message"]
    now = datetime.now(UTC)
    renew = (this_month_start(now) + timedelta(days=32)).replace(day=1)
    assert message.startswith(
        "Astronomy 101 (workshop) has used 1.0 of its 1 server-hour this month "
        "(budget.server_hours)."
    ), message
    assert f"It renews on {renew:%Y-%m-%d} at 00:00 UTC." in message
    page = hub.people["bob"].spawn_form().text
    assert "Astronomy 101 (workshop): 1.0 of 1 server-hour used this month." in page
    assert hub.api.user("bob")["servers"] == {}


def test_refusals_are_counted_as_refused_not_failed(hub):
    text = requests.get(f"{hub.url}/hub/metrics", timeout=10).text
    refused = [
        line
        for line in text.splitlines()
        if line.startswith("jupyterhub_server_spawn_duration_seconds_count")
        and 'reason="community-limit"' in line
    ]
    assert refused, text[:2000]
    assert all('status="failure"' in line for line in refused)
    assert not any(
        'status="error"' in line and 'reason="community-limit"' in line
        for line in text.splitlines()
    )


CONCURRENT = 200
LIMIT = 10


@pytest.fixture(scope="module")
def crowd_hub(tmp_path_factory):
    config = f"""
c.JupyterHub.concurrent_spawn_limit = {CONCURRENT + 10}
# servers are slow to answer on a loaded machine: a start that times out
# gives its place back, and another start may then take it
c.LocalCommunitySpawner.http_timeout = 180
c.LocalCommunitySpawner.start_timeout = 180
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = {CONCURRENT + 10}
c.Communities.communities["ocean-lab"]["limits"] = {{"max_servers": {LIMIT}}}
c.LocalCommunitySpawner.profile_list.append(
    {{
        "display_name": "Broken",
        "slug": "broken",
        "kubespawner_override": {{"cmd": ["/nonexistent/jupyterhub-singleuser"]}},
    }}
)
"""
    with running_hub(tmp_path_factory, "limits-crowd", config, ACCOUNTS) as hub:
        hub.people = {"alice": hub.signed_in("alice")}
        yield hub


def max_overlap(sessions) -> int:
    """The most sessions open at once (an open session runs until now)."""
    edges = []
    for r in sessions:
        edges.append((r["started_at"], 1))
        if r["stopped_at"] is not None:
            edges.append((r["stopped_at"], -1))
    running = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


def test_200_starts_at_once_start_exactly_the_limit(crowd_hub):
    hub = crowd_hub
    token = hub.token_for("alice")

    def start(i: int) -> int:
        return requests.post(
            f"{hub.url}/hub/api/users/alice/servers/s{i}",
            headers={"Authorization": f"token {token}"},
            json={"profile": "ocean-model"},
            timeout=120,
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(start, range(CONCURRENT)))
    started = [s for s in statuses if s in (201, 202)]
    assert set(statuses) <= {201, 202, 403}, sorted(set(statuses))
    # every accepted start has its session in the ledger (written in order:
    # a failure that gave its place back is written before the start after it)
    assert wait_until(lambda: len(hub.ledger_rows()) == len(started), timeout=60)
    sessions = hub.ledger_rows()
    # never more than the limit at once, in the ledger's own record
    assert max_overlap(sessions) <= LIMIT
    # a start that failed (timed out) gave its place to a later one
    failed = sum(1 for r in sessions if r["end_reason"] == "failed_to_start")
    assert len(started) == LIMIT + failed, (len(started), failed)
    assert statuses.count(403) == CONCURRENT - len(started)
    assert wait_until(
        lambda: (
            sum(1 for s in hub.api.user("alice")["servers"].values() if s.get("ready"))
            == LIMIT
        ),
        timeout=120,
    )
    # a start that fails gives its place back: one stops, one fails, one starts
    running = sorted(hub.api.user("alice")["servers"])
    r = hub.api.request("DELETE", f"/users/alice/servers/{running[0]}")
    assert r.status_code in (202, 204)
    assert wait_until(
        lambda: running[0] not in hub.api.user("alice")["servers"], timeout=30
    )
    broken = requests.post(
        f"{hub.url}/hub/api/users/alice/servers/broken",
        headers={"Authorization": f"token {token}"},
        json={"profile": "broken"},
        timeout=60,
    )
    assert broken.status_code == 500, broken.text
    assert start(CONCURRENT) in (201, 202)
    assert start(CONCURRENT + 1) == 403
