"""hubext-kube records its sessions: resources after overrides, GPUs, death by poll.

A real CommunityKubeSpawner (KubeSpawner 7.1's code, unmocked) against the
in-memory Kubernetes API of tests/kube (see tests/test_kube_spawn.py); the
ledger is a real SQLite file of the test's own.
"""

from __future__ import annotations

import asyncio

import pytest
import requests
from jupyterhub.spawner import SpawnException
from sqlalchemy import create_engine, text

from hubext.spawners.usage import _ledgers

from .kube import NAMESPACE
from .spawner_objects import kube_spawner as make_spawner
from .test_kube_spawn import COMMUNITIES, PROFILES, TIMEOUT


def rows(spawner_config) -> list[dict]:
    url = spawner_config.UsageLedger.db_url
    assert _ledgers[url].wait_idle(10)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(
                text("SELECT * FROM hubext_usage_sessions ORDER BY started_at")
            )
            return [dict(r._mapping) for r in result]
    finally:
        engine.dispose()


@pytest.fixture
def config(kube_spawner_config):
    return kube_spawner_config(PROFILES, COMMUNITIES, on_cluster=True)


@pytest.fixture
def sized_config(config):
    profile = config.KubeSpawner.profile_list[1]  # "gpu", ocean-lab's
    profile["kubespawner_override"].update(
        {"cpu_guarantee": 0.5, "cpu_limit": 2, "mem_guarantee": "1G", "mem_limit": "3G"}
    )
    return config


async def test_resources_after_overrides_and_death_found_by_poll(cluster, sized_config):
    spawner = make_spawner(sized_config, "ann", ["astro-101", "ocean-lab"])
    await spawner.apply_community_options({"profile": "gpu", "image": "base"})
    await asyncio.wait_for(spawner.start(), TIMEOUT)

    (row,) = rows(sized_config)
    # ocean-lab alone offers the GPU profile, though astro-101 comes first
    assert row["community"] == "ocean-lab"
    assert row["profile"] == "gpu"
    assert (row["cpu_request"], row["cpu_limit"]) == (0.5, 2.0)
    assert (row["mem_request"], row["mem_limit"]) == (1024**3, 3 * 1024**3)
    assert row["gpus"] == 1
    assert row["stopped_at"] is None
    # the pod is what the ledger says
    pod = cluster.objects("pods", NAMESPACE)[spawner.pod_name]
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"

    assert await spawner.poll() is None
    assert spawner.get_state()["hubext_usage"]["community"] == "ocean-lab"

    # the pod disappears behind the hub's back: the next poll ends the session
    deleted = await asyncio.to_thread(
        requests.delete,
        f"{cluster.url}/api/v1/namespaces/{NAMESPACE}/pods/{spawner.pod_name}",
        params={"gracePeriodSeconds": "0"},
        timeout=10,
    )
    assert deleted.status_code == 200, deleted.text
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while await spawner.poll() is None:
        assert asyncio.get_running_loop().time() < deadline, "pod never gone"
        await asyncio.sleep(0.05)

    (row,) = rows(sized_config)
    assert row["end_reason"] == "died"
    assert row["stopped_at"] is not None


async def test_stop_by_the_hub_itself_and_state_after_restart(cluster, config):
    spawner = make_spawner(config, "bo", ["astro-101"])
    await spawner.apply_community_options({"profile": "astro"})
    await asyncio.wait_for(spawner.start(), TIMEOUT)
    state = spawner.get_state()

    # the hub restarts: a new spawner object loads the state and finds the pod
    again = make_spawner(config, "bo", ["astro-101"])
    again.load_state(state)
    assert await again.poll() is None
    # no request asked for this stop (the hub shutting down): hub_restart
    await asyncio.wait_for(again.stop(), TIMEOUT)

    first, second = rows(config)
    assert first["id"] != second["id"]
    assert (second["community"], second["profile"]) == ("astro-101", "astro")
    assert second["mem_limit"] == first["mem_limit"] == 4 * 1024**3
    assert second["end_reason"] == "hub_restart"


async def test_limits_on_kube_count_resources_before_the_pod_exists(
    cluster,
    config,
):
    config.Communities.communities["ocean-lab"] = {"limits": {"max_gpu": 1}}
    first = make_spawner(config, "ann", ["ocean-lab"])
    second = make_spawner(config, "cy", ["ocean-lab"])
    await first.apply_community_options({"profile": "gpu", "image": "base"})
    # the GPU comes from the profile's override, which KubeSpawner applies
    # only inside start(): the reservation already counts it
    with pytest.raises(SpawnException) as refused:
        await second.apply_community_options({"profile": "gpu", "image": "base"})
    assert refused.value.status_code == 403
    assert refused.value.reason == "community-limit"
    assert "request 1 of its 1 GPU (max_gpu)" in refused.value.message
    # a CPU server of the same community is not limited by GPUs
    await second.apply_community_options({"profile": "small"})
    await asyncio.wait_for(first.start(), TIMEOUT)
    await asyncio.wait_for(first.stop(), TIMEOUT)
    # the place is given back when the session ends
    await second.apply_community_options({"profile": "gpu", "image": "base"})
    second.clear_state()


async def test_unvalidated_options_never_charge_another_community(
    cluster,
    config,
):
    # An admin's own apply_user_options that skipped hubext's validation:
    # the options name a community the user is not in.
    spawner = make_spawner(config, "bo", ["astro-101"])
    spawner.user_options = {"profile": "astro", "community": "ocean-lab"}
    await asyncio.wait_for(spawner.start(), TIMEOUT)
    await asyncio.wait_for(spawner.stop(), TIMEOUT)
    (row,) = rows(config)
    assert row["community"] == "_hub"
