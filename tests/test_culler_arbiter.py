"""The pass engine from explicit inputs, and the arbiter hook (cull_arbiter_hook)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from traitlets.config import Config

from hubext._validation import ConfigError
from hubext.culler import Cull, Culler, register
from hubext.culler.arbiter import check_arbiter
from hubext.culler.engine import PassSettings
from hubext.culling import CullingPolicy
from hubext.service_data import SERVICE_ENV

from .culler_kit import engine_pass, fake_hub_culler, one_pass, service_env
from .fakes.hub_api import FakeHubAPI

TOKEN = "a1" * 32
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def ago(minutes, now=NOW):
    return (now - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def server(idle_minutes, now=NOW, **extra):
    return {
        "name": "",
        "ready": True,
        "pending": None,
        "started": ago(idle_minutes + 5, now),
        "last_activity": ago(idle_minutes, now),
        **extra,
    }


def fake_hub(now):
    fake = FakeHubAPI(TOKEN)
    fake.add_user("idle", {"": server(120, now)})
    fake.add_user("on-call", {"": server(120, now)}, groups=["on-call"])
    fake.add_user("gpu", {"": server(20, now, user_options={"profile": "gpu"})})
    fake.add_user("busy", {"": server(20, now)})
    fake.add_user("lab", {"": server(90, now)}, groups=["lab"])
    return fake


@pytest.fixture
def hub():
    with fake_hub(NOW) as fake:
        yield fake


@pytest.fixture
def live_hub():
    """The same users, at the real time (for the service, which has no fake clock)."""
    with fake_hub(datetime.now(UTC)) as fake:
        yield fake


def stopped(hub) -> list[str]:
    return sorted(u for u, _, _ in hub.deleted)


async def test_the_engine_runs_from_explicit_inputs(hub):
    """No Application: settings, policies, default, clock and client only."""
    result = await engine_pass(
        hub.url,
        TOKEN,
        NOW,
        PassSettings(concurrency=2, stop_spacing=0),
        {"lab": {"idle_timeout": 2 * 3600}},
        CullingPolicy(idle_timeout=3600),
    )
    assert result.errors == []
    assert stopped(hub) == ["idle", "on-call"]  # lab's 2 hours are not over
    assert result.servers == 5


def example_hook():
    """The example of Culler.cull_arbiter_hook's help, as written there."""
    help_text = Culler.class_traits()["cull_arbiter_hook"].help
    block = help_text.split("(``--config``)::\n", 1)[1].split(".. versionadded")[0]
    return textwrap.dedent(block)


def test_the_documented_example_runs_in_the_service(live_hub, tmp_path):
    hub = live_hub
    config = tmp_path / "culler_config.py"
    config.write_text(example_hook())
    env = {
        **os.environ,
        **service_env(),
        "JUPYTERHUB_API_TOKEN": TOKEN,
        "JUPYTERHUB_API_URL": hub.url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "hubext.culler", "--once", f"--config={config}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # idle: the policy's cull; on-call: kept by the hook; gpu: culled by the
    # hook after 15 minutes (the policy's hour is not over); busy: kept.
    assert stopped(hub) == ["gpu", "idle", "lab"]
    assert "culled gpu (gpu idle: inactive 120" in result.stderr


async def test_the_hook_sees_user_groups_policy_and_decision_and_may_be_async(hub):
    seen = {}

    async def hook(*, user, server_name, server, policy, decision, inactive, age):
        seen[user["name"]] = (user["groups"], policy.idle_timeout, decision, inactive)
        if user["name"] == "busy":
            return Cull(user["name"], server_name, "custom", inactive, age)
        return None if "on-call" in user["groups"] else decision

    culler = fake_hub_culler(
        hub.url,
        TOKEN,
        NOW,
        policies={"lab": {"idle_timeout": 60}},
        cull_arbiter_hook=hook,
    )
    result = await one_pass(culler)
    assert result.errors == []
    assert stopped(hub) == ["busy", "idle", "lab"]
    assert [a.reason for a in result.culled if a.user == "busy"] == ["custom"]
    groups, timeout, decision, inactive = seen["lab"]
    assert (groups, timeout, inactive) == (["lab"], 60, 90 * 60)
    assert decision == Cull("lab", "", "idle", 90 * 60, 95 * 60)
    assert seen["busy"][2] is None and seen["on-call"][2].reason == "idle"


def raising_hook(*, user, decision, **kwargs):
    if user["name"] == "idle":
        raise RuntimeError(f"broken with {TOKEN}")
    return decision


def wrong_hook(*, user, server_name, decision, **kwargs):
    if user["name"] == "idle":
        return True
    if user["name"] == "on-call":
        return Cull("busy", server_name, "idle", 1, 1)  # another user's server
    return decision


@pytest.mark.parametrize(
    ("hook", "problem"),
    [
        pytest.param(raising_hook, "raised RuntimeError: broken with", id="raises"),
        pytest.param(wrong_hook, "returned True, not None or a Cull of idle", id="bad"),
    ],
)
async def test_a_failing_hook_keeps_the_server(hub, caplog, hook, problem):
    culler = fake_hub_culler(hub.url, TOKEN, NOW, cull_arbiter_hook=hook)
    with caplog.at_level(logging.ERROR):
        result = await one_pass(culler)
    assert "idle" not in stopped(hub)
    assert any(problem in e and "keeping it" in e for e in result.errors)
    assert problem in caplog.text
    assert TOKEN[:16] not in caplog.text + "".join(result.errors)
    if hook is wrong_hook:
        assert "on-call" not in stopped(hub) and "busy" not in stopped(hub)


@pytest.mark.parametrize(
    "hook",
    [
        pytest.param(lambda decision: decision, id="positional-only-one"),
        pytest.param(lambda *, user, decision: decision, id="missing-arguments"),
        pytest.param("module:function", id="not-callable"),
    ],
)
def test_a_hook_with_the_wrong_signature_is_refused_at_start_up(hook):
    with pytest.raises(Exception, match=r"[Cc]ull_arbiter_hook"):
        Culler(cull_arbiter_hook=hook)


def test_check_arbiter_accepts_kwargs_and_the_documented_arguments():
    check_arbiter(lambda **kwargs: None)
    check_arbiter(
        lambda *, user, server_name, server, policy, decision, inactive, age: None
    )
    with pytest.raises(ConfigError, match="must accept the keyword arguments user"):
        check_arbiter(lambda user, server: None)


def test_the_service_stops_on_a_bad_hook(tmp_path):
    config = tmp_path / "culler_config.py"
    config.write_text("c.Culler.cull_arbiter_hook = lambda server: False\n")
    result = subprocess.run(
        [sys.executable, "-m", "hubext.culler", "--once", f"--config={config}"],
        env={**os.environ, **service_env(), "JUPYTERHUB_API_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Culler.cull_arbiter_hook: must accept the keyword arguments" in (
        result.stderr
    )


# -- no hub configuration executed ---------------------------------------------------


def test_register_marks_the_service_and_refuses_a_python_hub_config():
    c = Config()
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    register(c, environment={"HTTPS_PROXY": "http://proxy:3128"})
    (service,) = c.JupyterHub.services
    assert service["environment"] == {
        "HTTPS_PROXY": "http://proxy:3128",
        SERVICE_ENV: "culler",
    }
    assert not any(a.startswith("--hub-config") for a in service["command"])
    with pytest.raises(ValueError, match=r"does not execute the hub's configuration"):
        register(c, hub_config="/etc/jupyterhub/jupyterhub_config.py")
    register(c, name="z2jh", hub_config="/usr/local/etc/jupyterhub/secret/values.yaml")
    assert (
        "--hub-config=/usr/local/etc/jupyterhub/secret/values.yaml"
        in c.JupyterHub.services[-1]["command"]
    )


def test_the_culler_refuses_a_python_hub_config():
    with pytest.raises(ConfigError, match=r"^Culler.hub_config: '/x/jupyterhub"):
        Culler(hub_config="/x/jupyterhub_config.py")


def test_generate_config_needs_no_communities():
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": TOKEN}
    env.pop("HUBEXT_COMMUNITIES", None)
    result = subprocess.run(
        [sys.executable, "-m", "hubext.culler", "--generate-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "# c.Culler.cull_arbiter_hook = None" in result.stdout
    assert "cannot read the communities" not in result.stderr
