"""Which community a server is charged to, and how its end is named (pure)."""

from __future__ import annotations

import pytest

from hubext._validation import ConfigErrors, KeyPath
from hubext.profiles import (
    OptionsError,
    charge_candidates,
    check_profile_list,
    choose_charged,
    initialize_profile_list,
)
from hubext.spawners.stops import end_reason_for
from hubext.usage.model import EndReason

PROFILES = initialize_profile_list(
    [
        {
            "slug": "standard",
            "display_name": "Standard",
            "profile_options": {
                "size": {
                    "display_name": "Size",
                    "choices": {
                        "small": {"display_name": "Small"},
                        "big": {"display_name": "Big", "allowed_groups": ["ocean"]},
                    },
                    "unlisted_choice": {
                        "enabled": True,
                        "allowed_groups": ["astro"],
                    },
                },
            },
        },
        {"slug": "ocean-only", "display_name": "O", "allowed_groups": ["ocean"]},
        {
            "slug": "shared",
            "display_name": "S",
            "allowed_groups": ["astro", "Ocean"],
            "profile_options": {
                "gpu": {
                    "display_name": "GPU",
                    "choices": {
                        "none": {"display_name": "None"},
                        "a100": {"display_name": "A100", "allowed_groups": ["bio"]},
                    },
                }
            },
        },
    ]
)
STANDARD, OCEAN_ONLY, SHARED = PROFILES


@pytest.mark.parametrize(
    ("profile", "options", "member_of", "expected"),
    [
        # open profile and choice: every community, in registry order
        (STANDARD, {"size": "small"}, ["astro", "ocean"], ["astro", "ocean"]),
        (STANDARD, {"size": "small"}, ["ocean", "astro"], ["ocean", "astro"]),
        # a choice of one community: only it
        (STANDARD, {"size": "big"}, ["astro", "ocean"], ["ocean"]),
        # the unlisted choice of another
        (STANDARD, {"size--unlisted-choice": "x"}, ["astro", "ocean"], ["astro"]),
        # a profile of one community
        (OCEAN_ONLY, {}, ["astro", "ocean"], ["ocean"]),
        # allowed_groups compared without case, as visibility does
        (SHARED, {"gpu": "none"}, ["bio", "ocean", "astro"], ["ocean", "astro"]),
        # no single community grants profile and choice: those granting the profile
        (SHARED, {"gpu": "a100"}, ["astro", "bio"], ["astro"]),
        # a hub admin of no community granting it: the hub-wide account
        (OCEAN_ONLY, {}, ["astro"], []),
        (OCEAN_ONLY, {}, [], []),
        # no profiles at all: every community of the user
        (None, {}, ["b", "a"], ["b", "a"]),
    ],
)
def test_charge_candidates(profile, options, member_of, expected):
    assert charge_candidates(profile, options, member_of) == expected


KNOWN = ["astro", "ocean", "bio"]


def test_default_is_the_first_candidate_or_the_hub_account():
    assert (
        choose_charged(["ocean", "astro"], None, ["astro", "ocean"], KNOWN) == "ocean"
    )
    assert choose_charged(["ocean"], "", ["ocean"], KNOWN) == "ocean"
    assert choose_charged([], None, ["astro"], KNOWN) is None


def test_a_requested_candidate_is_charged():
    assert (
        choose_charged(["ocean", "astro"], "astro", ["astro", "ocean"], KNOWN)
        == "astro"
    )


@pytest.mark.parametrize(
    ("requested", "status", "words"),
    [
        (3, 400, "'community' must be a string, not int"),
        (["ocean"], 400, "must be a string, not list"),
        ("nope", 400, "There is no community 'nope'"),
        ("bio", 403, "You are not a member of the community 'bio'"),
        ("astro", 403, "'astro' does not offer these server options"),
    ],
)
def test_refused_requests(requested, status, words):
    with pytest.raises(OptionsError) as e:
        choose_charged(["ocean"], requested, ["astro", "ocean"], KNOWN)
    assert e.value.status == status
    assert words in e.value.message


def test_refusal_names_what_may_be_chosen():
    with pytest.raises(OptionsError) as e:
        choose_charged(["ocean", "bio"], "astro", ["astro", "ocean", "bio"], KNOWN)
    assert "Choose one of: ocean, bio." in e.value.message
    with pytest.raises(OptionsError) as e:
        choose_charged([], "astro", ["astro"], KNOWN)
    assert "none of your communities" in e.value.message


def test_an_option_may_not_be_named_community():
    with pytest.raises(ConfigErrors) as e:
        check_profile_list(
            [
                {
                    "slug": "a",
                    "display_name": "A",
                    "profile_options": {
                        "community": {"display_name": "C", "choices": {"x": {}}}
                    },
                }
            ],
            KeyPath("KubeSpawner.profile_list"),
        )
    assert "profile_options['community']" in str(e.value)
    assert "'community' is reserved" in str(e.value)


@pytest.mark.parametrize(
    ("requester", "expected"),
    [
        (("user", "ann"), EndReason.STOPPED_BY_USER),
        (("user", "root"), EndReason.STOPPED_BY_ADMIN),
        (("service", "my-culler"), EndReason.CULLED),
        (("service", "hub-culler"), EndReason.CULLED),
        (("service", "hub-budgets"), EndReason.STOPPED_FOR_BUDGET),
        # hubext's culler is known by how it was registered, not its name
        (("service", "hubext-culler"), EndReason.STOPPED_BY_ADMIN),
        (("service", "other"), EndReason.STOPPED_BY_ADMIN),
        # a service named like the owner is still a service
        (("service", "ann"), EndReason.STOPPED_BY_ADMIN),
        (None, EndReason.HUB_RESTART),
    ],
)
def test_end_reason_for(requester, expected):
    services = {
        "hub-culler": EndReason.CULLED,
        "hub-budgets": EndReason.STOPPED_FOR_BUDGET,
    }
    assert end_reason_for(requester, "ann", ["my-culler"], services) == expected


def test_hubext_services_are_known_by_the_kind_they_were_registered_with():
    from hubext.spawners.stops import record_hub_services

    record_hub_services(
        [
            {"name": "tidy", "environment": {"HUBEXT_SERVICE": "culler"}},
            {"name": "money", "environment": {"HUBEXT_SERVICE": "budgets"}},
            {"name": "page", "environment": {"HUBEXT_SERVICE": "usage"}},
            {"name": "plain"},
            "not a service",
        ]
    )
    try:
        assert [
            end_reason_for(("service", name), "ann")
            for name in ("tidy", "money", "page", "plain")
        ] == [
            EndReason.CULLED,
            EndReason.STOPPED_FOR_BUDGET,
            EndReason.STOPPED_BY_ADMIN,
            EndReason.STOPPED_BY_ADMIN,
        ]
    finally:
        record_hub_services([])
