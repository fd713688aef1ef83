"""hubext-kube starts, polls and stops real pods on an in-memory Kubernetes API.

What is real: ``CommunityKubeSpawner`` (hubext's code and KubeSpawner 7.1's,
unmocked: ``apply_community_options``, ``start``, ``poll``, ``stop``, its
shared reflectors and watches), and the ``kubernetes_asyncio`` client, which
talks HTTP/JSON to an API server on 127.0.0.1 found through a kubeconfig.

What is faked (tests/kube/kmock_cluster.py): the API server is kmock's
in-memory Kubernetes emulator with a thin adapter for what a real API server
adds (resource list, ``watch=True``, server-filled metadata and pod status,
graceful pod deletion), and a tiny fake kubelet that, through the same API,
reports each new pod Running on 127.0.0.1 and lets it go when it is deleted.
No container runs, so the server URL is never contacted.

The JupyterHub user and hub are plain objects, as in test_profiles_kube.py.
"""

from __future__ import annotations

import asyncio
import json

import kubernetes_validate
import pytest
from tornado import web

from .kube import CORE_RESOURCES, NAMESPACE, as_sent, pod_container
from .spawner_objects import kube_spawner as make_spawner

K8S_VERSION = "1.30"
#: Bound on every start/stop (KubeSpawner's own waits are bounded in config).
TIMEOUT = 15

OCEAN_IMAGE = "quay.io/ocean-lab/gpu-notebook:2025.01"
BASE_IMAGE = "quay.io/jupyter/base-notebook:2024-12-02"
SCIPY_IMAGE = "quay.io/jupyter/scipy-notebook:2024-12-02"


async def gpu_pool(spawner):
    """An async override callable: hubext awaits it (KubeSpawner 7.1 would not)."""
    await asyncio.sleep(0)
    return {"hub.example.org/pool": f"gpu-{spawner.user.groups[0].name}"}


PROFILES = [
    {
        "display_name": "Small",
        "slug": "small",
        "kubespawner_override": {
            "image": BASE_IMAGE,
            "cpu_limit": 1,
            "mem_limit": "2G",
            "environment": {"HUBEXT_PROFILE": "small"},
        },
    },
    {
        "display_name": "GPU",
        "slug": "gpu",
        "allowed_groups": ["ocean-lab"],
        "kubespawner_override": {
            "extra_resource_limits": {"nvidia.com/gpu": "1"},
            "node_selector": gpu_pool,
            "environment": {"HUBEXT_PROFILE": "gpu"},
        },
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {
                        "display_name": "Base",
                        "kubespawner_override": {"image": BASE_IMAGE},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Image (name:tag)",
                    "validation_regex": r"[a-z0-9./-]+:[a-z0-9._-]+",
                    "kubespawner_override": {"image": "{value}"},
                },
            }
        },
    },
    {
        "display_name": "Astronomy workshop",
        "slug": "astro",
        "allowed_groups": ["astro-101"],
        "kubespawner_override": {
            "image": SCIPY_IMAGE,
            "mem_limit": "4G",
            "node_selector": {"hub.example.org/pool": "workshop"},
            "environment": {"HUBEXT_PROFILE": "astro"},
        },
    },
]


COMMUNITIES = {"ocean-lab": {}, "astro-101": {}}


@pytest.fixture
def config(kube_spawner_config):
    return kube_spawner_config(PROFILES, COMMUNITIES, on_cluster=True)


def sent_pod(cluster, spawner) -> dict:
    """The pod manifest the spawner POSTed, as it went over the wire."""
    (create,) = [
        r
        for r in cluster.requests("create", "pods")
        if json.loads(r.body)["metadata"]["name"] == spawner.pod_name
    ]
    return json.loads(create.body)


def env(container) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


async def test_member_starts_polls_and_stops_a_gpu_server(cluster, config):
    spawner = make_spawner(config, "ann", ["ocean-lab"])
    await spawner.apply_community_options(
        {"profile": "gpu", "image--unlisted-choice": OCEAN_IMAGE}
    )

    url = await asyncio.wait_for(spawner.start(), TIMEOUT)

    assert url == "http://127.0.0.1:8888"
    sent = sent_pod(cluster, spawner)
    kubernetes_validate.validate(sent, K8S_VERSION, strict=True)
    pod = cluster.objects("pods", NAMESPACE)[spawner.pod_name]
    # what is stored is what was sent, plus the server's and kubelet's fields,
    # and that whole object is a valid pod too
    assert as_sent(pod) == sent
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["status"]["phase"] == "Running"
    assert pod["metadata"]["labels"]["hub.jupyter.org/username"] == "ann"
    notebook = pod_container(pod)
    assert notebook["image"] == OCEAN_IMAGE
    assert notebook["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["nodeSelector"] == {"hub.example.org/pool": "gpu-ocean-lab"}
    assert env(notebook)["HUBEXT_PROFILE"] == "gpu"
    assert spawner.pod_id == pod["metadata"]["uid"]
    assert cluster.kubelet.started == [f"{NAMESPACE}/{spawner.pod_name}"]

    assert await spawner.poll() is None

    await asyncio.wait_for(spawner.stop(), TIMEOUT)

    assert spawner.pod_name not in cluster.objects("pods")
    assert cluster.kubelet.stopped == [f"{NAMESPACE}/{spawner.pod_name}"]
    # the grace period KubeSpawner asked for reached the server
    (delete,) = cluster.requests("delete", "pods")
    assert delete.params["gracePeriodSeconds"] == str(spawner.delete_grace_period)
    assert await spawner.poll() == 1  # KubeSpawner's status for "no pod"
    # no storage, no internal SSL, no service: a pod and nothing else
    assert not any(cluster.objects(r) for r in CORE_RESOURCES if r != "pods")


@pytest.mark.parametrize(
    ("groups", "options"),
    [
        (["astro-101"], {"profile": "gpu"}),
        (["astro-101"], {"profile": "gpu", "image--unlisted-choice": OCEAN_IMAGE}),
        (["ocean-lab"], {"profile": "astro"}),
    ],
    ids=["astro-asks-gpu", "astro-asks-gpu-image", "ocean-asks-astro"],
)
async def test_refused_options_create_nothing(cluster, config, groups, options):
    spawner = make_spawner(config, "bo", groups)

    with pytest.raises(web.HTTPError) as info:
        await spawner.apply_community_options(options)

    assert info.value.status_code == 403
    for resource in CORE_RESOURCES:
        assert cluster.objects(resource) == {}
        for action in ("create", "update", "delete"):
            assert cluster.requests(action, resource) == []


async def test_two_communities_spawn_concurrently(cluster, config):
    ann = make_spawner(config, "ann", ["ocean-lab"])
    bo = make_spawner(config, "bo", ["astro-101"])
    await asyncio.gather(
        ann.apply_community_options({"profile": "gpu", "image": "base"}),
        bo.apply_community_options({"profile": "astro"}),
    )

    urls = await asyncio.wait_for(asyncio.gather(ann.start(), bo.start()), TIMEOUT)

    assert urls == ["http://127.0.0.1:8888"] * 2
    pods = cluster.objects("pods", NAMESPACE)
    assert set(pods) == {ann.pod_name, bo.pod_name}
    ann_pod, bo_pod = pods[ann.pod_name], pods[bo.pod_name]
    for spawner, pod in ((ann, ann_pod), (bo, bo_pod)):
        assert as_sent(pod) == sent_pod(cluster, spawner)
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        assert pod["metadata"]["labels"]["hub.jupyter.org/username"] == (
            spawner.user.name
        )

    ann_notebook = pod_container(ann_pod)
    assert ann_notebook["image"] == BASE_IMAGE
    assert ann_notebook["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert ann_pod["spec"]["nodeSelector"] == {"hub.example.org/pool": "gpu-ocean-lab"}
    assert env(ann_notebook)["HUBEXT_PROFILE"] == "gpu"

    bo_notebook = pod_container(bo_pod)
    assert bo_notebook["image"] == SCIPY_IMAGE
    assert "nvidia.com/gpu" not in bo_notebook["resources"].get("limits", {})
    assert bo_notebook["resources"]["limits"]["memory"] == 4 * 1024**3  # "4G"
    assert bo_pod["spec"]["nodeSelector"] == {"hub.example.org/pool": "workshop"}
    assert env(bo_notebook)["HUBEXT_PROFILE"] == "astro"

    assert await asyncio.gather(ann.poll(), bo.poll()) == [None, None]

    await asyncio.wait_for(asyncio.gather(ann.stop(), bo.stop()), TIMEOUT)

    assert cluster.objects("pods") == {}
    assert await asyncio.gather(ann.poll(), bo.poll()) == [1, 1]
