"""What a community's admins store, checked against the bounds, and the profiles it makes (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubext._validation import ConfigErrors, KeyPath, errors_of
from hubext.delegated import (
    Delegated,
    Environment,
    effective,
    parse_delegated,
    profiles_of,
)
from hubext.profiles import (
    check_profile_list,
    initialize_profile_list,
    validate_user_options,
    visible_profile_list,
)
from hubext.self_service import parse_self_service
from hubext.spawners.local import check_local_overrides

GIB = 2**30
DIGEST = "sha256:" + "b" * 64
SERVICE = parse_self_service(
    {
        "environments": {
            "images": ["quay.io/ocean-lab/*"],
            "tag_pattern": r"v[0-9]+(\.[0-9]+)*",
            "software_roots": ["/srv/envs/ocean-lab"],
            "max_profiles": 3,
        },
        "sizes": {
            "small": {"display_name": "Small", "cpu_limit": 2, "mem_limit": "8G"},
            "gpu": {
                "display_name": "One GPU",
                "cpu_limit": 8,
                "mem_guarantee": "16G",
                "gpus": 1,
            },
        },
        "idle_timeout": {"min": 900, "max": 28800},
    },
    KeyPath("self_service"),
)
KUBE_DOC = {
    "environments": [
        {
            "slug": "model",
            "display_name": "Ocean model",
            "image": "quay.io/ocean-lab/model:v2.1",
            "sizes": ["small", "gpu"],
            "default_size": "gpu",
            "default": True,
        },
        {"slug": "pinned", "image": f"quay.io/ocean-lab/model@{DIGEST}"},
    ],
    "idle_timeout": 3600,
}
LOCAL_DOC = {
    "environments": [
        {"slug": "py311", "software_environment": "/srv/envs/ocean-lab/py311/"}
    ]
}


def test_a_document_within_the_bounds():
    assert parse_delegated(KUBE_DOC, SERVICE, "kube") == Delegated(
        environments=(
            Environment(
                slug="model",
                display_name="Ocean model",
                image="quay.io/ocean-lab/model:v2.1",
                sizes=("small", "gpu"),
                default_size="gpu",
                default=True,
            ),
            Environment(
                slug="pinned",
                display_name="pinned",
                image=f"quay.io/ocean-lab/model@{DIGEST}",
            ),
        ),
        idle_timeout=3600,
    )
    local = parse_delegated(LOCAL_DOC, SERVICE, "local")
    assert local.environments[0].software_environment == "/srv/envs/ocean-lab/py311"
    assert parse_delegated({}, SERVICE, "kube") == Delegated()


@pytest.mark.parametrize(
    ("document", "kind", "message"),
    [
        pytest.param(
            {"environments": [{"slug": "x", "image": "docker.io/evil/miner:v1"}]},
            "kube",
            "settings.environments[0].image: docker.io/evil/miner is not among the "
            "images allowed",
            id="image-outside",
        ),
        pytest.param(
            {"environments": [{"slug": "x", "image": "quay.io/ocean-lab/m:latest"}]},
            "kube",
            "settings.environments[0].image: the tag 'latest' does not match",
            id="tag-outside",
        ),
        pytest.param(
            {"environments": [{"slug": "x", "software_environment": "/srv/x/py"}]},
            "kube",
            "settings.environments[0].software_environment: this hub runs containers",
            id="local-value-on-kube",
        ),
        pytest.param(
            {"environments": [{"slug": "x", "image": "quay.io/ocean-lab/m:v1"}]},
            "local",
            "settings.environments[0].image: this hub runs servers on one machine",
            id="image-on-local",
        ),
        pytest.param(
            {"environments": [{"slug": "x", "software_environment": "/etc"}]},
            "local",
            "software_environment: /etc is not in the directories allowed",
            id="env-outside-roots",
        ),
        pytest.param(
            {
                "environments": [
                    {
                        "slug": "x",
                        "software_environment": "/srv/envs/ocean-lab/../../../etc",
                    }
                ]
            },
            "local",
            "software_environment: '/srv/envs/ocean-lab/../../../etc' is not a "
            "normalized path",
            id="env-dotdot",
        ),
        pytest.param(
            {
                "environments": [
                    {"slug": "x", "image": "quay.io/ocean-lab/m:v1", "sizes": ["huge"]}
                ]
            },
            "kube",
            "settings.environments[0].sizes[0]: 'huge' is not a size of this hub",
            id="unknown-size",
        ),
        pytest.param(
            {
                "environments": [
                    {
                        "slug": "x",
                        "image": "quay.io/ocean-lab/m:v1",
                        "sizes": ["small"],
                        "default_size": "gpu",
                    }
                ]
            },
            "kube",
            "default_size: 'gpu' is not one of its sizes",
            id="default-size-not-offered",
        ),
        pytest.param(
            {
                "environments": [
                    {"slug": s, "image": "quay.io/ocean-lab/m:v1"}
                    for s in ("a", "b", "c", "d")
                ]
            },
            "kube",
            "settings.environments: at most 3 environments, got 4",
            id="too-many",
        ),
        pytest.param(
            {
                "environments": [
                    {"slug": "a", "image": "quay.io/ocean-lab/m:v1"},
                    {"slug": "a", "image": "quay.io/ocean-lab/m:v2"},
                ]
            },
            "kube",
            "settings.environments[1].slug: 'a' is taken",
            id="slug-twice",
        ),
        pytest.param(
            {"environments": [{"slug": "a--b", "image": "quay.io/ocean-lab/m:v1"}]},
            "kube",
            "settings.environments[0].slug: lowercase letters, digits and single '-'",
            id="separator-in-slug",
        ),
        pytest.param(
            {"environments": [{"slug": "Ä", "image": "quay.io/ocean-lab/m:v1"}]},
            "kube",
            "settings.environments[0].slug: lowercase letters",
            id="unicode-slug",
        ),
        pytest.param(
            {"idle_timeout": 60},
            "kube",
            "settings.idle_timeout: 60 s is outside 900 s to 28800 s",
            id="idle-outside",
        ),
        pytest.param(
            {"limits": {"max_servers": 1000}},
            "kube",
            "settings.limits: unknown key",
            id="limits-are-the-operators",
        ),
        pytest.param(
            {
                "environments": [
                    {
                        "slug": "x",
                        "image": "quay.io/ocean-lab/m:v1",
                        "kubespawner_override": {},
                    }
                ]
            },
            "kube",
            "settings.environments[0].kubespawner_override: unknown key",
            id="no-overrides-of-their-own",
        ),
    ],
)
def test_a_document_outside_the_bounds_names_the_field(document, kind, message):
    with pytest.raises(ConfigErrors) as e:
        parse_delegated(document, SERVICE, kind)
    found = [str(x) for x in errors_of(e.value)]
    assert any(message in text for text in found), found


def test_nothing_delegated_nothing_accepted():
    nothing = parse_self_service({}, KeyPath("self_service"))
    with pytest.raises(ConfigErrors) as e:
        parse_delegated(
            {"environments": [{"slug": "a", "image": "quay.io/ocean-lab/m:v1"}]},
            nothing,
            "kube",
        )
    assert "may not offer environments" in str(e.value)
    with pytest.raises(ConfigErrors):
        parse_delegated({"idle_timeout": 3600}, nothing, "kube")


def test_stored_values_the_bounds_no_longer_allow_are_not_applied():
    tighter = parse_self_service(
        {
            "environments": {"images": ["quay.io/ocean-lab/*"], "tag_pattern": "v1"},
            "sizes": {"small": {"cpu_limit": 2}},
            "idle_timeout": {"min": 900, "max": 1800},
        },
        KeyPath("self_service"),
    )
    stored = {
        "environments": [
            {"slug": "new", "image": "quay.io/ocean-lab/m:v2", "sizes": ["small"]},
            {"slug": "old", "image": "quay.io/ocean-lab/m:v1", "sizes": ["small"]},
            {"slug": "gpu", "image": "quay.io/ocean-lab/m:v1", "sizes": ["gpu"]},
        ],
        "idle_timeout": 3600,
    }
    applied, problems = effective(stored, tighter, "kube")
    assert [e.slug for e in applied.environments] == ["old"]
    assert applied.idle_timeout is None
    assert sorted(str(p) for p in problems) == [
        "settings.environments[0].image: the tag 'v2' does not match 'v1'",
        "settings.environments[2].sizes[0]: 'gpu' is not a size of this hub (small)",
        "settings.idle_timeout: 3600 s is outside 900 s to 1800 s",
    ]
    # not a document at all: nothing applied, said once
    applied, problems = effective(["junk"], SERVICE, "kube")
    assert applied == Delegated() and [str(p) for p in problems] == [
        "settings: not a mapping: nothing of it is applied"
    ]
    assert effective(None, SERVICE, "kube") == (Delegated(), [])


def test_profiles_are_configured_profiles_of_the_community_only():
    delegated = parse_delegated(KUBE_DOC, SERVICE, "kube")
    profiles = profiles_of("ocean-lab", "Ocean Lab", delegated, SERVICE, "kube")
    check_profile_list(profiles, KeyPath("delegated"))
    assert [p["slug"] for p in profiles] == ["ocean-lab--model", "ocean-lab--pinned"]
    assert all(p["allowed_groups"] == ["ocean-lab"] for p in profiles)
    model = profiles[0]
    assert model["kubespawner_override"] == {"image": "quay.io/ocean-lab/model:v2.1"}
    choices = model["profile_options"]["size"]["choices"]
    assert choices["gpu"]["default"] and not choices["small"]["default"]
    assert choices["gpu"]["kubespawner_override"] == {
        "cpu_limit": 8.0,
        "mem_guarantee": 16 * GIB,
        "extra_resource_limits": {"nvidia.com/gpu": "1"},
    }
    assert "profile_options" not in profiles[1]
    full = initialize_profile_list(profiles)
    # members of the community see them; others do not
    assert len(visible_profile_list(full, ["ocean-lab"])) == 2
    assert visible_profile_list(full, ["astro-101"]) == []
    visible = visible_profile_list(full, ["ocean-lab"])
    assert validate_user_options(
        full, visible, {"profile": "ocean-lab--model", "size": "small"}
    ) == {"profile": "ocean-lab--model", "size": "small"}


def test_local_profiles_run_the_environments_python():
    delegated = parse_delegated(LOCAL_DOC, SERVICE, "local")
    profiles = profiles_of("ocean-lab", "Ocean Lab", delegated, SERVICE, "local")
    check_profile_list(profiles, KeyPath("delegated"))
    check_local_overrides(profiles)  # only what hubext-local takes
    override = profiles[0]["kubespawner_override"]
    assert override["cmd"] == [
        "/srv/envs/ocean-lab/py311/bin/python",
        "-m",
        "jupyterhub.singleuser",
    ]
    assert override["environment"]["PATH"].startswith("/srv/envs/ocean-lab/py311/bin:")


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    ["environments", "idle_timeout", "slug", "image", "sizes", "x"]
                )
                | st.text(max_size=8),
                inner,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_any_document_is_accepted_within_bounds_or_refused_never_an_error(document):
    try:
        parsed = parse_delegated(document, SERVICE, "kube")
    except ConfigErrors:
        pass
    else:
        for environment in parsed.environments:
            assert environment.image.startswith("quay.io/ocean-lab/")
    applied, _ = effective(document, SERVICE, "kube")
    for environment in applied.environments:
        assert environment.image.startswith("quay.io/ocean-lab/")


def test_a_configured_profile_may_not_take_a_communitys_environment_slug():
    from hubext.communities import parse_communities
    from hubext.profiles import check_delegated_slugs

    registry = parse_communities(
        {
            "ocean-lab": {
                "self_service": {"environments": {"images": ["quay.io/o/*"]}}
            },
            "astro-101": {},
        }
    )
    profiles = [
        {"display_name": "A", "slug": "ocean-lab--model"},
        {"display_name": "B", "slug": "astro-101--model"},  # nothing delegated
        {"display_name": "C", "slug": "ocean-lab-model"},
    ]
    with pytest.raises(ConfigErrors) as e:
        check_delegated_slugs(profiles, registry, KeyPath("KubeSpawner.profile_list"))
    assert [str(x) for x in errors_of(e.value)] == [
        "KubeSpawner.profile_list[0].slug: 'ocean-lab--model' is a name of "
        "ocean-lab's own environments (ocean-lab--...): choose another"
    ]
