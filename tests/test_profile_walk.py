"""The one walk of a profile list (hubext.profile_tree), and what is built on it."""

from __future__ import annotations

import copy

import pytest

from hubext._validation import ConfigError, ConfigErrors, KeyPath
from hubext.profile_tree import Kind, options_of, profile_entries, walk
from hubext.profiles import check_profile_list
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


P = KeyPath("P")


def _places(positions):
    return [(at.kind.value, at.key, str(at.path)) for at in positions]


def test_walk_visits_every_kind_of_place_in_order_with_its_key_path():
    assert _places(walk(PROFILES, P)) == [
        ("profile", 0, "P[0]"),
        ("option", "size", "P[0].profile_options['size']"),
        ("choice", "s", "P[0].profile_options['size'].choices['s']"),
        ("choice", "m", "P[0].profile_options['size'].choices['m']"),
        ("unlisted_choice", None, "P[0].profile_options['size'].unlisted_choice"),
        # yielded as it is; nothing below what is not a mapping
        ("option", "broken", "P[0].profile_options['broken']"),
        ("profile", 1, "P[1]"),
        ("profile", 2, "P[2]"),
    ]
    assert [at.entry for at in walk(PROFILES, P) if at.kind is Kind.PROFILE] == [
        PROFILES[0],
        "not a profile",
        PROFILES[2],
    ]
    assert list(walk("not a list", P)) == []
    assert list(walk({"a": {}}, P)) == []
    # the default path, for walks that report nothing
    assert str(next(walk([{}])).path) == "profile_list[0]"


def test_positions_know_the_places_above_them():
    choice = next(at for at in walk(PROFILES, P) if at.kind is Kind.CHOICE)
    profile, option = choice.parents
    assert (profile.kind, profile.entry) == (Kind.PROFILE, PROFILES[0])
    assert (option.kind, option.key) == (Kind.OPTION, "size")
    assert option.entry is PROFILES[0]["profile_options"]["size"]
    assert choice.parent is option and option.parent is profile
    assert profile.parent is None and profile.parents == ()
    assert choice.entry is option.entry["choices"]["s"]


def test_every_option_has_an_unlisted_choice():
    """A missing one is KubeSpawner's disabled ``{}``; one that is there is itself."""
    profiles = [
        {
            "display_name": "A",
            "profile_options": {
                "plain": {"choices": {"x": {}}},
                "own": {"choices": {}, "unlisted_choice": {"enabled": True}},
                "none": {"unlisted_choice": None},
            },
        }
    ]
    unlisted = {
        at.parent.key: at.entry
        for at in walk(profiles, P)
        if at.kind is Kind.UNLISTED_CHOICE
    }
    assert unlisted == {"plain": {}, "own": {"enabled": True}, "none": None}
    own = profiles[0]["profile_options"]["own"]["unlisted_choice"]
    assert (
        next(
            at.entry
            for at in walk(profiles, P)
            if at.kind is Kind.UNLISTED_CHOICE and at.parent.key == "own"
        )
        is own
    )


def test_nothing_is_walked_below_what_is_not_a_mapping():
    profiles = [
        {"display_name": "A", "profile_options": ["x"]},
        {"display_name": "B", "profile_options": {"o": {"choices": ["x"]}}},
        {"display_name": "C", "profile_options": {"o": None}},
    ]
    assert _places(walk(profiles, P)) == [
        ("profile", 0, "P[0]"),
        ("profile", 1, "P[1]"),
        ("option", "o", "P[1].profile_options['o']"),
        ("unlisted_choice", None, "P[1].profile_options['o'].unlisted_choice"),
        ("profile", 2, "P[2]"),
        ("option", "o", "P[2].profile_options['o']"),
    ]


def test_descend_false_skips_what_is_below():
    def not_below_size(at):
        return at.key != "size"

    assert _places(walk(PROFILES, P, descend=not_below_size)) == [
        ("profile", 0, "P[0]"),
        ("option", "size", "P[0].profile_options['size']"),
        ("option", "broken", "P[0].profile_options['broken']"),
        ("profile", 1, "P[1]"),
        ("profile", 2, "P[2]"),
    ]
    assert _places(walk(PROFILES, P, descend=lambda at: False)) == [
        ("profile", 0, "P[0]"),
        ("profile", 1, "P[1]"),
        ("profile", 2, "P[2]"),
    ]


def test_walk_is_top_down_a_caller_may_edit_what_is_below():
    """Like os.walk: what is below a place is read after the caller had it."""
    profiles = copy.deepcopy(PROFILES)
    seen = []
    for at in walk(profiles, P):
        if at.kind is Kind.PROFILE and at.key == 2:
            at.entry["profile_options"] = {"late": {"choices": {"z": {}}}}
        if at.kind is Kind.OPTION and at.key == "size":
            del at.entry["choices"]["s"]
            at.entry["unlisted_choice"] = {"enabled": False, "new": True}
        seen.append((str(at.path), at.entry))
    assert "P[0].profile_options['size'].choices['s']" not in dict(
        seen
    )  # removed before the walk got there
    assert dict(seen)["P[0].profile_options['size'].unlisted_choice"] == {
        "enabled": False,
        "new": True,
    }
    assert dict(seen)["P[2].profile_options['late'].choices['z']"] == {}


def test_the_options_of_one_profile():
    profile = PROFILES[0]
    assert [(at.key, at.entry) for at in options_of(profile)] == [
        ("size", profile["profile_options"]["size"]),
        ("broken", "not a mapping"),
    ]
    assert [str(at.path) for at in options_of(profile, P[0])] == [
        "P[0].profile_options['size']",
        "P[0].profile_options['broken']",
    ]
    assert list(options_of({"display_name": "no options"})) == []
    assert list(options_of({"profile_options": None})) == []
    assert list(options_of("not a profile")) == []


def test_the_check_skips_what_is_below_an_option_it_refuses():
    """An option refused for its name: its choices are not checked too."""
    profiles = [
        {
            "display_name": "A",
            "profile_options": {
                "a b": {"choices": {"x": {"display_nme": "X"}}},
                "community": {"unlisted_choice": {"validation_regex": "("}},
                "ok": {"choices": {"x": {"display_nme": "X"}}},
            },
        }
    ]
    with pytest.raises(ConfigErrors) as info:
        check_profile_list(profiles, P)
    assert [e.path for e in info.value.errors] == [
        "P[0].profile_options['a b']",
        "P[0].profile_options['community']",
        "P[0].profile_options['ok'].choices['x'].display_nme",
    ]


def test_an_empty_option_is_reported_after_its_unlisted_choice():
    profiles = [
        {
            "display_name": "A",
            "profile_options": {
                "img": {"choices": {}, "unlisted_choice": {"enabeld": True}},
                "bad": {"choices": {}, "unlisted_choice": "yes"},
            },
        }
    ]
    with pytest.raises(ConfigErrors) as info:
        check_profile_list(profiles, P)
    assert [str(e) for e in info.value.errors] == [
        "P[0].profile_options['img'].unlisted_choice.enabeld: unknown key "
        "(did you mean 'enabled'?)",
        "P[0].profile_options['img']: has no choices and no enabled unlisted_choice",
        "P[0].profile_options['bad'].unlisted_choice: expected a mapping (dict), "
        "got 'yes' (str)",
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

#: Options that differ only in what KubeSpawner fills in.
OPTION_EDGES = [
    {
        "display_name": "Options",
        "slug": "options",
        "default": False,
        "profile_options": {
            "free": {
                "display_name": "Only free text",
                "unlisted_choice": {"enabled": True},
            },
            "off": {
                "display_name": "Disabled free text",
                "choices": {"x": {"display_name": "X", "default": False}},
                "unlisted_choice": {"enabled": False, "display_name": "Own"},
            },
            "named": {
                "display_name": "Named other",
                "choices": {
                    "x": {"display_name": "X"},
                    "y": {"display_name": "Y", "default": True},
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name_in_choices": "Something else",
                },
            },
            "empty": {"display_name": "No choices", "choices": {}},
        },
    },
    {"display_name": "Second", "slug": "second", "profile_options": {}},
]


@pytest.mark.parametrize("which", ["kube-tests", "demo", "edge", "option-edges"])
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
        "option-edges": OPTION_EDGES,
    }[which]

    def plain(value):  # override callables compared by name
        return json.loads(json.dumps(value, default=lambda o: f"<{o.__name__}>"))

    ours = initialize_profile_list(copy.deepcopy(profiles))
    # KubeSpawner's own initialization does not use the instance
    theirs = KubeSpawner._get_initialized_profile_list(None, copy.deepcopy(profiles))
    assert plain(ours) == plain(theirs)
    # key order too: the form renders the list in order
    assert json.dumps(plain(ours)) == json.dumps(plain(theirs))


@pytest.mark.parametrize("options", [["size"], None, "size"])
def test_initialization_refuses_options_it_cannot_read(options):
    """A callable's list is not checked at start-up: KubeSpawner fails on it,
    and so does hubext, naming the key, rather than walk past the options."""
    from hubext.profiles import initialize_profile_list

    profiles = [
        {"display_name": "A"},
        {"display_name": "B", "profile_options": options},
    ]
    with pytest.raises(ConfigError) as e:
        initialize_profile_list(profiles)
    assert str(e.value).startswith(
        "profile_list[1].profile_options: expected a mapping (dict)"
    )
