"""Budgets while servers run (hubext.enforce): warn at a share, stop when spent.

The decision is pure and travels in time (warn once per window, the grace
period, recovery in rolling windows, pool vs per member, the hub-wide
account); settings and registration are checked on plain configuration; and
on one real hub, the registered service warns the people concerned on the
hub's pages while the service run in this process (its clock moved forward)
stops a community's server after the grace period, through the REST API.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from traitlets.config import Config

from hubext._validation import ConfigError
from hubext.enforce import ENFORCER_SCOPES, SERVICE_KIND, register
from hubext.enforce.app import BudgetEnforcer
from hubext.enforce.decide import Line, Server, Track, decide
from hubext.enforce.reading import lines_of, ready_servers
from hubext.enforce.settings import BudgetEnforcement
from hubext.enforce.status import (
    Announcements,
    messages_for,
    read_state,
    state_from_json,
    state_to_json,
    write_status,
)
from hubext.limits import Budget, Demand
from hubext.service_data import SERVICE_ENV
from hubext.usage.ledger import Ledger

from .harness import running_hub
from .hubclient import wait_until

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MONTH = Budget(pool={"server_hours": 10})
ROLLING = Budget(pool={"server_hours": 10}, days=7)


def run(lines, servers=(), state=None, *, now, budgets=None, grace=600):
    budgets = budgets or {line.community: MONTH for line in lines}
    return decide(
        lines,
        budgets,
        servers,
        state or {},
        now=now,
        warn_at=0.9,
        grace_period=grace,
    )


def pool(used, community="astro", unit="server_hours", amount=10.0):
    return Line(community, None, unit, amount, used)


def member(user, used, community="astro", unit="server_hours", amount=2.0):
    return Line(community, user, unit, amount, used)


ASTRO_BOB = Server("bob", "", "astro")
ASTRO_BOB_NAMED = Server("bob", "gpu", "astro", Demand("astro", "bob", gpus=1))
ASTRO_CY = Server("cy", "", "astro")
OCEAN_BOB = Server("bob", "x", "ocean")
HUB_DAN = Server("dan", "", "_hub")


# -- the decision -----------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "warned"), [(8.9, False), (9.0, True), (9.5, True), (12, True)]
)
def test_warns_from_warn_at(used, warned):
    decision = run([pool(used)], now=T0)
    assert bool(decision.warn) is warned
    assert bool(decision.spent) is (used >= 10)


def test_warns_once_per_calendar_month():
    first = run([pool(9.2)], now=T0)
    assert first.warn == [pool(9.2)]
    later = run([pool(9.6)], state=first.state, now=T0 + timedelta(days=5))
    assert later.warn == []
    december = datetime(2026, 12, 1, 0, 1, tzinfo=UTC)
    # a new month: the usage starts again; past warn_at again, warned again
    assert run([pool(0.1)], state=later.state, now=december).warn == []
    assert run([pool(9.3)], state=later.state, now=december).warn == [pool(9.3)]


def test_warns_once_per_rolling_window():
    budgets = {"astro": ROLLING}
    first = run([pool(9.2)], now=T0, budgets=budgets)
    assert first.warn
    again = run(
        [pool(9.4)], state=first.state, now=T0 + timedelta(days=6), budgets=budgets
    )
    assert again.warn == []
    # the warning has left the 7-day window: a new one
    week = T0 + timedelta(days=7, seconds=1)
    assert run([pool(9.4)], state=again.state, now=week, budgets=budgets).warn


def test_spent_budget_stops_the_communitys_servers_after_the_grace_period():
    servers = [ASTRO_BOB, ASTRO_CY, OCEAN_BOB, HUB_DAN]
    found = run([pool(10.0)], servers, now=T0)
    assert found.spent == [(pool(10.0), T0 + timedelta(seconds=600))]
    assert found.stop == []
    almost = run([pool(10.2)], servers, found.state, now=T0 + timedelta(seconds=599))
    assert almost.spent == [] and almost.stop == []
    assert almost.warn == []  # warned once, at T0
    due = run([pool(10.3)], servers, almost.state, now=T0 + timedelta(seconds=600))
    assert [s.server for s in due.stop] == [ASTRO_BOB, ASTRO_CY]
    assert {s.line.path for s in due.stop} == {"budget.server_hours"}


def test_grace_period_zero_stops_at_once():
    decision = run([pool(11)], [ASTRO_BOB], now=T0, grace=0)
    assert [s.server for s in decision.stop] == [ASTRO_BOB]


def test_usage_falling_back_under_the_budget_cancels_the_stop():
    budgets = {"astro": ROLLING}
    found = run([pool(10.1)], [ASTRO_BOB], now=T0, budgets=budgets)
    assert found.spent
    # old usage leaves the rolling window before the grace period ends
    back = run(
        [pool(9.7)], [ASTRO_BOB], found.state, now=T0 + timedelta(seconds=300),
        budgets=budgets,
    )  # fmt: skip
    assert back.recovered == [pool(9.7)] and back.stop == []
    assert back.state[pool(9.7).key] == Track(warned_at=T0)
    # spent again later: a new grace period from then
    again_at = T0 + timedelta(seconds=700)
    again = run([pool(10.0)], [ASTRO_BOB], back.state, now=again_at, budgets=budgets)
    assert again.spent == [(pool(10.0), again_at + timedelta(seconds=600))]
    assert again.stop == [] and again.warn == []
    due = run(
        [pool(10.1)], [ASTRO_BOB], again.state,
        now=again_at + timedelta(seconds=600), budgets=budgets,
    )  # fmt: skip
    assert [s.server for s in due.stop] == [ASTRO_BOB]


def test_a_line_gone_from_the_window_is_recovered():
    found = run([pool(10.1)], [ASTRO_BOB], now=T0, budgets={"astro": ROLLING})
    gone = run([], [ASTRO_BOB], found.state, now=T0 + timedelta(seconds=60))
    assert [line.key for line in gone.recovered] == [pool(0).key]
    assert gone.stop == [] and gone.state == {}


def test_per_member_budget_stops_only_that_members_servers_of_that_community():
    lines = [member("bob", 2.0), member("cy", 1.0), pool(5.0)]
    servers = [ASTRO_BOB, ASTRO_BOB_NAMED, ASTRO_CY, OCEAN_BOB]
    found = run(lines, servers, now=T0)
    assert [line for line, _ in found.spent] == [member("bob", 2.0)]
    assert found.warn == [member("bob", 2.0)]
    due = run(lines, servers, found.state, now=T0 + timedelta(minutes=10))
    assert [s.server for s in due.stop] == [ASTRO_BOB, ASTRO_BOB_NAMED]
    assert {s.line.path for s in due.stop} == {"budget.per_member.server_hours"}


def test_pool_stop_is_not_doubled_by_a_members_spent_share():
    lines = [member("bob", 2.5), pool(10.5)]
    found = run(lines, [ASTRO_BOB], now=T0)
    due = run(lines, [ASTRO_BOB], found.state, now=T0 + timedelta(minutes=10))
    assert [s.server for s in due.stop] == [ASTRO_BOB]


def test_a_spent_unit_stops_only_servers_using_it():
    gpu = pool(4.0, unit="gpu_hours", amount=4.0)
    plain_cpu = Server("cy", "", "astro", Demand("astro", "cy", cpu=2))
    unknown = Server("eve", "", "astro")  # not in the ledger
    servers = [ASTRO_BOB_NAMED, plain_cpu, unknown]
    found = run([gpu], servers, now=T0)
    due = run([gpu], servers, found.state, now=T0 + timedelta(minutes=10))
    assert [s.server for s in due.stop] == [ASTRO_BOB_NAMED]
    assert due.stop[0].line.path == "budget.gpu_hours"


def test_hub_wide_account():
    users = [
        {"name": "dan", "servers": {"": {"ready": True, "user_options": {}}}},
        {
            "name": "bob",
            "servers": {
                "": {"ready": True, "user_options": {"community": "astro"}},
                "starting": {"ready": False, "pending": "spawn"},
                "odd": {"ready": True, "user_options": {"community": ""}},
            },
        },
    ]
    ready = ready_servers(users)
    assert ready == [("dan", "", "_hub"), ("bob", "", "astro"), ("bob", "odd", "_hub")]
    servers = [Server(*r) for r in ready]
    line = pool(3.0, community="_hub", amount=3.0)
    found = run([line], servers, now=T0)
    due = run([line], servers, found.state, now=T0 + timedelta(minutes=10))
    assert [(s.server.user, s.server.name) for s in due.stop] == [
        ("dan", ""),
        ("bob", "odd"),
    ]


def test_lines_of_pool_and_members():
    budget = Budget(pool={"gpu_hours": 8}, per_member={"server_hours": 2})
    usage = {
        None: {"gpu_hours": 7.5, "server_hours": 9.0},
        "bob": {"gpu_hours": 7.5, "server_hours": 2.5},
    }
    assert lines_of("astro", budget, usage, members=["cy"]) == [
        Line("astro", None, "gpu_hours", 8, 7.5),
        Line("astro", "bob", "server_hours", 2, 2.5),
        Line("astro", "cy", "server_hours", 2, 0.0),
    ]


# -- announcements --------------------------------------------------------------


def test_messages_reach_the_people_concerned_until_the_status_expires():
    status = {
        "expires": (T0 + timedelta(minutes=5)).isoformat(),
        "budgets": [
            {"community": "astro", "member": None, "users": ["dan"], "message": "P"},
            {"community": "astro", "member": "bob", "message": "M"},
            {"community": "_hub", "member": None, "users": ["eve"], "message": "H"},
        ],
    }
    assert messages_for(status, "cy", {"astro"}, T0) == ["P"]
    assert messages_for(status, "bob", {"astro"}, T0) == ["P", "M"]
    assert messages_for(status, "dan", set(), T0) == ["P"]  # charged, not a member
    assert messages_for(status, "eve", {"ocean"}, T0) == ["H"]
    assert messages_for(status, "zed", {"ocean"}, T0) == []
    assert messages_for(status, "bob", {"astro"}, T0 + timedelta(minutes=6)) == []


def test_announcement_escapes_and_keeps_the_previous_one(tmp_path):
    path = tmp_path / "status.json"
    expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    entry = {"community": "astro", "member": "bob", "message": "<b>spent</b>"}
    write_status(path, {"expires": expires, "budgets": [entry]})

    class User:
        name = "bob"
        groups = []

    shown = Announcements(path, previous=lambda user: "Maintenance at 18:00")(User())
    assert shown == (
        'Maintenance at 18:00<br><span class="hubext-budget">'
        "&lt;b&gt;spent&lt;/b&gt;</span>"
    )
    assert Announcements(path)(None) == ""
    assert Announcements(tmp_path / "missing.json", "Hello")(User()) == "Hello"


def test_state_survives_a_restart_through_the_status_file(tmp_path):
    found = run([pool(10.1), member("bob", 1.9)], [ASTRO_BOB], now=T0)
    path = tmp_path / "status.json"
    write_status(path, {"state": state_to_json(found.state)})
    assert read_state(path) == found.state
    later = T0 + timedelta(minutes=10)
    again = run([pool(10.2)], [ASTRO_BOB], read_state(path), now=later)
    assert again.warn == [] and again.spent == []
    assert [s.server for s in again.stop] == [ASTRO_BOB]
    # unreadable entries are left out; a missing file is no state
    assert state_from_json([{"community": "a"}, {"warned_at": "x"}, 3]) == {}
    assert read_state(tmp_path / "missing.json") == {}


# -- settings and registration --------------------------------------------------


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        ("warn_at", 0.0, "BudgetEnforcement.warn_at: must be a share"),
        ("warn_at", 1.5, "BudgetEnforcement.warn_at: must be a share"),
        ("grace_period", -1.0, "BudgetEnforcement.grace_period: must be seconds"),
        ("interval", 0.0, "BudgetEnforcement.interval: must be seconds > 0"),
        ("metrics_port", 70000, "BudgetEnforcement.metrics_port: must be a port"),
        ("status_file", " ", "BudgetEnforcement.status_file: must be a file path"),
    ],
)
def test_settings_are_checked_with_their_key(trait, value, message):
    config = Config()
    config.BudgetEnforcement[trait] = value
    with pytest.raises(ConfigError) as error:
        BudgetEnforcement(config=config)
    assert str(error.value).startswith(message)
    # register() checks them when the hub loads its configuration
    c = Config()
    with pytest.raises(ConfigError, match=message.split(":")[0]):
        register(c, enabled=True, **{trait: value})


def test_register_adds_nothing_when_off():
    c = Config()
    assert register(c) is False
    assert "services" not in c.JupyterHub and "load_roles" not in c.JupyterHub
    assert "template_vars" not in c.JupyterHub


def test_register_adds_the_service_its_role_and_the_announcement(tmp_path):
    c = Config()
    c.UsageLedger.db_url = f"sqlite:///{tmp_path}/usage.sqlite"
    c.UsageLimits.default = {"budget": {"server_hours": 5}}
    c.JupyterHub.template_vars = {"announcement": "Welcome"}
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    assert register(c, enabled=True, grace_period=900, status_file="b.json")
    [service] = c.JupyterHub.services
    assert service["name"] == "hubext-budgets"
    assert service["command"][1:3] == ["-m", "hubext.enforce"]
    assert "--BudgetEnforcement.grace_period=900.0" in service["command"]
    assert (
        f"--BudgetEnforcement.status_file={os.path.abspath('b.json')}"
        in (service["command"])
    )
    # marked: the hub hands it the communities, the default limits and the
    # ledger's URL when it starts (test_service_data)
    assert service["environment"] == {SERVICE_ENV: SERVICE_KIND}
    assert c.JupyterHub.load_roles == [
        {
            "name": "hubext-budgets",
            "scopes": ENFORCER_SCOPES,
            "services": ["hubext-budgets"],
        }
    ]
    announcement = c.JupyterHub.template_vars["announcement"]
    assert (
        isinstance(announcement, Announcements) and announcement.previous == "Welcome"
    )


def test_service_refuses_to_start_on_a_bad_setting_naming_it():
    env = {
        **os.environ,
        "JUPYTERHUB_API_TOKEN": secrets.token_hex(16),
        "HUBEXT_COMMUNITIES": json.dumps(
            {"communities": {}, "ledger": {"url": "sqlite:////nonexistent/u.sqlite"}}
        ),
    }
    done = subprocess.run(
        [sys.executable, "-m", "hubext.enforce", "--BudgetEnforcement.grace_period=-5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "BudgetEnforcement.grace_period: must be seconds >= 0, got -5.0" in (
        done.stderr
    )
    assert env["JUPYTERHUB_API_TOKEN"][:8] not in done.stderr + done.stdout


def test_register_checks_the_default_limits():
    c = Config()
    c.UsageLimits.default = {"budget": {"server_hours": -1}}
    with pytest.raises(ConfigError, match=r"UsageLimits.default.budget.server_hours"):
        register(c, enabled=True)


# -- on a real hub ----------------------------------------------------------------

TOKEN = secrets.token_hex(32)

ACCOUNTS = {
    "bob": {"preferred_username": "bob", "groups": ["astro-101"]},
    "alice": {"preferred_username": "alice", "groups": ["ocean-lab"]},
    # a member who used nothing: warned as a member of the community
    "cy": {"preferred_username": "cy", "groups": ["astro-101"]},
}

CONFIG = """
import os
c.UsageLedger.db_url = {ledger!r}
c.Communities.communities["astro-101"]["limits"] = {{
    "budget": {{"server_hours": 2, "period": {{"days": 30}}}},
}}
# the enforcer under test runs in the test's process, with this service's
# token; registered with the enforcer's kind, as hubext.enforce.register does
c.JupyterHub.services.append({{
    "name": "budgets-test",
    "api_token": os.environ["HUBEXT_TEST_BUDGETS_TOKEN"],
    "environment": {{"HUBEXT_SERVICE": "budgets"}},
}})
c.JupyterHub.load_roles.append({{"name": "budgets-test", "scopes": {scopes!r}, "services": ["budgets-test"]}})
from hubext.enforce import register as register_budgets
register_budgets(c, enabled=True, interval=3600, status_file={status!r})
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from .test_service_data import probe_service

    os.environ["HUBEXT_TEST_BUDGETS_TOKEN"] = TOKEN
    workdir = tmp_path_factory.mktemp("budgets")
    ledger_url = f"sqlite:///{workdir}/usage.sqlite"
    # Astronomy 101 used 1.9 of its 2 server-hours (rolling 30 days) 2 days ago
    ledger = Ledger(ledger_url)
    ledger.start()
    begin = datetime.now(UTC) - timedelta(days=2)
    key = ledger.session_started(user="bob", community="astro-101", at=begin)
    ledger.session_ended(key, at=begin + timedelta(hours=1.9), reason="died")
    ledger.close()
    probe, environ = probe_service(workdir, "probe", SERVICE_KIND)
    config = CONFIG.format(
        ledger=ledger_url,
        scopes=ENFORCER_SCOPES,
        status=str(workdir / "budgets.json"),
    )
    with running_hub(tmp_path_factory, "budgets", config + probe, ACCOUNTS) as hub:
        hub.people = {name: hub.signed_in(name) for name in ACCOUNTS}
        hub.service_environ = environ()
        hub.ledger_url = ledger_url
        yield hub


@pytest.mark.e2e
def test_registered_service_warns_the_community_on_the_hubs_pages(hub):
    warning = (
        "Astronomy 101 (workshop) has used 1.9 of its 2 server-hours in the "
        "last 30 days (budget.server_hours). When it is spent, the servers "
        "charged to Astronomy 101 (workshop) are stopped 10 minutes later"
    )
    assert wait_until(
        lambda: warning in hub.people["bob"].get("/hub/home").text, timeout=30
    ), hub.log()[-3000:]
    assert warning in hub.people["bob"].spawn_form().text
    assert warning in hub.people["cy"].get("/hub/home").text
    assert "hubext-budget" not in hub.people["alice"].get("/hub/home").text
    assert f"hubext-budgets: astro-101: {warning}" in hub.log()


def enforcer_at(hub, moment, status_file) -> BudgetEnforcer:
    enforcer = BudgetEnforcer(
        url=f"{hub.url}/hub/api",
        api_token=TOKEN,
        db_url=hub.ledger_url,
        log=logging.getLogger("hubext.enforce.test"),
    )
    enforcer.settings = BudgetEnforcement(status_file=str(status_file))
    enforcer.load(hub.service_environ)
    enforcer.now = lambda: moment[0]
    return enforcer


@pytest.mark.e2e
async def test_spent_budget_stops_the_communitys_server_after_the_grace(hub, tmp_path):
    from hubext.services.client import HubAPI

    for name in ("bob", "alice"):
        r = hub.people[name].api("POST", f"/users/{name}/server", json={})
        assert r.status_code in (201, 202), r.text
    for name in ("bob", "alice"):
        hub.api.wait_for_server(name)
    assert (
        hub.api.user("bob")["servers"][""]["user_options"]["community"] == "astro-101"
    )
    start = datetime.now(UTC)
    moment = [start]
    enforcer = enforcer_at(hub, moment, tmp_path / "status.json")
    api = HubAPI(enforcer.url, TOKEN)
    try:
        first = await enforcer.run_pass(api)
        assert [line.key for line in first.warn] == [
            ("astro-101", None, "server_hours")
        ]
        assert first.spent == [] and first.stop == []
        # 7 minutes on: 1.9 h + bob's running server > 2 h: spent, grace begins
        moment[0] = start + timedelta(minutes=7)
        spent = await enforcer.run_pass(api)
        assert len(spent.spent) == 1 and spent.stop == []
        stop_at = spent.spent[0][1]
        counted = enforcer.metrics.registry.get_sample_value
        labels = {"community": "astro-101", "budget": "budget.server_hours"}
        assert counted("hubext_budget_warnings_total", labels) == 1
        assert counted("hubext_budget_spent_total", labels) == 1
        status = json.loads((tmp_path / "status.json").read_text())
        assert [e["state"] for e in status["budgets"]] == ["spent"]
        assert status["budgets"][0]["users"] == ["bob"]
        # the service restarts: it reads back what it remembered
        enforcer = enforcer_at(hub, moment, tmp_path / "status.json")
        enforcer.state = read_state(tmp_path / "status.json")
        # just before the end of the grace period: still running
        moment[0] = stop_at - timedelta(seconds=1)
        assert (await enforcer.run_pass(api)).stop == []
        assert hub.api.user("bob")["servers"]
        moment[0] = stop_at
        due = await enforcer.run_pass(api)
        assert [(s.server.user, s.server.community) for s in due.stop] == [
            ("bob", "astro-101")
        ]
    finally:
        api.close()
    labels = {"community": "astro-101", "budget": "budget.server_hours"}
    sample = enforcer.metrics.registry.get_sample_value
    assert sample("hubext_budget_servers_stopped_total", labels) == 1
    assert sample("hubext_budget_used_ratio", labels) >= 1
    assert wait_until(lambda: not hub.api.user("bob")["servers"], timeout=30)
    # recorded as a stop for the budget, not as an admin's
    assert wait_until(
        lambda: (
            [
                r["end_reason"]
                for r in hub.ledger_rows(hub.ledger_url)
                if r["username"] == "bob" and r["stopped_at"] and r["profile"]
            ]
            == ["stopped_for_budget"]
        ),
        timeout=30,
    ), hub.ledger_rows(hub.ledger_url)
    # a stop, not a deletion; other communities' servers keep running
    assert hub.api.user("bob")["name"] == "bob"
    assert hub.api.user("alice")["servers"][""]["ready"]
    assert TOKEN not in hub.log()
