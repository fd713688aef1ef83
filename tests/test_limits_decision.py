"""When and how a community's limits decide, in a real hub (hubext-local).

- A server with a CPU and memory limit and no request uses its limit (as on
  Kubernetes), in the decision while it runs and in the ledger once it has
  stopped: a budget it spent stays spent.
- The decision is the answer to the start request, whatever the hub's load:
  it is made before JupyterHub's spawn can answer "pending". The hub here is
  made slow where load makes a hub slow (a spawn step after the first one
  takes longer than JupyterHub's ``slow_spawn_timeout``), so the test does
  not depend on the machine being busy.
- A refusal is one line in the hub's log, not errors with tracebacks.
- The REST API names the community charged, also after a hub restart.
"""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime, timedelta

import pytest

from hubext.usage import Ledger, Resources

from .harness import running_hub
from .hubclient import wait_until

pytestmark = pytest.mark.e2e

GIB = 2**30

ACCOUNTS = {
    "alice": {"preferred_username": "alice", "groups": ["ocean-lab"]},
    "ophelia": {"preferred_username": "ophelia", "groups": ["ocean-lab"]},
    "slowpoke": {"preferred_username": "slowpoke", "groups": ["ocean-lab"]},
}

CONFIG = """
import asyncio

c.JupyterHub.allow_named_servers = True
c.JupyterHub.cleanup_servers = False
c.UsageLedger.db_url = {ledger!r}
c.Communities.communities["ocean-lab"]["limits"] = {{
    "max_servers_per_member": 1,
    "budget": {{"per_member": {{"cpu_hours": 1, "gib_hours": 1}}}},
}}
# a server with limits and no requests (no guarantee is configured; on
# Kubernetes the limits would be its requests)
c.LocalCommunitySpawner.profile_list.append(
    {{
        "display_name": "Limits only",
        "slug": "limits-only",
        "allowed_groups": ["ocean-lab"],
        "kubespawner_override": {{
            "cpu_limit": 4,
            "mem_limit": "4G",
        }},
    }}
)
# As on a loaded hub: a step of the spawn after its first one is slower than
# slow_spawn_timeout, after which JupyterHub answers a start with 202
# ("pending") and the form with a redirect to the progress page.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 1}}


async def slow_for_slowpoke(spawner, auth_state):
    if spawner.user.name == "slowpoke":
        await asyncio.sleep(4)


c.LocalCommunitySpawner.auth_state_hook = slow_for_slowpoke
"""


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    ledger_dir = tmp_path_factory.mktemp("decision-ledger")
    url = f"sqlite:///{ledger_dir}/usage.sqlite"
    # ophelia ran a server with limits only for an hour this month, and
    # stopped it: 4 CPU-hours and 4 GiB-hours of her 1 and 1
    now = datetime.now(UTC)
    begin = max(month_start(now), now - timedelta(hours=2))
    end = min(begin + timedelta(hours=1), now)
    # 4 cores and 4 GiB for an hour (less in the first hours of a month)
    hub_used = f"{4 * (end - begin) / timedelta(hours=1):.1f}"
    ledger = Ledger(url)
    ledger.start()
    key = ledger.session_started(
        user="ophelia",
        community="ocean-lab",
        profile="limits-only",
        resources=Resources(cpu_limit=4.0, mem_limit=4 * GIB),
        at=begin,
    )
    ledger.session_ended(key, at=end, reason="died")
    ledger.close()
    with running_hub(
        tmp_path_factory, "decision", CONFIG.format(ledger=url), ACCOUNTS
    ) as hub:
        hub.people = {name: hub.signed_in(name) for name in ACCOUNTS}
        hub.ophelia_used = hub_used
        hub.ledger_url = url
        yield hub


def post_server(hub, user: str, options: dict, server: str = ""):
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    return hub.people[user].api("POST", path, json=options)


def ready(hub, user: str, server: str = "") -> None:
    assert wait_until(
        lambda: hub.api.user(user)["servers"].get(server, {}).get("ready"),
        timeout=90,
    ), hub.api.user(user)


def log_since(hub, mark: int) -> str:
    return hub.log_path.read_text()[mark:]


def test_a_spent_budget_of_a_server_with_limits_only_stays_spent(hub):
    # the server stopped: the ledger counts its limits, as the decision did
    # while it ran
    r = post_server(hub, "ophelia", {"profile": "limits-only"})
    assert r.status_code == 403, r.text
    message = r.json()["message"]
    used = hub.ophelia_used
    assert message.startswith(
        f"You have used {used} of your 1 CPU-hour of Ocean Modelling Lab's budget "
        "this month (budget.per_member.cpu_hours)."
    ), message
    page = hub.people["ophelia"].spawn_form().text
    assert f"You: {used} of 1 CPU-hour used this month." in page
    assert f"You: {used} of 1 GiB-hour used this month." in page
    assert hub.api.user("ophelia")["servers"] == {}


def test_rest_names_the_community_charged_also_after_a_restart(hub):
    r = post_server(hub, "alice", {"profile": "ocean-model"})
    assert r.status_code in (201, 202), r.text
    ready(hub, "alice")
    options = hub.api.user("alice")["servers"][""]["user_options"]
    assert options["community"] == "ocean-lab", options
    hub.restart(signal.SIGTERM)  # cleanup_servers is off: the server runs on
    server = hub.api.user("alice")["servers"][""]
    assert server["user_options"]["community"] == "ocean-lab", server
    assert server["user_options"]["profile"] == "ocean-model", server


def test_a_refusal_answers_the_start_request_whatever_the_load(hub):
    mark = len(hub.log_path.read_text())
    person = hub.people["slowpoke"]
    # first server: accepted, and slow to start (202 after 1 s)
    r = post_server(hub, "slowpoke", {"profile": "ocean-model"})
    assert r.status_code == 202, r.text
    ready(hub, "slowpoke")
    # a second one is over max_servers_per_member: refused with the 403 and
    # its message, though the spawn's later steps take longer than the hub
    # waits before answering "pending"
    r = post_server(hub, "slowpoke", {"profile": "ocean-model"}, server="second")
    assert r.status_code == 403, (r.status_code, r.text)
    assert "max_servers_per_member" in r.json()["message"]
    # the form: the refusal is on the form page, not a redirect to the
    # progress page that later fails
    page = person.submit_spawn_form({"profile": "ocean-model"}, user="slowpoke/third")
    assert page.status_code == 403, (page.status_code, page.headers.get("location"))
    assert "You have 1 server charged to Ocean Modelling Lab running" in page.text
    assert 'id="spawn_form"' in page.text  # the form again, with the choice
    servers = hub.api.user("slowpoke")["servers"]
    assert set(servers) == {""}, servers
    # what was refused never started: one session in the ledger, running
    rows = [r for r in hub.ledger_rows(hub.ledger_url) if r["username"] == "slowpoke"]
    assert [(r["server_name"], r["stopped_at"]) for r in rows] == [("", None)]
    log = log_since(hub, mark)
    assert log.count("hubext: refusing a server for slowpoke") == 2, log


def test_a_refusal_is_one_line_in_the_hubs_log(hub):
    mark = len(hub.log_path.read_text())
    refusals = [
        post_server(hub, "alice", {"profile": "ocean-model"}, server="again"),
        post_server(hub, "ophelia", {"profile": "limits-only"}),
        hub.people["alice"].submit_spawn_form(
            {"profile": "ocean-model"}, user="alice/form"
        ),
    ]
    assert [r.status_code for r in refusals] == [403, 403, 403]
    log = log_since(hub, mark)
    lines = [line for line in log.splitlines() if re.match(r"\[[EWC] ", line)]
    ours = [line for line in lines if "hubext: refusing a server" in line]
    assert len(ours) == 3, lines
    assert not [line for line in lines if line.startswith("[E ")], lines
    assert "Traceback" not in log
