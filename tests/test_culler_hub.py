"""The culler against a real hub, travelling in time with its injectable clock.

The culler runs in the test process (so its clock can be set) with its own
least-privilege service token, against the demo hub with per-community
``culling`` policies.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from hubext.culler import CULLER_SCOPES, CULLER_USER_SCOPES
from hubext.culler.app import Culler
from hubext.service_data import COMMUNITIES_ENV
from hubext.services.client import HubAPI

from .culler_kit import one_pass
from .harness import running_hub
from .test_service_data import probe_service

pytestmark = pytest.mark.e2e

CULLER_TOKEN = secrets.token_hex(32)
#: A second culler service, whose role may delete users (cull_users).
USERS_TOKEN = secrets.token_hex(32)

ACCOUNTS = {
    "alice": {"preferred_username": "alice", "groups": ["ocean-lab"]},
    "bob": {"preferred_username": "bob", "groups": ["astro-101"]},
    "cy": {"preferred_username": "cy", "groups": ["astro-101", "ocean-lab"]},
}

CONFIG = f"""
import os
c.Communities.communities["ocean-lab"]["culling"] = {{"idle_timeout": 7200, "cull_users_after": None}}
c.Communities.communities["astro-101"]["culling"] = {{"idle_timeout": 600}}
c.JupyterHub.services.append({{"name": "culler", "api_token": os.environ["HUBEXT_TEST_CULLER_TOKEN"]}})
c.JupyterHub.load_roles.append({{"name": "culler", "scopes": {CULLER_SCOPES!r}, "services": ["culler"]}})
c.JupyterHub.services.append({{"name": "culler-users", "api_token": os.environ["HUBEXT_TEST_CULLER_USERS_TOKEN"]}})
c.JupyterHub.load_roles.append({{"name": "culler-users", "scopes": {CULLER_SCOPES + CULLER_USER_SCOPES!r}, "services": ["culler-users"]}})
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    os.environ["HUBEXT_TEST_CULLER_TOKEN"] = CULLER_TOKEN
    os.environ["HUBEXT_TEST_CULLER_USERS_TOKEN"] = USERS_TOKEN
    # A service registered as a culler, writing out the environment the hub
    # gives it: the culler in this process reads the communities from it.
    probe, environ = probe_service(tmp_path_factory.mktemp("probe"), "probe", "culler")
    with running_hub(tmp_path_factory, "culler", CONFIG + probe, ACCOUNTS) as hub:
        for name in ACCOUNTS:
            assert hub.session().login("demo", name).status_code == 302
        hub.service_environ = environ()
        yield hub


def start_servers(hub, names):
    for name in names:
        if running(hub, name):
            continue
        r = hub.api.request("POST", f"/users/{name}/server", json={"user_options": {}})
        assert r.status_code in (201, 202), r.text
    for name in names:
        hub.api.wait_for_server(name)


def running(hub, name) -> bool:
    return bool(hub.api.user(name)["servers"])


def culler_for(hub, minutes_ahead: float, **traits) -> Culler:
    traits.setdefault("url", f"{hub.url}/hub/api")
    traits.setdefault("api_token", CULLER_TOKEN)
    culler = Culler(
        idle_timeout=3600,
        log=logging.getLogger("hubext.culler.test"),
        **traits,
    )
    culler.policies = culler.load_community_policies(hub.service_environ)
    culler.default = culler.default_policy()
    later = datetime.now(UTC) + timedelta(minutes=minutes_ahead)
    culler.now = lambda: later
    return culler


async def test_policies_come_from_the_hubs_own_configuration(hub):
    culler = culler_for(hub, 0)
    assert culler.policies == {
        "ocean-lab": {"idle_timeout": 7200, "cull_users_after": None},
        "astro-101": {"idle_timeout": 600},
    }


async def test_dry_run_culls_nothing(hub, caplog):
    start_servers(hub, ["alice", "bob", "cy"])
    culler = culler_for(hub, 24 * 60, dry_run=True)
    with caplog.at_level(logging.INFO):
        result = await one_pass(culler)
    assert {a.user for a in result.culled} == {"alice", "bob", "cy"}
    assert all(running(hub, n) for n in ("alice", "bob", "cy"))
    assert "would cull bob" in caplog.text


async def test_per_community_policy_with_time_travel(hub):
    start_servers(hub, ["alice", "bob", "cy"])
    # 20 minutes on: only astro-101's 10-minute policy applies; cy is also in
    # ocean-lab, whose 2 hours are more generous.
    result = await one_pass(culler_for(hub, 20))
    assert [a.user for a in result.culled] == ["bob"]
    assert result.errors == []
    assert not running(hub, "bob")
    assert running(hub, "alice") and running(hub, "cy")
    # 3 hours on: ocean-lab's 2 hours are over too.
    result = await one_pass(culler_for(hub, 180))
    assert sorted(a.user for a in result.culled) == ["alice", "cy"]
    assert not running(hub, "alice") and not running(hub, "cy")


async def test_stops_overlap_up_to_the_concurrency(hub):
    start_servers(hub, ["alice", "bob", "cy"])
    result = await one_pass(culler_for(hub, 24 * 60, concurrency=3))
    assert len(result.culled) + len(result.stopping) == 3
    assert result.peak_concurrent_stops == 3
    for name in ("alice", "bob", "cy"):
        hub.api.wait_for_server(name, ready=False)


async def test_pages_of_one_user_cull_every_idle_server_in_one_pass(hub):
    """The real hub's listing moves up one row per stopped server: the culler
    reads it so that none is skipped while it stops."""
    start_servers(hub, ["alice", "bob", "cy"])
    one = {"page_size": 1, "min_page_size": 1, "max_page_size": 1}
    result = await one_pass(culler_for(hub, 24 * 60, concurrency=3, **one))
    assert {a.user for a in [*result.culled, *result.stopping]} == {
        "alice",
        "bob",
        "cy",
    }
    assert result.errors == [] and result.pages >= 3 and result.largest_page == 1
    for name in ("alice", "bob", "cy"):
        hub.api.wait_for_server(name, ready=False)


async def test_token_never_in_output_of_failing_passes(hub, caplog, capsys):
    culler = culler_for(hub, 60, url="http://127.0.0.1:1/hub/api")  # nothing listens
    with caplog.at_level(logging.DEBUG):
        result = await one_pass(culler)
    assert result.errors and "HTTP 599" in result.errors[0]
    bad = culler_for(hub, 60)
    bad.api_token = "0" * 64  # refused by the hub: 403
    with caplog.at_level(logging.DEBUG):
        result = await one_pass(bad)
    assert result.errors and "HTTP 403" in result.errors[0]
    output = caplog.text + "".join(capsys.readouterr())
    assert CULLER_TOKEN not in output and "0" * 64 not in output
    assert CULLER_TOKEN not in repr(HubAPI(culler.url, CULLER_TOKEN))


def test_service_process_never_prints_its_token(hub):
    """The real service, run as JupyterHub runs it, failing on every path."""
    env = {**hub.service_environ, "JUPYTERHUB_API_TOKEN": CULLER_TOKEN}
    for url in ("http://127.0.0.1:1/hub/api", f"{hub.url}/hub/api/nonexistent"):
        env["JUPYTERHUB_API_URL"] = url
        result = subprocess.run(
            [sys.executable, "-m", "hubext.culler", "--once", "--log-level=DEBUG"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = result.stdout + result.stderr
        assert "listing users failed" in output
        assert CULLER_TOKEN not in output


def test_service_stops_when_the_hub_config_cannot_be_read(tmp_path):
    """Without the communities from the hub, the service stops and says why;
    a Python configuration file is refused, never executed."""
    config = tmp_path / "jupyterhub_config.py"
    config.write_text('import os\nsecret = os.environ["HUBEXT_NOT_SET_ANYWHERE"]\n')
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": CULLER_TOKEN}
    env.pop(COMMUNITIES_ENV, None)
    command = [sys.executable, "-m", "hubext.culler", "--once"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "cannot read the communities" in result.stderr
    assert f"${COMMUNITIES_ENV}: not set" in result.stderr
    assert "register()" in result.stderr

    result = subprocess.run(
        [*command, f"--hub-config={config}"],
        env={**env, COMMUNITIES_ENV: '{"communities": {}}'},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Culler.hub_config" in result.stderr
    assert "does not execute the hub's configuration" in result.stderr
    assert "hubext.culler.register(c, ...)" in result.stderr
    assert "HUBEXT_NOT_SET_ANYWHERE" not in result.stderr  # never executed


# -- cull_users: deleting users with no server -----------------------------------------


def exists(hub, name) -> bool:
    r = hub.api.get(f"/users/{name}")
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


def stop_server(hub, name):
    if running(hub, name):
        r = hub.api.request("DELETE", f"/users/{name}/server")
        assert r.status_code in (202, 204), r.text
        hub.api.wait_for_server(name, ready=False)


def record_activity(hub, names):
    now = datetime.now(UTC).isoformat()
    for name in names:
        r = hub.api.request(
            "POST", f"/users/{name}/activity", json={"last_activity": now}
        )
        assert r.status_code in (200, 204), r.text


async def test_cull_users_deletes_only_inactive_users_with_no_server(hub, caplog):
    """100 days on (the default cull_users_after is 90 days):

    - eve (no community, created through the API) is deleted;
    - carol, a hub admin (the demo's admin_users), is not;
    - alice is in ocean-lab, whose cull_users_after is null (never);
    - bob has a running server when the pass starts (the pass stops it,
      astro-101's 10 minutes being long over, but does not delete him).
    """
    r = hub.api.request("POST", "/users/eve")
    assert r.status_code in (201, 409), r.text
    stop_server(hub, "alice")
    start_servers(hub, ["bob"])
    record_activity(hub, ["eve", "carol", "alice", "bob"])
    assert hub.api.user("carol")["admin"] is True

    days_100 = 100 * 24 * 60
    dry = culler_for(
        hub, days_100, api_token=USERS_TOKEN, cull_users=True, dry_run=True
    )
    with caplog.at_level(logging.INFO):
        result = await one_pass(dry)
    assert [u.user for u in result.users_deleted] == ["eve"]
    assert "would delete user eve" in caplog.text
    assert exists(hub, "eve") and running(hub, "bob")  # dry run: nothing done

    culler = culler_for(hub, days_100, api_token=USERS_TOKEN, cull_users=True)
    with caplog.at_level(logging.INFO):
        result = await one_pass(culler)
    assert result.errors == []
    assert [u.user for u in result.users_deleted] == ["eve"]
    assert "deleted user eve (inactive" in caplog.text
    assert not exists(hub, "eve")
    assert exists(hub, "carol") and exists(hub, "alice") and exists(hub, "bob")
    assert "bob" in {a.user for a in result.culled + result.stopping}


def test_service_refuses_to_delete_users_without_the_scope(hub):
    env = {
        # what the hub gives a registered culler, and the culler's own token
        **hub.service_environ,
        "JUPYTERHUB_API_TOKEN": CULLER_TOKEN,  # the role without delete:users
        "JUPYTERHUB_API_URL": f"{hub.url}/hub/api",
    }
    command = [sys.executable, "-m", "hubext.culler", "--once", "--cull-users"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "lacks the delete:users scope" in result.stderr
    assert "pass done" not in result.stderr

    env["JUPYTERHUB_API_TOKEN"] = USERS_TOKEN  # the role with delete:users
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "pass done" in result.stderr
    assert USERS_TOKEN not in result.stdout + result.stderr
