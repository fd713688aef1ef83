"""A community's stored image reaches its members' pods on hubext-kube.

What is real: ``CommunityKubeSpawner`` (hubext's code and KubeSpawner's),
the delegated state's store on SQLite, opened as the hub opens it
(:func:`hubext.console.config.hub_store`: one store per database in the
process, so that a change through it is seen at the next spawn), the
``kubernetes_asyncio`` client talking to the in-memory Kubernetes API of
tests/kube (kmock and a fake kubelet), and the pods it sent, checked
against Kubernetes' schema. A restart is a new Python process building the
pod from the same database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from tornado import web

from hubext.console.config import Console, hub_store
from hubext.spawners.kube import CommunityKubeSpawner

from .conftest import DUMMY_KUBECONFIG
from .kube import CORE_RESOURCES, NAMESPACE, pod_container
from .spawner_objects import kube_spawner as make_spawner
from .test_kube_spawn import K8S_VERSION, TIMEOUT

BASE_IMAGE = "quay.io/jupyter/base-notebook:2024-12-02"
MODEL = "quay.io/ocean-lab/model:v2.1"
MODEL_NEXT = "quay.io/ocean-lab/model:v2.2"
SLUG = "ocean-lab--model"
GIB = 2**30

PROFILES = [
    {
        "display_name": "Standard",
        "slug": "standard",
        "kubespawner_override": {"image": BASE_IMAGE},
    }
]

COMMUNITIES = {
    "ocean-lab": {
        "display_name": "Ocean Modelling Lab",
        "limits": {"max_cpu": 32, "max_gpu": 2},
        "self_service": {
            "environments": {
                "images": ["quay.io/ocean-lab/*"],
                "tag_pattern": r"v[0-9]+(\.[0-9]+)*",
            },
            "sizes": {
                "small": {"cpu_limit": 1, "mem_limit": "2G"},
                "gpu": {
                    "display_name": "8 CPUs, 32 GiB, 1 GPU",
                    "cpu_guarantee": 4,
                    "cpu_limit": 8,
                    "mem_guarantee": "16G",
                    "mem_limit": "32G",
                    "gpus": 1,
                },
            },
        },
    },
    "astro-101": {"display_name": "Astronomy 101"},
}


def model(image: str = MODEL) -> dict:
    return {
        "slug": "model",
        "display_name": "Ocean model",
        "image": image,
        "sizes": ["small", "gpu"],
    }


@pytest.fixture
def config(kube_spawner_config, tmp_path):
    config = kube_spawner_config(PROFILES, COMMUNITIES, on_cluster=True)
    config.Console.db_url = f"sqlite:///{tmp_path / 'hubext-state.sqlite'}"
    return config


def the_hubs_store(config):
    """The store the hub process uses for this configuration (the console's)."""
    return hub_store(Console(config=config), "sqlite:///not-used.sqlite")


def store(config, document: dict, action: str = "environment.add") -> int:
    state = the_hubs_store(config)
    version = state.read("ocean-lab").version
    return state.change(
        "ocean-lab", version, document, actor="olga", actor_kind="user", action=action
    ).version


async def start_pod(cluster, config, options) -> dict:
    spawner = make_spawner(config, "ann", ["ocean-lab"])
    await spawner.apply_community_options(options)
    await asyncio.wait_for(spawner.start(), TIMEOUT)
    # the last pod of this name sent (each test starts ann's server again)
    sent = [
        json.loads(r.body)
        for r in cluster.requests("create", "pods")
        if json.loads(r.body)["metadata"]["name"] == spawner.pod_name
    ][-1]
    kubernetes_validate.validate(sent, K8S_VERSION, strict=True)
    await asyncio.wait_for(spawner.stop(), TIMEOUT)
    return sent


async def test_the_stored_image_reaches_the_pod_and_a_change_the_next_one(
    cluster, config
):
    store(config, {"environments": [model()]})

    pod = await start_pod(cluster, config, {"profile": SLUG, "size": "gpu"})

    notebook = pod_container(pod)
    assert notebook["image"] == MODEL
    assert notebook["resources"] == {
        "limits": {"cpu": 8.0, "memory": 32 * GIB, "nvidia.com/gpu": "1"},
        "requests": {"cpu": 4.0, "memory": 16 * GIB},
    }
    assert pod["metadata"]["labels"]["hub.jupyter.org/username"] == "ann"

    # an admin changes the tag: the next spawn has it, nothing restarted
    store(config, {"environments": [model(MODEL_NEXT)]}, "environment.edit")
    pod = await start_pod(cluster, config, {"profile": SLUG, "size": "small"})
    assert pod_container(pod)["image"] == MODEL_NEXT
    assert pod_container(pod)["resources"]["limits"] == {"cpu": 1.0, "memory": 2 * GIB}
    # the configured profile is untouched
    pod = await start_pod(cluster, config, {"profile": "standard"})
    assert pod_container(pod)["image"] == BASE_IMAGE


async def test_another_community_cannot_start_it(cluster, config):
    store(config, {"environments": [model()]})
    spawner = make_spawner(config, "bo", ["astro-101"])
    with pytest.raises(web.HTTPError) as info:
        await spawner.apply_community_options({"profile": SLUG})
    assert info.value.status_code == 403
    assert "'ocean-lab--model' is not available to your communities" in (
        info.value.log_message % info.value.args
    )
    for resource in CORE_RESOURCES:
        assert cluster.objects(resource) == {}


async def test_an_image_the_bounds_no_longer_allow_is_not_offered(
    cluster, config, caplog
):
    store(config, {"environments": [model()]})
    config.Communities.communities["ocean-lab"]["self_service"]["environments"][
        "tag_pattern"
    ] = r"v3(\.[0-9]+)*"
    spawner = make_spawner(config, "ann", ["ocean-lab"])
    with caplog.at_level(logging.WARNING):
        form = await spawner.community_options_form()
    assert SLUG not in form and "Standard" in form
    assert (
        "hubext: ocean-lab's settings.environments[0].image: the tag 'v2.1' "
        "does not match 'v3(\\\\.[0-9]+)*': not applied"
    ) in caplog.text
    with pytest.raises(web.HTTPError) as info:
        await spawner.apply_community_options({"profile": SLUG})
    assert info.value.status_code == 400
    assert cluster.objects("pods", NAMESPACE) == {}


RESTARTED = """
import asyncio, json, sys
from pathlib import Path
from tests.spawner_objects import kube_spawner, kube_spawner_config, pod_manifest

args = json.loads(sys.argv[1])
config = kube_spawner_config(
    args["profiles"], args["communities"], ledger=Path(args["ledger"])
)
config.Console.db_url = args["state"]


async def main():
    spawner = kube_spawner(config, "ann", ["ocean-lab"])
    return await pod_manifest(spawner, args["options"])


print(json.dumps(asyncio.run(main())))
"""


def test_a_restart_keeps_the_stored_image(config, tmp_path):
    store(config, {"environments": [model(MODEL_NEXT)]})
    args = {
        "profiles": PROFILES,
        "communities": COMMUNITIES,
        "ledger": str(tmp_path / "restarted-usage.sqlite"),
        "state": config.Console.db_url,
        "options": {"profile": SLUG, "size": "small"},
    }
    done = subprocess.run(
        [sys.executable, "-c", RESTARTED, json.dumps(args)],
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "KUBECONFIG": str(DUMMY_KUBECONFIG)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pod = json.loads(done.stdout.splitlines()[-1])
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod_container(pod)["image"] == MODEL_NEXT


def test_the_spawner_says_it_runs_images():
    assert CommunityKubeSpawner.delegated_kind == "kube"
