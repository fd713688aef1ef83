"""The communities handed to hubext's services as data (hubext.service_data)."""

from __future__ import annotations

import json
import sys
import time

import pytest

from hubext._validation import ConfigError
from hubext.communities import parse_communities
from hubext.limits import Limits
from hubext.service_data import (
    COMMUNITIES_ENV,
    MAX_PAYLOAD_BYTES,
    SERVICE_ENV,
    SERVICE_KEYS,
    communities_payload,
    hand_to_services,
    read_communities,
    read_handover,
    read_spawner,
    spawner_settings,
)

RAW = {
    "ocean-lab": {
        "display_name": "Ocean Modelling Lab",
        "culling": {"idle_timeout": 1800},
        "members": [{"provider": "demo", "group": "ocean-lab"}],
        "admins": [{"provider": "demo", "group": "ocean-lab-admins"}],
        "environment": {"SCRATCH_BUCKET": "s3://x"},
        "usage": {"prices": {"cpu_hour": 0.05}},
    },
    "astro-101": None,
    "bio": {"culling": {"max_age": 7200, "cull_named_servers": False}},
}


def test_payload_has_service_keys_only_in_registry_order():
    parse_communities(RAW)  # the sample is a valid configuration
    data = json.loads(communities_payload(RAW, {"class": "x.Y"}))
    assert list(data["communities"]) == ["ocean-lab", "astro-101", "bio"]
    assert data["communities"]["ocean-lab"] == {
        "display_name": "Ocean Modelling Lab",
        "culling": {"idle_timeout": 1800},
        "usage": {"prices": {"cpu_hour": 0.05}},
    }
    assert data["communities"]["astro-101"] == {}
    assert data["spawner"] == {"class": "x.Y"}
    assert SERVICE_KEYS == ("display_name", "culling", "usage", "limits")


def test_round_trip_parses_with_the_hubs_parser():
    services = [
        {"name": "plain", "command": ["x"]},
        {"name": "culler", "environment": {SERVICE_ENV: "culler", "A": "1"}},
    ]
    original_env = services[1]["environment"]
    hand_to_services(services, RAW, {"class": "x.Y", "delete_pvc": False})
    assert "environment" not in services[0]
    env = services[1]["environment"]
    assert env["A"] == "1" and env[SERVICE_ENV] == "culler"
    assert COMMUNITIES_ENV not in original_env  # the configured dict is not changed
    communities = read_communities(env)
    assert list(communities) == ["ocean-lab", "astro-101", "bio"]
    assert communities["ocean-lab"].display_name == "Ocean Modelling Lab"
    assert communities["ocean-lab"].get("culling") == {"idle_timeout": 1800}
    assert communities["ocean-lab"].get("members") is None
    assert communities["bio"].get("culling") == {
        "max_age": 7200,
        "cull_named_servers": False,
    }
    assert read_spawner(env) == {"class": "x.Y", "delete_pvc": False}


def test_one_hand_over_default_limits_and_the_ledger_for_those_that_read_it():
    """The one variable carries everything a service gets: the default limits
    for every kind, the ledger's URL only for the kinds that read the ledger."""
    url = "postgresql://hubext:pw-Zq81Kx0@db.internal/usage"
    services = [
        {"name": k, "environment": {SERVICE_ENV: k}}
        for k in ("culler", "usage", "budgets", "someday")
    ]
    default = {"max_servers_per_member": 1}
    hand_to_services(services, RAW, default_limits=default, ledger_url=url)
    handed = {s["name"]: read_handover(s["environment"]) for s in services}
    assert {name: h.ledger_url for name, h in handed.items()} == {
        "culler": None,
        "usage": url,
        "budgets": url,
        "someday": None,
    }
    assert all(
        h.default_limits == Limits(max_servers_per_member=1) for h in handed.values()
    )
    for service in services:
        assert set(service["environment"]) == {SERVICE_ENV, COMMUNITIES_ENV}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"communities": {}, "limits": {"default": {"max_servers": -1}}},
            "$HUBEXT_COMMUNITIES.limits.default.max_servers: must be a whole number",
            id="bad-default-limits",
        ),
        pytest.param(
            {"communities": {}, "ledger": {"url": 7}},
            "$HUBEXT_COMMUNITIES.ledger.url: expected a database URL",
            id="bad-ledger-url",
        ),
        pytest.param(
            {"communities": {}, "limits": []},
            "$HUBEXT_COMMUNITIES.limits",
            id="limits-not-a-mapping",
        ),
    ],
)
def test_a_bad_hand_over_names_the_key(data, message):
    with pytest.raises(ConfigError) as e:
        read_handover({COMMUNITIES_ENV: json.dumps(data)})
    assert str(e.value).startswith(message), str(e.value)


@pytest.mark.parametrize(
    "environ, message",
    [
        pytest.param({}, "registered with hubext's register()", id="missing"),
        pytest.param({COMMUNITIES_ENV: "{"}, "not valid JSON", id="not-json"),
        pytest.param({COMMUNITIES_ENV: "[]"}, "", id="not-a-mapping"),
        pytest.param(
            {COMMUNITIES_ENV: json.dumps({"communities": {"Bad Slug": {}}})},
            "['Bad Slug']",
            id="bad-slug",
        ),
        pytest.param(
            {
                COMMUNITIES_ENV: json.dumps(
                    {"communities": {"a": {"culling": {"idle_timeout": 5}}}}
                )
            },
            "['a'].culling.idle_timeout: must be at least 60",
            id="bad-policy",
        ),
    ],
)
def test_read_communities_errors_name_the_variable(environ, message):
    with pytest.raises(ConfigError) as e:
        read_communities(environ)
    assert str(e.value).startswith(f"${COMMUNITIES_ENV}")
    assert message in str(e.value)


def test_read_communities_missing_names_the_authenticator():
    with pytest.raises(ConfigError, match="CommunityAuthenticator"):
        read_communities({})


def test_too_large_payload_is_refused_naming_the_service():
    huge = {
        f"c{i}": {"display_name": "x" * 190}
        for i in range(MAX_PAYLOAD_BYTES // 190 + 10)
    }
    services = [{"name": "a"}, {"name": "usage", "environment": {SERVICE_ENV: "u"}}]
    with pytest.raises(ConfigError) as e:
        hand_to_services(services, huge)
    assert e.value.path == "JupyterHub.services[1].environment"
    assert "'usage'" in str(e.value)
    assert COMMUNITIES_ENV not in services[1]["environment"]


def test_spawner_settings_resolve_delete_pvc_by_class_hierarchy():
    from kubespawner import KubeSpawner
    from traitlets.config import Config

    class SiteSpawner(KubeSpawner):
        pass

    assert spawner_settings(KubeSpawner, Config()) == {
        "class": "kubespawner.spawner.KubeSpawner",
        "delete_forever": True,
        "delete_pvc": True,
    }
    config = Config({"KubeSpawner": {"delete_pvc": False}})
    settings = spawner_settings(SiteSpawner, config)
    assert settings["delete_pvc"] is False
    assert settings["class"].endswith(".SiteSpawner")
    from jupyterhub.spawner import LocalProcessSpawner

    assert spawner_settings(LocalProcessSpawner, Config()) == {
        "class": "jupyterhub.spawner.LocalProcessSpawner",
        "delete_forever": False,
    }


# -- a real hub -----------------------------------------------------------------------

PROBE = """
import json, os, sys, time
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(dict(os.environ), f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)
"""


def probe_service(directory, name: str, kind: str | None) -> tuple[str, object]:
    """Hub configuration adding a managed service ``name`` that writes its
    environment to a file (marked as a hubext service of ``kind``, if given);
    and a function waiting for that environment."""
    probe, out = directory / "probe.py", directory / f"{name}.json"
    probe.write_text(PROBE)
    environment = {SERVICE_ENV: kind} if kind else {}
    config = f"""
c.JupyterHub.services.append({{
    "name": {name!r},
    "command": [{sys.executable!r}, {str(probe)!r}, {str(out)!r}],
    "environment": {environment!r},
}})
"""

    def environ(timeout: float = 30) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while not out.exists():
            assert time.monotonic() < deadline, f"{out} never written"
            time.sleep(0.1)
        return json.loads(out.read_text())

    return config, environ


@pytest.mark.e2e
def test_a_registered_service_gets_the_communities_and_no_hub_secret(
    start_hub, tmp_path
):
    marked_config, marked = probe_service(tmp_path, "probe-marked", "probe")
    page_config, page = probe_service(tmp_path, "probe-page", "usage")
    plain_config, plain = probe_service(tmp_path, "probe-plain", None)
    # keys added from another file reach the services too
    added = """
from hubext import add_to_community
add_to_community(c, "ocean-lab", limits={"max_servers": 7})
c.UsageLimits.default = {"max_servers_per_member": 2}
"""
    hub = start_hub(marked_config + page_config + plain_config + added)
    env = marked()
    assert COMMUNITIES_ENV not in plain()
    communities = read_communities(env)
    assert list(communities) == ["ocean-lab", "astro-101"]
    assert communities["ocean-lab"].limits.max_servers == 7
    handed = read_handover(env)
    assert handed.default_limits == Limits(max_servers_per_member=2)
    # the ledger's address: only to the services that read the ledger
    assert handed.ledger_url is None
    ledger = read_handover(page()).ledger_url
    assert ledger.startswith("sqlite:///") and ledger.endswith("hubext-usage.sqlite")
    assert communities["astro-101"].get("culling") == {
        "idle_timeout": 300,
        "max_age": 8 * 3600,
    }
    payload = json.loads(env[COMMUNITIES_ENV])
    for definition in payload["communities"].values():
        assert set(definition) <= set(SERVICE_KEYS)
    assert read_spawner(env)["class"].endswith("Spawner")
    # None of the hub's secrets, nor its environment.
    secrets = [hub.env.client_secret, hub.env.crypt_key]
    for name, value in env.items():
        for secret in secrets:
            assert secret not in value, name
    assert "JUPYTERHUB_CRYPT_KEY" not in env
    assert "HUBEXT_DEMO_CLIENT_SECRET" not in env
    # The demo's culler (jupyterhub_config.d/30-culler.py, register()) runs
    # its passes with the communities it was handed.
    deadline = time.monotonic() + 30
    while "hubext-culler: pass done" not in hub.log():
        assert time.monotonic() < deadline, hub.log()[-2000:]
        time.sleep(0.2)
    assert "cannot read the communities" not in hub.log()
