"""Culling users with no server (``cull_users``): against the fault-injecting
hub API, the start-up checks (scopes, storage) and ``register()``.

The real-hub counterpart is in tests/test_culler_hub.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from traitlets.config import Config, PyFileConfigLoader

from hubext.culler import CULLER_SCOPES, register
from hubext.culler.app import Culler
from hubext.culler.hub_config import load_hub_config
from hubext.culler.storage import config_spawner_settings, storage_verdict

from .culler_kit import fake_hub_culler, one_pass, service_env
from .fakes.hub_api import FakeHubAPI

TOKEN = "e" * 64
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DAY = 86400


def days_ago(days):
    return (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def running_server():
    return {
        "name": "",
        "ready": True,
        "pending": None,
        "started": days_ago(0.01),
        "last_activity": days_ago(0.001),
    }


@pytest.fixture
def hub():
    with FakeHubAPI(TOKEN) as fake:
        fake.scopes = [*CULLER_SCOPES, "delete:users"]
        fake.add_user("gone-1", {}, last_activity=days_ago(100))
        fake.add_user("gone-2", {}, last_activity=days_ago(200))
        fake.add_user("recent", {}, last_activity=days_ago(10))
        fake.add_user("boss", {}, admin=True, last_activity=days_ago(400))
        fake.add_user("never", {}, last_activity=None)
        fake.add_user("working", {"": running_server()}, last_activity=days_ago(300))
        fake.add_user(
            "starting",
            {"": {**running_server(), "ready": False, "pending": "spawn"}},
            last_activity=days_ago(300),
        )
        fake.add_user("lab", {}, groups=["lab"], last_activity=days_ago(100))
        yield fake


def make_culler(hub, **traits):
    traits.setdefault("cull_users", True)
    # "lab" members are kept for a year
    return fake_hub_culler(
        hub.url, TOKEN, NOW, policies={"lab": {"cull_users_after": 365 * DAY}}, **traits
    )


async def test_deletes_only_inactive_users_with_no_server(hub, caplog):
    with caplog.at_level(logging.INFO):
        result = await one_pass(make_culler(hub))
    assert sorted(hub.deleted_users) == ["gone-1", "gone-2"]
    assert sorted(a.user for a in result.users_deleted) == ["gone-1", "gone-2"]
    assert result.errors == []
    # one line per deletion
    lines = [r.getMessage() for r in caplog.records if "deleted user" in r.getMessage()]
    assert len(lines) == 2
    assert "hubext-culler: deleted user gone-1 (inactive 8640000 s, no server)" in lines


async def test_off_by_default(hub):
    result = await one_pass(make_culler(hub, cull_users=False))
    assert hub.deleted_users == [] and result.users_deleted == []
    # one page of users with a ready server; those with none are not even listed
    assert [path for _, path in hub.requests] == [
        "/hub/api/users?state=ready&limit=50&offset=0"
    ]


async def test_dry_run_deletes_nothing(hub, caplog):
    with caplog.at_level(logging.INFO):
        result = await one_pass(make_culler(hub, dry_run=True))
    assert hub.deleted_users == []
    assert not [r for r in hub.requests if r[0] == "DELETE"]
    assert len(result.users_deleted) == 2
    assert "would delete user gone-2" in caplog.text


async def test_the_hub_wide_timeout_can_be_never(hub):
    await one_pass(make_culler(hub, cull_users_after=None))
    assert hub.deleted_users == []


async def test_the_community_policy_applies_to_members(hub):
    culler = make_culler(hub)
    culler.policies = {"lab": {"cull_users_after": 30 * DAY}}
    await one_pass(culler)
    assert sorted(hub.deleted_users) == ["gone-1", "gone-2", "lab"]


async def test_a_user_who_comes_back_during_the_pass_is_kept(hub, caplog):
    # gone-1 signs in, gone-2 starts a server, between the listing and the deletion
    hub.on_read_user["gone-1"] = lambda u: u.update(last_activity=days_ago(0))
    hub.on_read_user["gone-2"] = lambda u: u["servers"].update({"": running_server()})
    with caplog.at_level(logging.INFO):
        result = await one_pass(make_culler(hub))
    assert hub.deleted_users == [] and result.users_deleted == []
    assert "keeping user gone-1" in caplog.text
    assert "keeping user gone-2" in caplog.text


async def test_a_user_made_admin_during_the_pass_is_kept(hub):
    hub.on_read_user["gone-1"] = lambda u: u.update(admin=True)
    await one_pass(make_culler(hub))
    assert hub.deleted_users == ["gone-2"]


async def test_a_failed_deletion_does_not_stop_the_others(hub):
    hub.fail("delete_user", 500)
    result = await one_pass(make_culler(hub, concurrency=1))
    assert len(hub.deleted_users) == 1
    assert len(result.errors) == 1 and "HTTP 500" in result.errors[0]


async def test_a_failed_read_deletes_nothing_for_that_user(hub):
    hub.fail("user", 503)
    result = await one_pass(make_culler(hub, concurrency=1))
    assert len(hub.deleted_users) == 1
    assert len(result.errors) == 1 and "HTTP 503" in result.errors[0]


async def test_a_failed_listing_deletes_nothing_and_stops_nothing(hub):
    hub.add_user(
        "idle-server",
        {"": {**running_server(), "last_activity": days_ago(2)}},
        last_activity=days_ago(2),
    )
    hub.fail("list", 500)  # the first listing: state=inactive
    result = await one_pass(make_culler(hub))
    assert result.errors and hub.deleted_users == [] and hub.deleted == []
    result = await one_pass(make_culler(hub))  # the next pass
    assert sorted(hub.deleted_users) == ["gone-1", "gone-2"]
    assert [u for u, _, _ in hub.deleted] == ["idle-server"]


async def test_a_user_whose_server_this_pass_stops_is_kept_until_a_later_pass(hub):
    hub.users["working"]["servers"][""]["last_activity"] = days_ago(2)
    result = await one_pass(make_culler(hub))
    assert [u for u, _, _ in hub.deleted] == ["working"]
    assert "working" not in hub.deleted_users
    assert "working" not in {a.user for a in result.users_deleted}


async def test_malformed_user_models_are_left_alone(hub):
    hub.add_user("odd", {}, last_activity="last tuesday")
    hub.add_user("odder", {}, admin="maybe", last_activity=days_ago(300))
    result = await one_pass(make_culler(hub))
    assert {s.user for s in result.skipped} == {"odd", "odder"}
    assert sorted(hub.deleted_users) == ["gone-1", "gone-2"]


async def test_metrics_count_deleted_users(hub):
    from prometheus_client import generate_latest

    culler = make_culler(hub)
    await one_pass(culler)
    text = generate_latest(culler.metrics.registry).decode()
    assert "hubext_culler_users_deleted_total 2.0" in text


async def test_requests_per_deleted_user(hub):
    await one_pass(make_culler(hub))
    deletes = [p for m, p in hub.requests if m == "DELETE"]
    reads = [
        p for m, p in hub.requests if m == "GET" and p.startswith("/hub/api/users/")
    ]
    # one read (just before) and one DELETE per deleted user
    assert sorted(deletes) == ["/hub/api/users/gone-1", "/hub/api/users/gone-2"]
    assert sorted(reads) == sorted(deletes)


# -- start-up checks ----------------------------------------------------------------


async def test_the_service_refuses_without_the_delete_users_scope(hub, caplog):
    hub.scopes = list(CULLER_SCOPES)
    culler = make_culler(hub, once=True)
    with caplog.at_level(logging.INFO):
        status = await culler.run()
    assert status == 1
    assert "lacks the delete:users scope" in caplog.text
    assert [p for _, p in hub.requests] == ["/hub/api/user"]  # nothing else


async def test_the_service_runs_with_the_delete_users_scope(hub):
    assert await make_culler(hub, once=True).run() == 0
    assert sorted(hub.deleted_users) == ["gone-1", "gone-2"]


def hub_config(tmp_path, text: str) -> Config:
    """A hub configuration, loaded here by the test (the culler executes none)."""
    path = tmp_path / "jupyterhub_config.py"
    path.write_text("c = get_config()\n" + text)
    return PyFileConfigLoader(path.name, path=str(tmp_path)).load_config()


def storage_of(config: Config) -> tuple[str, str]:
    """The culler's storage verdict for a hub configuration read as data."""
    return storage_verdict(config_spawner_settings(config))


def handed_spawner(tmp_path, text: str) -> dict[str, str]:
    """The environment the hub gives the culler under this hub configuration."""
    return service_env(spawner=config_spawner_settings(hub_config(tmp_path, text)))


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        pytest.param("", "keeps", id="jupyterhub-default-spawner"),
        pytest.param(
            'c.JupyterHub.spawner_class = "hubext-local"', "keeps", id="hubext-local"
        ),
        pytest.param(
            'c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"',
            "deletes",
            id="kubespawner-default-deletes-pvcs",
        ),
        pytest.param(
            'c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"\n'
            "c.KubeSpawner.delete_pvc = False",
            "keeps",
            id="kubespawner-delete-pvc-false",
        ),
        pytest.param(
            'c.JupyterHub.spawner_class = "hubext-kube"\n'
            "c.KubeSpawner.delete_pvc = True",
            "deletes",
            id="hubext-kube-delete-pvc-true",
        ),
        pytest.param(
            'c.JupyterHub.spawner_class = "hubext-kube"\n'
            "c.CommunityKubeSpawner.delete_pvc = False",
            "keeps",
            id="hubext-kube-delete-pvc-false",
        ),
        pytest.param(
            'c.JupyterHub.spawner_class = "no.such.Spawner"',
            "unknown",
            id="cannot-import",
        ),
    ],
)
def test_storage_check(tmp_path, text, verdict):
    assert storage_of(hub_config(tmp_path, text))[0] == verdict


def run_service(*args, env_extra=None):
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": TOKEN, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "hubext.culler", "--once", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_service_will_not_delete_users_when_that_deletes_volumes(tmp_path):
    env = handed_spawner(
        tmp_path, 'c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"\n'
    )
    # nothing listens at the URL: the culler stops before any request
    result = run_service(
        "--cull-users", "--url=http://127.0.0.1:1/hub/api", env_extra=env
    )
    assert result.returncode == 1
    assert "will not delete users" in result.stderr
    assert "c.KubeSpawner.delete_pvc = False" in result.stderr
    assert "listing users failed" not in result.stderr


def test_the_service_with_volumes_kept_starts(tmp_path):
    env = handed_spawner(
        tmp_path,
        'c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"\n'
        "c.KubeSpawner.delete_pvc = False\n",
    )
    result = run_service(
        "--cull-users",
        "--dry-run",
        "--url=http://127.0.0.1:1/hub/api",
        env_extra=env,
    )
    assert "will not delete users" not in result.stderr
    assert "deleting users with no server after 7776000 s" in result.stderr
    assert "listing users failed" in result.stderr  # it ran a pass


def test_user_timeouts_under_an_hour_are_refused():
    with pytest.raises(
        ValueError, match=r"Culler.cull_users_after: must be at least 3600 seconds"
    ):
        Culler(cull_users_after=600).default_policy()


@pytest.mark.parametrize(
    ("kwargs", "deletes"),
    [
        pytest.param({}, False, id="default"),
        pytest.param({"cull_users": True}, True, id="cull_users"),
        pytest.param({"args": ["--cull-users"]}, True, id="flag-in-args"),
    ],
)
def test_register_grants_delete_users_only_with_cull_users(kwargs, deletes):
    c = Config()
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    register(c, **kwargs)
    (role,) = c.JupyterHub.load_roles
    (service,) = c.JupyterHub.services
    assert ("delete:users" in role["scopes"]) is deletes
    assert ("--cull-users" in service["command"]) is deletes
    assert service["command"].count("--cull-users") <= 1
    assert "admin:users" not in role["scopes"]
    assert set(CULLER_SCOPES) <= set(role["scopes"])


def test_hubext_kube_keeps_volumes_by_default(tmp_path):
    config = hub_config(tmp_path, 'c.JupyterHub.spawner_class = "hubext-kube"')
    assert storage_of(config)[0] == "keeps"


Z2JH_VALUES = """
cull:
  enabled: false
hub:
  config:
    Communities:
      communities:
        astro-101:
          culling:
            idle_timeout: 900
            cull_users_after: 86400
        ocean-lab: {}
singleuser:
  storage:
    type: dynamic
"""


@pytest.mark.parametrize(
    ("extra", "verdict"),
    [
        pytest.param("", "deletes", id="chart-default-kubespawner"),
        pytest.param(
            "    KubeSpawner:\n      delete_pvc: false\n",
            "keeps",
            id="delete-pvc-false",
        ),
        pytest.param(
            "    JupyterHub:\n      spawner_class: hubext-kube\n",
            "keeps",
            id="hubext-kube",
        ),
    ],
)
def test_z2jh_values_are_read_without_running_the_chart_config(
    tmp_path, extra, verdict
):
    values = tmp_path / "values.yaml"
    values.write_text(Z2JH_VALUES.replace("  config:\n", "  config:\n" + extra, 1))
    culler = Culler(hub_config=str(values))
    config = load_hub_config(str(values))
    assert culler.load_community_policies() == {
        "astro-101": {"idle_timeout": 900, "cull_users_after": 86400}
    }
    assert storage_of(config)[0] == verdict


def test_the_service_reads_z2jh_values(tmp_path):
    """In the service's small environment: no Kubernetes service variables."""
    values = tmp_path / "values.yaml"
    values.write_text(
        Z2JH_VALUES.replace(
            "  config:\n", "  config:\n    KubeSpawner:\n      delete_pvc: true\n", 1
        )
    )
    env = {
        key: os.environ[key]
        for key in ("PATH", "LANG", "VIRTUAL_ENV")
        if key in os.environ
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hubext.culler",
            "--once",
            "--cull-users",
            f"--hub-config={values}",
            "--url=http://127.0.0.1:1/hub/api",
        ],
        env={**env, "JUPYTERHUB_API_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # The values were read: the storage check (from hub.config) stops it.
    assert result.returncode == 1
    assert "will not delete users" in result.stderr
    assert "cannot read the communities" not in result.stderr


async def test_a_dry_run_deletes_without_pacing(hub):
    slept = []

    async def sleep(seconds):  # the culler's injectable sleep: count, never wait
        slept.append(seconds)

    culler = make_culler(hub, stop_spacing=3600, dry_run=True, sleep=sleep)
    result = await one_pass(culler)
    assert len(result.users_deleted) == 2 and slept == []
    culler.dry_run = False
    result = await one_pass(culler)
    assert sorted(hub.deleted_users) == ["gone-1", "gone-2"]
    assert len(slept) == 1  # the second deletion waited for the first
