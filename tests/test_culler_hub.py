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

from hubext.culler import CULLER_SCOPES
from hubext.culler.app import Culler
from hubext.culler.client import HubAPI

from .harness import running_hub

pytestmark = pytest.mark.e2e

CULLER_TOKEN = secrets.token_hex(32)

ACCOUNTS = {
    "alice": {"preferred_username": "alice", "groups": ["ocean-lab"]},
    "bob": {"preferred_username": "bob", "groups": ["astro-101"]},
    "cy": {"preferred_username": "cy", "groups": ["astro-101", "ocean-lab"]},
}

CONFIG = f"""
import os
c.Communities.communities["ocean-lab"]["culling"] = {{"idle_timeout": 7200}}
c.Communities.communities["astro-101"]["culling"] = {{"idle_timeout": 600}}
c.JupyterHub.services.append({{"name": "culler", "api_token": os.environ["HUBEXT_TEST_CULLER_TOKEN"]}})
c.JupyterHub.load_roles.append({{"name": "culler", "scopes": {CULLER_SCOPES!r}, "services": ["culler"]}})
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    os.environ["HUBEXT_TEST_CULLER_TOKEN"] = CULLER_TOKEN
    with running_hub(tmp_path_factory, "culler", CONFIG, ACCOUNTS) as hub:
        for name in ACCOUNTS:
            assert hub.session().login("demo", name).status_code == 302
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
    culler = Culler(
        api_token=CULLER_TOKEN,
        hub_config=str(hub.workdir / "jupyterhub_config.py"),
        idle_timeout=3600,
        log=logging.getLogger("hubext.culler.test"),
        **traits,
    )
    culler.policies = culler.load_community_policies()
    culler.default = culler.default_policy()
    later = datetime.now(UTC) + timedelta(minutes=minutes_ahead)
    culler.now = lambda: later
    return culler


async def run_pass(culler):
    api = HubAPI(culler.url, culler.api_token)
    try:
        return await culler.cull_pass(api)
    finally:
        api.close()


async def test_policies_come_from_the_hubs_own_configuration(hub):
    culler = culler_for(hub, 0)
    assert culler.policies == {
        "ocean-lab": {"idle_timeout": 7200},
        "astro-101": {"idle_timeout": 600},
    }


async def test_dry_run_culls_nothing(hub, caplog):
    start_servers(hub, ["alice", "bob", "cy"])
    culler = culler_for(hub, 24 * 60, dry_run=True)
    with caplog.at_level(logging.INFO):
        result = await run_pass(culler)
    assert {a.user for a in result.culled} == {"alice", "bob", "cy"}
    assert all(running(hub, n) for n in ("alice", "bob", "cy"))
    assert "would cull bob" in caplog.text


async def test_per_community_policy_with_time_travel(hub):
    start_servers(hub, ["alice", "bob", "cy"])
    # 20 minutes on: only astro-101's 10-minute policy applies; cy is also in
    # ocean-lab, whose 2 hours are more generous.
    result = await run_pass(culler_for(hub, 20))
    assert [a.user for a in result.culled] == ["bob"]
    assert result.errors == []
    assert not running(hub, "bob")
    assert running(hub, "alice") and running(hub, "cy")
    # 3 hours on: ocean-lab's 2 hours are over too.
    result = await run_pass(culler_for(hub, 180))
    assert sorted(a.user for a in result.culled) == ["alice", "cy"]
    assert not running(hub, "alice") and not running(hub, "cy")


async def test_stops_overlap_up_to_the_concurrency(hub):
    start_servers(hub, ["alice", "bob", "cy"])
    result = await run_pass(culler_for(hub, 24 * 60, concurrency=3))
    assert len(result.culled) + len(result.stopping) == 3
    assert result.peak_concurrent_stops == 3
    for name in ("alice", "bob", "cy"):
        hub.api.wait_for_server(name, ready=False)


async def test_token_never_in_output_of_failing_passes(hub, caplog, capsys):
    culler = culler_for(hub, 60, url="http://127.0.0.1:1/hub/api")  # nothing listens
    with caplog.at_level(logging.DEBUG):
        result = await run_pass(culler)
    assert result.errors and "HTTP 599" in result.errors[0]
    bad = culler_for(hub, 60)
    bad.api_token = "0" * 64  # refused by the hub: 403
    with caplog.at_level(logging.DEBUG):
        result = await run_pass(bad)
    assert result.errors and "HTTP 403" in result.errors[0]
    output = caplog.text + "".join(capsys.readouterr())
    assert CULLER_TOKEN not in output and "0" * 64 not in output
    assert CULLER_TOKEN not in repr(HubAPI(culler.url, CULLER_TOKEN))


def test_service_process_never_prints_its_token(hub):
    """The real service, run as JupyterHub runs it, failing on every path."""
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": CULLER_TOKEN}
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
    config = tmp_path / "jupyterhub_config.py"
    config.write_text('import os\nsecret = os.environ["HUBEXT_NOT_SET_ANYWHERE"]\n')
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": CULLER_TOKEN}
    result = subprocess.run(
        [sys.executable, "-m", "hubext.culler", "--once", f"--hub-config={config}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot read the communities" in result.stderr
    assert "KeyError: 'HUBEXT_NOT_SET_ANYWHERE'" in result.stderr
