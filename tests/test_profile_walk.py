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


def _demo_profiles() -> list:
    from pathlib import Path

    from traitlets.config import Config

    config = Config()
    source = Path(__file__).parent.parent / "jupyterhub_config.d" / "20-spawner.py"
    exec(
        compile(source.read_text(), str(source), "exec"), {"get_config": lambda: config}
    )
    return config.LocalCommunitySpawner.profile_list


EDGE_PROFILES = [
    # no slug (made from the display name), no default anywhere
    {"display_name": "Big Memory (R) 2.0"},
    {
        "display_name": "Options",
        "profile_options": {
            "img": {
                "display_name": "Image",
                "choices": {"a": {"display_name": "A"}, "b": {"display_name": "B"}},
                "unlisted_choice": {"enabled": True},
            },
            "size": {
                "display_name": "Size",
                "choices": {
                    "s": {"display_name": "S"},
                    "m": {"display_name": "M", "default": True},
                },
            },
        },
    },
    {"display_name": "Later default", "slug": "later", "default": True},
]


@pytest.mark.parametrize("which", ["kube-tests", "demo", "edge"])
def test_initialized_list_is_kubespawners_own(which):
    """Golden: hubext initializes a profile list exactly as KubeSpawner does."""
    import copy
    import json

    from kubespawner import KubeSpawner

    from hubext.profiles import initialize_profile_list

    from .test_kube_spawn import PROFILES as KUBE_PROFILES

    profiles = {
        "kube-tests": KUBE_PROFILES,
        "demo": _demo_profiles(),
        "edge": EDGE_PROFILES,
    }[which]

    def plain(value):  # override callables compared by name
        return json.loads(json.dumps(value, default=lambda o: f"<{o.__name__}>"))

    ours = initialize_profile_list(copy.deepcopy(profiles))
    # KubeSpawner's own initialization does not use the instance
    theirs = KubeSpawner._get_initialized_profile_list(None, copy.deepcopy(profiles))
    assert plain(ours) == plain(theirs)
