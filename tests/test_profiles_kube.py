"""hubext-kube: the user's own profile list drives KubeSpawner; manifests are valid.

No Kubernetes API server runs here: KubeSpawner is built against a dummy
kubeconfig (tests/data/kubeconfig.yaml) and only builds pod manifests, which
are checked against the Kubernetes schema with kubernetes-validate.
"""

from __future__ import annotations

import asyncio
import copy

import kubernetes_validate
import pytest
from tornado import web

from hubext._validation import ConfigError
from hubext.spawners.kube import CommunityKubeSpawner

from .spawner_objects import kube_spawner as make_spawner
from .spawner_objects import pod_manifest

K8S_VERSION = "1.30"


async def gpu_node_selector(spawner):
    await asyncio.sleep(0)
    return {"hub.example.org/pool": f"gpu-{spawner.user.groups[0].name}"}


PROFILES = [
    {
        "display_name": "Small",
        "slug": "small",
        "kubespawner_override": {"cpu_limit": 1, "mem_limit": "2G"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {
                        "display_name": "Base",
                        "kubespawner_override": {
                            "image": "quay.io/jupyter/base-notebook:2024-12-02"
                        },
                    },
                    "scipy": {
                        "display_name": "SciPy",
                        "allowed_groups": ["ocean-lab"],
                        "kubespawner_override": {
                            "image": "quay.io/jupyter/scipy-notebook:2024-12-02"
                        },
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Image (name:tag)",
                    "validation_regex": r"[a-z0-9./-]+:[a-z0-9._-]+",
                    "kubespawner_override": {"image": "{value}"},
                    "allowed_groups": ["ocean-lab"],
                },
            }
        },
    },
    {
        "display_name": "GPU",
        "slug": "gpu",
        "allowed_groups": ["ocean-lab"],
        "kubespawner_override": {
            "extra_resource_limits": {"nvidia.com/gpu": "1"},
            "node_selector": gpu_node_selector,
            "environment": {"GPU": "yes"},
        },
    },
    {"display_name": "Workshop", "slug": "workshop", "allowed_groups": ["astro-101"]},
]


COMMUNITIES = {"ocean-lab": {"default_profile": "gpu"}, "astro-101": {}}


@pytest.fixture
def config(kube_spawner_config):
    return kube_spawner_config(PROFILES, COMMUNITIES)


def all_choices(profiles):
    """Every (profile, option values) a user of these profiles may submit."""
    for profile in profiles:
        options = profile.get("profile_options") or {}
        if not options:
            yield {"profile": profile["slug"]}
        for name, option in options.items():
            for key in option["choices"]:
                yield {"profile": profile["slug"], name: key}
            if option["unlisted_choice"].get("enabled"):
                yield {
                    "profile": profile["slug"],
                    f"{name}--unlisted-choice": "quay.io/x/y:1",
                }


@pytest.mark.parametrize(
    ("groups", "count"),
    [(["ocean-lab"], 4), (["astro-101"], 2), ([], 1)],
    ids=["ocean", "astro", "nobody"],
)
async def test_every_allowed_choice_gives_a_valid_pod(config, groups, count):
    spawner = make_spawner(config, "alice@github", groups)
    visible = await spawner.visible_profiles()
    submissions = list(all_choices(visible))
    assert len(submissions) == count
    for options in submissions:
        spawner = make_spawner(config, "alice@github", groups)
        manifest = await pod_manifest(spawner, options)
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


async def test_choices_reach_the_pod(config):
    spawner = make_spawner(config, "ann", ["ocean-lab"])
    pod = await pod_manifest(
        spawner, {"profile": "small", "image--unlisted-choice": "quay.io/x/y:1"}
    )
    assert pod["spec"]["containers"][0]["image"] == "quay.io/x/y:1"
    spawner = make_spawner(config, "ann", ["ocean-lab"])
    pod = await pod_manifest(spawner, {})  # ocean-lab's default_profile
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # the async override callable was awaited
    assert pod["spec"]["nodeSelector"] == {"hub.example.org/pool": "gpu-ocean-lab"}


async def test_configuration_is_not_changed_by_a_spawn(config):
    before = copy.deepcopy(config.KubeSpawner.profile_list)
    spawner = make_spawner(config, "ann", ["ocean-lab"])
    await pod_manifest(spawner, {"profile": "gpu"})
    assert config.KubeSpawner.profile_list == before
    # another user's spawner still sees the whole configured list
    other = make_spawner(config, "bo", ["astro-101"])
    assert [p["slug"] for p in await other.visible_profiles()] == ["small", "workshop"]


async def test_hidden_default_choice_is_not_applied_by_kubespawner(config):
    # astro-101 cannot use "scipy"; KubeSpawner gets astro's own list, so the
    # default it applies is one astro may use.
    spawner = make_spawner(config, "bo", ["astro-101"])
    pod = await pod_manifest(spawner, {"profile": "small"})
    assert pod["spec"]["containers"][0]["image"].endswith("base-notebook:2024-12-02")


@pytest.mark.parametrize(
    ("options", "status"),
    [
        ({"profile": "gpu"}, 403),
        ({"profile": "small", "image": "scipy"}, 403),
        ({"profile": "small", "image--unlisted-choice": "quay.io/x/y:1"}, 403),
        ({"image": "base"}, 400),
    ],
)
async def test_refusals_before_start(config, options, status):
    spawner = make_spawner(config, "bo", ["astro-101"])
    with pytest.raises(web.HTTPError) as info:
        await spawner.apply_community_options(options)
    assert info.value.status_code == status


async def test_callable_profile_list_returning_nothing_is_refused(config):
    config.KubeSpawner.profile_list = lambda spawner: []
    spawner = make_spawner(config, "ann", ["ocean-lab"])
    with pytest.raises(web.HTTPError) as info:
        await spawner.apply_community_options({})
    assert info.value.status_code == 403
    with pytest.raises(web.HTTPError):
        await spawner.community_options_form()


def test_start_up_checks(config):
    from hubext import Communities

    config.Communities.communities = {"ocean-lab": {"default_profile": "nope"}}
    with pytest.raises(
        ConfigError,
        match=r"\['ocean-lab'\].default_profile: no profile with slug 'nope'",
    ):
        CommunityKubeSpawner.check_hub_config(config, Communities(config=config))
    config.KubeSpawner.profile_list = [{"display_name": "A", "allowd_groups": ["x"]}]
    with pytest.raises(
        ConfigError, match=r"KubeSpawner.profile_list\[0\].allowd_groups"
    ):
        CommunityKubeSpawner.check_hub_config(config, Communities(config=config))


async def test_admins_own_form_template_gets_the_users_list(config):
    config.KubeSpawner.profile_form_template = (
        "{% for p in profile_list %}[{{ p.slug }}]{% endfor %}"
    )
    spawner = make_spawner(config, "bo", ["astro-101"])
    assert await spawner.community_options_form() == "[small][workshop]"


async def test_communities_are_parsed_once_per_configuration(config):
    first = make_spawner(config, "ann", ["ocean-lab"])
    second = make_spawner(config, "bo", ["astro-101"])
    assert first.communities is second.communities
    # another configuration (a new hub, a test) is parsed anew
    other = copy.deepcopy(config)
    assert make_spawner(other, "cy", []).communities is not first.communities
    assert [c.slug for c in make_spawner(other, "cy", []).communities] == [
        c.slug for c in first.communities
    ]
