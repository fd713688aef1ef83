"""The ``self_service`` key: the operator's bounds on what community admins change (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubext._validation import ConfigError, ConfigErrors, KeyPath, errors_of
from hubext.communities import parse_communities
from hubext.self_service import (
    EnvironmentBounds,
    InvitationBounds,
    SelfService,
    Size,
    idle_timeout_problem,
    image_problem,
    parse_image,
    parse_self_service,
    size_problem,
    software_environment_problem,
)

PATH = KeyPath("Communities.communities['lab'].self_service")
GIB = 2**30

FULL = {
    "environments": {
        "images": ["quay.io/ocean-lab/*", "ghcr.io/ocean-lab/model"],
        "tag_pattern": r"v?[0-9]+(\.[0-9]+)*",
        "allow_digest": False,
        "software_roots": ["/srv/envs/ocean-lab"],
        "max_profiles": 5,
    },
    "sizes": {
        "small": {
            "display_name": "2 CPUs, 8 GiB",
            "cpu_limit": 2,
            "mem_limit": "8G",
            "cpu_guarantee": 0.5,
            "mem_guarantee": "2G",
        },
        "gpu": {"cpu_limit": 8, "mem_limit": "32G", "gpus": 1},
    },
    "idle_timeout": {"min": 900, "max": 28800},
}


def test_parse_everything():
    service = parse_self_service(FULL, PATH)
    assert service.environments == EnvironmentBounds(
        images=("quay.io/ocean-lab/*", "ghcr.io/ocean-lab/model"),
        tag_pattern=r"v?[0-9]+(\.[0-9]+)*",
        allow_digest=False,
        software_roots=("/srv/envs/ocean-lab",),
        max_profiles=5,
    )
    assert dict(service.sizes) == {
        "small": Size("small", "2 CPUs, 8 GiB", 2.0, 0.5, 8 * GIB, 2 * GIB, 0),
        "gpu": Size("gpu", "gpu", 8.0, None, 32 * GIB, None, 1),
    }
    assert service.idle_timeout == (900, 28800)
    assert service.sizes["small"].cpu == 0.5 and service.sizes["gpu"].cpu == 8
    assert parse_self_service({}, PATH).empty


def test_nothing_is_delegated_by_default():
    (community,) = parse_communities({"lab": {}}).values()
    assert community.self_service == SelfService()
    assert image_problem(community.self_service.environments, "quay.io/x/y:1")
    assert idle_timeout_problem(community.self_service, 3600)
    assert size_problem(community.self_service, "small")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            {"colour": 1}, "self_service.colour: unknown key", id="unknown-key"
        ),
        pytest.param(
            {"environments": {}},
            "self_service.environments: names no environment",
            id="environments-without-any",
        ),
        pytest.param(
            {"environments": {"images": ["*"]}},
            "self_service.environments.images[0]: must name a registry",
            id="any-image",
        ),
        pytest.param(
            {"environments": {"images": ["*/anything"]}},
            "self_service.environments.images[0]: the registry must be named",
            id="any-registry",
        ),
        pytest.param(
            {"environments": {"images": ["quay.io/lab/model:v1"]}},
            "images[0]: must name a registry and a repository, with * or ? "
            "for any part, and no tag",
            id="pattern-with-a-tag",
        ),
        pytest.param(
            {"environments": {"images": ["quay.io/x/*"], "tag_pattern": "("}},
            "tag_pattern: not a regular expression",
            id="bad-regex",
        ),
        pytest.param(
            {"environments": {"images": ["quay.io/x/*"], "tag_pattern": ".*"}},
            "tag_pattern: matches an empty tag",
            id="regex-matching-nothing",
        ),
        pytest.param(
            {"environments": {"software_roots": ["/"]}},
            "software_roots[0]: too broad",
            id="root-of-everything",
        ),
        pytest.param(
            {"environments": {"software_roots": ["relative/envs"]}},
            "software_roots[0]: must be an absolute, normalized directory",
            id="relative-root",
        ),
        pytest.param(
            {"environments": {"software_roots": ["/srv/envs/../etc"]}},
            "software_roots[0]: must be an absolute, normalized directory",
            id="dotdot-root",
        ),
        pytest.param(
            {"environments": {"images": ["quay.io/x/*"], "max_profiles": 0}},
            "max_profiles: must be a whole number above 0",
            id="no-profiles",
        ),
        pytest.param(
            {"environments": {"images": ["quay.io/x/*"], "max_profiles": 1000}},
            "max_profiles: at most 100",
            id="too-many-profiles",
        ),
        pytest.param(
            {"sizes": {"Big One": {"cpu_limit": 1}}},
            "self_service.sizes['Big One']: a size's name must be",
            id="size-name",
        ),
        pytest.param(
            {"sizes": {}}, "self_service.sizes: defines no size", id="no-size"
        ),
        pytest.param(
            {"sizes": {"s": {"display_name": "S"}}},
            "self_service.sizes['s']: sets nothing",
            id="size-setting-nothing",
        ),
        pytest.param(
            {"sizes": {"s": {"cpu_limit": 1, "cpu_guarantee": 2}}},
            "sizes['s'].cpu_guarantee: is more than cpu_limit",
            id="guarantee-past-limit",
        ),
        pytest.param(
            {"sizes": {"s": {"mem_limit": "lots"}}},
            "sizes['s'].mem_limit: must be bytes or a size",
            id="bad-memory",
        ),
        pytest.param(
            {"sizes": {"s": {"cpu_limit": -1}}},
            "sizes['s'].cpu_limit: must be a number above 0",
            id="negative-cpu",
        ),
        pytest.param(
            {"sizes": {"s": {"gpus": True}}},
            "sizes['s'].gpus: expected a whole number",
            id="gpus-bool",
        ),
        pytest.param(
            {"idle_timeout": {"min": 10, "max": 100}},
            "idle_timeout.min: must be at least 60 seconds",
            id="idle-too-short",
        ),
        pytest.param(
            {"idle_timeout": {"min": 7200, "max": 3600}},
            "idle_timeout.min: is more than max",
            id="min-past-max",
        ),
        pytest.param(
            {"idle_timeout": {"max": 3600}},
            "idle_timeout: missing required key 'min'",
            id="idle-without-min",
        ),
    ],
)
def test_bad_bounds_name_the_key(value, message):
    with pytest.raises(ConfigErrors) as e:
        parse_self_service(value, PATH)
    assert any(message in str(error) for error in errors_of(e.value)), [
        str(x) for x in errors_of(e.value)
    ]


def test_every_error_at_once():
    with pytest.raises(ConfigErrors) as e:
        parse_self_service(
            {
                "environments": {"images": ["*"], "max_profiles": 0},
                "sizes": {"s": {"cpu_limit": -1}},
                "idle_timeout": {"min": 1, "max": 2},
            },
            PATH,
        )
    assert len(errors_of(e.value)) >= 4


def test_a_size_past_the_communitys_limits_stops_the_hub():
    with pytest.raises(ConfigErrors) as e:
        parse_communities(
            {
                "lab": {
                    "limits": {"max_cpu": 4, "max_memory": "16G", "max_gpu": 0},
                    "self_service": FULL,
                }
            }
        )
    where = "Communities.communities['lab'].self_service.sizes['gpu']"
    assert sorted(str(x) for x in errors_of(e.value)) == [
        f"{where}: takes 1 GPU, more than the community's limits.max_gpu allows",
        f"{where}: takes 32 GiB, more than the community's limits.max_memory allows",
        f"{where}: takes 8 CPUs, more than the community's limits.max_cpu allows",
    ]


BOUNDS = EnvironmentBounds(
    images=("quay.io/ocean-lab/*",),
    tag_pattern=r"v?[0-9]+(\.[0-9]+)*",
    allow_digest=True,
    software_roots=("/srv/envs/ocean-lab",),
)
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("quay.io/ocean-lab/model:v2.1", None),
        ("quay.io/ocean-lab/model:2", None),
        (f"quay.io/ocean-lab/model@{DIGEST}", None),
        (f"quay.io/ocean-lab/model:v2@{DIGEST}", None),
        ("quay.io/ocean-lab/model", "give a tag or a digest"),
        ("quay.io/ocean-lab/model:latest", "does not match"),
        ("quay.io/ocean-lab/model:v2.1-rc", "does not match"),
        ("quay.io/ocean-lab-evil/model:v1", "is not among the images allowed"),
        ("quay.io/astro/model:v1", "is not among the images allowed"),
        ("docker.io/ocean-lab/model:v1", "is not among the images allowed"),
        ("quay.io/ocean-lab/../astro/model:v1", "is not an image reference"),
        ("QUAY.IO/ocean-lab/model:v1", "is not an image reference"),
        ("quay.io/ocean-lab/model:v1 ", "is not an image reference"),
        ("quay.io/ocean-lab/model:v1\n", "is not an image reference"),
        ("", "is not an image reference"),
        (7, "is not an image reference"),
        ("quay.io/ocean-lab/model@sha256:abc", "is not an image reference"),
    ],
)
def test_images_within_the_bounds(image, problem):
    found = image_problem(BOUNDS, image)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found


def test_a_pattern_matches_one_path_segment_per_star_or_more():
    # fnmatch's * matches "/" too: quay.io/ocean-lab/* allows nested
    # repositories of ocean-lab, never another organization's
    assert image_problem(BOUNDS, "quay.io/ocean-lab/team/model:v1") is None
    assert parse_image("quay.io:443/ocean-lab/model:v1") == (
        "quay.io:443/ocean-lab/model",
        "v1",
        None,
    )


def test_digests_may_be_refused():
    bounds = EnvironmentBounds(images=("quay.io/ocean-lab/*",), allow_digest=False)
    assert "digest" in image_problem(bounds, f"quay.io/ocean-lab/m@{DIGEST}")
    assert image_problem(bounds, "quay.io/ocean-lab/m:anything-goes") is None


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/srv/envs/ocean-lab/py311", None),
        ("/srv/envs/ocean-lab/py311/", None),
        ("/srv/envs/ocean-lab", "is not in the directories allowed"),
        ("/srv/envs/ocean-lab-evil/py", "is not in the directories allowed"),
        ("/srv/envs/ocean-lab/../astro/py", "is not a normalized path"),
        ("/srv/envs/ocean-lab/./py", "is not a normalized path"),
        ("srv/envs/ocean-lab/py", "is not an absolute path"),
        ("/srv/envs/ocean-lab/py\0", "is not an absolute path"),
        (None, "is not an absolute path"),
    ],
)
def test_software_environments_within_the_roots(path, problem):
    found = software_environment_problem(BOUNDS, path)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found


def test_idle_timeout_and_sizes_within_the_bounds():
    service = parse_self_service(FULL, PATH)
    assert idle_timeout_problem(service, 3600) is None
    assert idle_timeout_problem(service, 900) is None
    assert "outside 900 s to 28800 s" in idle_timeout_problem(service, 899)
    assert "outside" in idle_timeout_problem(service, 28801)
    assert "not a number" in idle_timeout_problem(service, True)
    assert "not a number" in idle_timeout_problem(service, "3600")
    assert size_problem(service, "small") is None
    assert "not a size of this hub" in size_problem(service, "huge")


@given(st.text(max_size=80))
def test_any_text_is_an_image_or_a_problem_never_an_error(text):
    problem = image_problem(BOUNDS, text)
    assert problem is None or isinstance(problem, str)
    if problem is None:
        name, tag, digest = parse_image(text)
        assert name.startswith("quay.io/ocean-lab/")
        assert tag is not None or digest is not None


# -- invitations (#23) ----------------------------------------------------------------


def test_invitations_not_delegated_by_default():
    assert parse_self_service({}, PATH).invitations is None
    assert parse_self_service(FULL, PATH).invitations is None


def test_invitations_parsed():
    service = parse_self_service(
        {"invitations": {"max_uses": 300, "max_days": 14, "max_membership_days": 5}},
        PATH,
    )
    assert service.invitations == InvitationBounds(300, 14, 5)
    assert not service.empty
    plain = parse_self_service({"invitations": {"max_uses": 1, "max_days": 1}}, PATH)
    assert plain.invitations == InvitationBounds(1, 1, None)


@pytest.mark.parametrize(
    ("value", "messages"),
    [
        (
            {"max_uses": 0, "max_days": 400, "max_membership_day": 3},
            {
                f"{PATH}.invitations.max_uses": "above 0",
                f"{PATH}.invitations.max_days": "at most 366 days",
                f"{PATH}.invitations.max_membership_day": "did you mean",
            },
        ),
        (
            {"max_uses": True, "max_days": 2.5},
            {
                f"{PATH}.invitations.max_uses": "a whole number",
                f"{PATH}.invitations.max_days": "a whole number",
            },
        ),
        ({"max_days": 3}, {f"{PATH}.invitations": "missing required key 'max_uses'"}),
        ([], {f"{PATH}.invitations": "a mapping"}),
        (
            {"max_uses": 10_001, "max_days": 1, "max_membership_days": "1"},
            {
                f"{PATH}.invitations.max_uses": "at most 10000 uses",
                f"{PATH}.invitations.max_membership_days": "a whole number",
            },
        ),
    ],
)
def test_invitations_errors_with_key_paths(value, messages):
    with pytest.raises(ConfigError) as caught:
        parse_self_service({"invitations": value}, PATH)
    found = {e.path: e.reason for e in errors_of(caught.value)}
    assert set(found) == set(messages), found
    for path, part in messages.items():
        assert part in found[path], (path, found[path])
