"""The one walk of a configured profile list, and the checks built on it."""

from __future__ import annotations

import pytest

from hubext._validation import ConfigError, KeyPath
from hubext.profiles import profile_entries
from hubext.spawners.local import check_local_overrides

PATH = KeyPath("LocalCommunitySpawner.profile_list")

PROFILES = [
    {
        "slug": "a",
        "display_name": "A",
        "kubespawner_override": {"mem_limit": "1G"},
        "profile_options": {
            "size": {
                "display_name": "Size",
                "choices": {
                    "s": {"display_name": "S"},
                    "m": {"display_name": "M", "allowed_groups": ["lab"]},
                },
                "unlisted_choice": {"enabled": True},
            },
            "broken": "not a mapping",
        },
    },
    "not a profile",
    {"slug": "b", "display_name": "B"},
]


def test_every_entry_in_order_with_its_path():
    walked = [
        (str(p), e.get("display_name")) for e, p in profile_entries(PROFILES, PATH)
    ]
    assert walked == [
        ("LocalCommunitySpawner.profile_list[0]", "A"),
        (
            "LocalCommunitySpawner.profile_list[0].profile_options['size'].choices['s']",
            "S",
        ),
        (
            "LocalCommunitySpawner.profile_list[0].profile_options['size'].choices['m']",
            "M",
        ),
        (
            "LocalCommunitySpawner.profile_list[0].profile_options['size'].unlisted_choice",
            None,
        ),
        ("LocalCommunitySpawner.profile_list[2]", "B"),
    ]
    assert list(profile_entries("not a list", PATH)) == []


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("profile", "profile_list[0].kubespawner_override.image"),
        (
            "choice",
            "profile_list[0].profile_options['size'].choices['s'].kubespawner_override.image",
        ),
        (
            "unlisted",
            "profile_list[0].profile_options['size'].unlisted_choice.kubespawner_override.image",
        ),
    ],
)
def test_hubext_local_refuses_kubernetes_overrides_at_every_level(where, expected):
    profile = {
        "slug": "a",
        "display_name": "A",
        "profile_options": {
            "size": {
                "display_name": "Size",
                "choices": {"s": {"display_name": "S"}},
                "unlisted_choice": {"enabled": True},
            }
        },
    }
    option = profile["profile_options"]["size"]
    target = {
        "profile": profile,
        "choice": option["choices"]["s"],
        "unlisted": option["unlisted_choice"],
    }[where]
    target["kubespawner_override"] = {"mem_limit": "1G", "image": "x"}
    with pytest.raises(ConfigError) as e:
        check_local_overrides([profile], PATH)
    assert str(e.value).startswith(
        "LocalCommunitySpawner." + expected + ": cannot be overridden"
    )
    target["kubespawner_override"] = {"mem_limit": "1G", "environment": {"A": "1"}}
    check_local_overrides([profile], PATH)
