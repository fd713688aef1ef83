"""Profile visibility and validation of submissions (pure logic)."""

from __future__ import annotations

import copy
import json

import pytest

from hubext._validation import ConfigError, ConfigErrors, KeyPath
from hubext.profiles import (
    OptionsError,
    check_allowed_groups,
    check_profile_list,
    initialize_profile_list,
    validate_user_options,
    visible_profile_list,
)

PROFILES = [
    {
        "display_name": "Small CPU",
        "slug": "cpu",
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {"display_name": "Base"},
                    "ocean": {
                        "display_name": "Ocean tools",
                        "allowed_groups": ["Ocean-Lab"],
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Image name",
                    "validation_regex": r"[a-z0-9./-]+:[a-z0-9.-]+",
                    "validation_message": "name:tag",
                    "kubespawner_override": {"image": "{value}"},
                    "allowed_groups": ["ocean-lab"],
                },
            },
        },
    },
    {
        "display_name": "GPU (ocean-lab)",
        "slug": "gpu",
        "allowed_groups": ["OCEAN-LAB"],
        "profile_options": {
            "gpus": {
                "display_name": "GPUs",
                "choices": {
                    "one": {"display_name": "1"},
                    "four": {
                        "display_name": "4",
                        "allowed_groups": ["ocean-lab-admins"],
                    },
                },
            },
        },
    },
    {
        "display_name": "Workshop",
        "slug": "workshop",
        "allowed_groups": ["astro-101"],
        "profile_options": {
            "size": {
                "display_name": "Size",
                "choices": {
                    "big": {"display_name": "Big", "allowed_groups": ["staff"]}
                },
            },
        },
    },
]

FULL = initialize_profile_list(PROFILES)


def visible(groups, **kwargs):
    return visible_profile_list(FULL, groups, **kwargs)


def test_configuration_is_never_mutated():
    before = copy.deepcopy(PROFILES)
    visible(["ocean-lab"])
    visible([])
    initialize_profile_list(PROFILES)
    assert before == PROFILES


@pytest.mark.parametrize(
    ("groups", "slugs"),
    [
        pytest.param([], ["cpu"], id="nobody"),
        pytest.param(["ocean-lab"], ["cpu", "gpu"], id="ocean"),
        pytest.param(["Ocean-Lab"], ["cpu", "gpu"], id="casefolded"),
        pytest.param(["astro-101"], ["cpu", "workshop"], id="astro"),
        pytest.param(["astro-101", "ocean-lab"], ["cpu", "gpu", "workshop"], id="both"),
    ],
)
def test_visible_profiles(groups, slugs):
    assert [p["slug"] for p in visible(groups)] == slugs


def test_hidden_choices_and_unlisted():
    cpu = visible([])[0]
    image = cpu["profile_options"]["image"]
    assert list(image["choices"]) == ["base"]
    assert image["unlisted_choice"]["enabled"] is False
    ocean = visible(["ocean-lab"])[0]["profile_options"]["image"]
    assert list(ocean["choices"]) == ["base", "ocean"]
    assert ocean["unlisted_choice"]["enabled"] is True
    # no allowed_groups key reaches the rendered list
    assert "allowed_groups" not in str(visible(["ocean-lab"]))


def test_visible_list_golden():
    """One user's list, exactly, key order included (the form renders it in order)."""
    # the configured one, without allowed_groups, with KubeSpawner's label
    configured = PROFILES[0]["profile_options"]["image"]["unlisted_choice"]
    unlisted = {k: v for k, v in configured.items() if k != "allowed_groups"}
    unlisted["display_name_in_choices"] = "Other..."
    expected = [
        {
            "display_name": "Small CPU",
            "slug": "cpu",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "base": {"display_name": "Base", "default": True},
                        "ocean": {"display_name": "Ocean tools"},
                    },
                    "unlisted_choice": unlisted,
                }
            },
            "default": True,
        },
        {
            "display_name": "GPU (ocean-lab)",
            "slug": "gpu",
            "profile_options": {
                "gpus": {
                    "display_name": "GPUs",
                    "choices": {"one": {"display_name": "1", "default": True}},
                    "unlisted_choice": {"enabled": False},
                }
            },
        },
    ]
    ours = visible(["ocean-lab"])
    assert ours == expected
    assert json.dumps(ours) == json.dumps(expected)
    # nobody's: the unlisted choice is kept, disabled
    nobody = visible([])
    assert json.dumps(nobody) == json.dumps(
        [
            {
                **expected[0],
                "profile_options": {
                    "image": {
                        "display_name": "Image",
                        "choices": {"base": {"display_name": "Base", "default": True}},
                        "unlisted_choice": {**unlisted, "enabled": False},
                    }
                },
            }
        ]
    )


def test_option_with_all_choices_hidden_is_dropped():
    workshop = visible(["astro-101"])[1]
    assert workshop["slug"] == "workshop"
    assert workshop["profile_options"] == {}


def test_admins_see_everything():
    assert [p["slug"] for p in visible([], see_all=True)] == ["cpu", "gpu", "workshop"]


def test_default_profile():
    both = visible(["ocean-lab", "astro-101"], default_profile="workshop")
    assert [p["slug"] for p in both if p.get("default")] == ["workshop"]
    # a default that is not visible falls back to the first visible profile
    assert [p["slug"] for p in visible([], default_profile="gpu") if p["default"]] == [
        "cpu"
    ]


OCEAN = ["ocean-lab"]


@pytest.mark.parametrize(
    ("groups", "options", "expected"),
    [
        pytest.param(
            OCEAN, {}, {"profile": "cpu", "image": "base"}, id="empty-means-default"
        ),
        pytest.param(
            OCEAN,
            {"profile": "gpu"},
            {"profile": "gpu", "gpus": "one"},
            id="option-default",
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "image": "ocean"},
            {"profile": "cpu", "image": "ocean"},
            id="choice",
        ),
        pytest.param(
            OCEAN,
            {
                "profile": "cpu",
                "image": "unlisted-choice",
                "image--unlisted-choice": "py:3.12",
            },
            {"profile": "cpu", "image--unlisted-choice": "py:3.12"},
            id="unlisted-from-form",
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "image--unlisted-choice": "py:3.12"},
            {"profile": "cpu", "image--unlisted-choice": "py:3.12"},
            id="unlisted-from-rest",
        ),
    ],
)
def test_valid_submissions(groups, options, expected):
    assert validate_user_options(FULL, visible(groups), options) == expected


@pytest.mark.parametrize(
    ("groups", "options", "status", "message"),
    [
        pytest.param([], ["x"], 400, "must be an object", id="not-an-object"),
        pytest.param(
            [],
            {"profile": "nope"},
            400,
            "There is no profile 'nope'",
            id="unknown-profile",
        ),
        pytest.param(
            [],
            {"profile": "gpu"},
            403,
            "'gpu' is not available",
            id="profile-not-allowed",
        ),
        pytest.param(
            [], {"profile": 7}, 400, "must be a string", id="profile-not-a-string"
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "image": "zzz"},
            400,
            "no choice 'zzz' for 'Image'",
            id="unknown-choice",
        ),
        pytest.param(
            [],
            {"profile": "cpu", "image": "ocean"},
            403,
            "choice 'ocean' for 'Image' is not available",
            id="choice-not-allowed",
        ),
        pytest.param(
            OCEAN,
            {"profile": "gpu", "gpus": "four"},
            403,
            "not available",
            id="choice-not-allowed-2",
        ),
        pytest.param(
            [],
            {"profile": "cpu", "image--unlisted-choice": "py:3.12"},
            403,
            "value of your own for 'Image' is not available",
            id="unlisted-not-allowed",
        ),
        pytest.param(
            OCEAN,
            {"profile": "gpu", "gpus--unlisted-choice": "8"},
            400,
            "does not accept a value of your own",
            id="unlisted-disabled",
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "image--unlisted-choice": "py:3.12;rm"},
            400,
            "not valid: name:tag",
            id="regex-is-full-match",
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "image--unlisted-choice": "xpy:3.12 "},
            400,
            "not valid",
            id="regex-trailing",
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "image--unlisted-choice": "{username}:1"},
            400,
            "must not contain '{'",
            id="template-injection",
        ),
        pytest.param(
            OCEAN,
            {
                "profile": "cpu",
                "image": "unlisted-choice",
                "image--unlisted-choice": "",
            },
            400,
            "Give a value",
            id="unlisted-empty",
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "image--unlisted-choice": "a:" + "b" * 2000},
            400,
            "longer than",
            id="unlisted-too-long",
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "image": "base", "image--unlisted-choice": "py:3"},
            400,
            "not both",
            id="both",
        ),
        pytest.param(
            OCEAN,
            {"image--unlisted-choice": "py:3.12"},
            400,
            "without 'profile'",
            id="options-without-profile",
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "cpu_limit": "64"},
            400,
            "Unexpected option 'cpu_limit'",
            id="unexpected-key",
        ),
        pytest.param(
            ["astro-101"],
            {"profile": "workshop", "size": "big"},
            403,
            "option 'size' is not available",
            id="dropped-option",
        ),
        pytest.param(
            OCEAN,
            {"profile": "cpu", "image": ["base"]},
            400,
            "must be a string",
            id="choice-not-a-string",
        ),
    ],
)
def test_invalid_submissions(groups, options, status, message):
    with pytest.raises(OptionsError) as info:
        validate_user_options(FULL, visible(groups), options)
    assert info.value.status == status
    assert message in info.value.message


def test_nothing_visible_is_403():
    with pytest.raises(OptionsError) as info:
        validate_user_options(FULL, [], {})
    assert info.value.status == 403


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        pytest.param({"a": 1}, "P: expected a list of profiles", id="not-a-list"),
        pytest.param(
            [{"slug": "a"}],
            "P[0].display_name: expected a string",
            id="no-display-name",
        ),
        pytest.param(
            [{"display_name": "A", "slug": "a"}, {"display_name": "B", "slug": "a"}],
            "P[1].slug: duplicate profile slug 'a'",
            id="duplicate-slug",
        ),
        pytest.param(
            [{"display_name": "A", "allowed_group": ["x"]}],
            "P[0].allowed_group: unknown key (did you mean 'allowed_groups'?)",
            id="misspelled-allowed-groups",
        ),
        pytest.param(
            [{"display_name": "A", "allowed_groups": "x"}],
            "P[0].allowed_groups: expected a list of group names",
            id="groups-not-a-list",
        ),
        pytest.param(
            [
                {
                    "display_name": "A",
                    "profile_options": {
                        "img": {
                            "unlisted_choice": {
                                "enabled": True,
                                "validation_regex": "(",
                            }
                        }
                    },
                }
            ],
            "P[0].profile_options['img'].unlisted_choice.validation_regex: invalid regex",
            id="bad-regex",
        ),
        pytest.param(
            [{"display_name": "A", "profile_options": {"img": {"choices": {}}}}],
            "P[0].profile_options['img']: has no choices and no enabled unlisted_choice",
            id="empty-option",
        ),
        pytest.param(
            [{"display_name": "A", "profile_options": {"a b": {"choices": {"x": {}}}}}],
            "P[0].profile_options['a b']: option names are",
            id="bad-option-name",
        ),
    ],
)
def test_check_profile_list(profiles, message):
    with pytest.raises(ConfigError) as info:
        check_profile_list(profiles, KeyPath("P"))
    assert str(info.value).startswith(message), str(info.value)


def test_check_profile_list_accepts_the_example():
    check_profile_list(PROFILES, KeyPath("P"))


def test_check_profile_list_reports_every_error():
    profiles = [
        {"slug": "a", "allowed_group": ["x"]},
        {
            "display_name": "B",
            "allowed_groups": ["ok", 3],
            "profile_options": {
                "img": {
                    "choices": {"x": {"display_nme": "X"}, "unlisted-choice": {}},
                    "unlisted_choice": {"enabled": True, "validation_regex": "("},
                },
                "a b": {"choices": {"x": {}}},
            },
        },
        {"display_name": "C", "slug": "a"},
    ]
    with pytest.raises(ConfigErrors) as info:
        check_profile_list(profiles, KeyPath("P"))
    assert [e.path for e in info.value.errors] == [
        "P[0].allowed_group",
        "P[0].display_name",
        "P[1].allowed_groups[1]",
        "P[1].profile_options['img'].choices['x'].display_nme",
        "P[1].profile_options['img'].choices['unlisted-choice']",
        "P[1].profile_options['img'].unlisted_choice.validation_regex",
        "P[1].profile_options['a b']",
        "P[2].slug",
    ]


#: Communities of the allowed_groups checks; PROFILES names "Ocean-Lab",
#: "OCEAN-LAB", "ocean-lab-admins", "astro-101" and "staff".
SLUGS = ["ocean-lab", "ocean-lab-admins", "astro-101", "staff"]


def test_allowed_groups_naming_communities_are_accepted():
    # Compared casefolded, as when profiles are filtered.
    check_allowed_groups(PROFILES, SLUGS, KeyPath("P"))
    check_allowed_groups(lambda spawner: [], [], KeyPath("P"))  # per user


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        pytest.param(
            [{"display_name": "A", "allowed_groups": ["astro-101", "astro101"]}],
            "P[0].allowed_groups[1]: no community 'astro101' (did you mean "
            "'astro-101'?); communities: astro-101, ocean-lab, ocean-lab-admins, "
            "staff (with CommunityAuthenticator a user's groups are exactly their "
            "communities, so this name matches nobody)",
            id="profile",
        ),
        pytest.param(
            [
                {
                    "display_name": "A",
                    "profile_options": {
                        "img": {"choices": {"x": {"allowed_groups": ["0cean-lab"]}}}
                    },
                }
            ],
            "P[0].profile_options['img'].choices['x'].allowed_groups[0]: no "
            "community '0cean-lab' (did you mean 'ocean-lab'?)",
            id="choice",
        ),
        pytest.param(
            [
                {
                    "display_name": "A",
                    "profile_options": {
                        "img": {
                            "unlisted_choice": {
                                "enabled": True,
                                "allowed_groups": ["admins"],
                            }
                        }
                    },
                }
            ],
            "P[0].profile_options['img'].unlisted_choice.allowed_groups[0]: no "
            "community 'admins';",
            id="unlisted-choice-no-close-match",
        ),
    ],
)
def test_allowed_groups_must_name_communities(profiles, message):
    with pytest.raises(ConfigError) as info:
        check_allowed_groups(profiles, SLUGS, KeyPath("P"))
    assert str(info.value).startswith(message), str(info.value)


def test_every_unknown_allowed_group_is_reported():
    profiles = copy.deepcopy(PROFILES)
    profiles[0]["profile_options"]["image"]["choices"]["ocean"]["allowed_groups"] = [
        "ocean-labs"
    ]
    with pytest.raises(ConfigErrors) as info:
        check_allowed_groups(profiles, ["ocean-lab"], KeyPath("P"))
    assert [e.path for e in info.value.errors] == [
        "P[0].profile_options['image'].choices['ocean'].allowed_groups[0]",
        "P[1].profile_options['gpus'].choices['four'].allowed_groups[0]",
        "P[2].allowed_groups[0]",
        "P[2].profile_options['size'].choices['big'].allowed_groups[0]",
    ]
