"""The community registry: slugs, keys, types, and the exact key path of errors."""

from __future__ import annotations

import pytest
from traitlets import TraitError
from traitlets.config import Config

from hubext import Communities
from hubext._validation import ConfigError, ConfigErrors


def load(communities) -> Communities:
    config = Config()
    config.Communities.communities = communities
    return Communities(config=config)


def test_valid_registry_is_normalized():
    registry = load(
        {
            "ocean-lab": {"display_name": "Ocean Modelling Lab"},
            "a": None,
            "x" * 63: {},
        }
    )
    assert [c.slug for c in registry] == ["ocean-lab", "a", "x" * 63]
    assert registry["ocean-lab"].display_name == "Ocean Modelling Lab"
    assert registry["a"].display_name == "a"  # defaults to the slug
    assert "ocean-lab" in registry and "b" not in registry
    assert len(registry) == 3


def test_empty_registry():
    assert len(Communities()) == 0


@pytest.mark.parametrize(
    ("communities", "message"),
    [
        pytest.param(
            {"Ocean": {}},
            "Communities.communities['Ocean']: slug must match",
            id="uppercase",
        ),
        pytest.param(
            {"ocean lab": {}},
            "Communities.communities['ocean lab']: slug must match",
            id="space",
        ),
        pytest.param(
            {"a/b": {}}, "Communities.communities['a/b']: slug must match", id="slash"
        ),
        pytest.param(
            {"..": {}}, "Communities.communities['..']: slug must match", id="dotdot"
        ),
        pytest.param(
            {"": {}}, "Communities.communities['']: slug must not be empty", id="empty"
        ),
        pytest.param(
            {"-a": {}},
            "Communities.communities['-a']: slug must match",
            id="leading-hyphen",
        ),
        pytest.param(
            {"x" * 64: {}},
            f"Communities.communities['{'x' * 64}']: slug is 64 characters long; at most 63",
            id="too-long",
        ),
        pytest.param(
            {1: {}},
            "Communities.communities: slug must be a string, got int",
            id="int-slug",
        ),
        pytest.param(
            {"ocean": {"display_nme": "x"}},
            "Communities.communities['ocean'].display_nme: unknown key "
            "(did you mean 'display_name'?); known keys:",
            id="unknown-key",
        ),
        pytest.param(
            {"ocean": {"display_name": 42}},
            "Communities.communities['ocean'].display_name: expected a string, got 42 (int)",
            id="wrong-type",
        ),
        pytest.param(
            {"ocean": {"display_name": "a\nb"}},
            "Communities.communities['ocean'].display_name: contains control characters: 'a\\nb'",
            id="control-characters",
        ),
        pytest.param(
            {"ocean": ["display_name"]},
            "Communities.communities['ocean']: expected a mapping (dict), got ['display_name'] (list)",
            id="not-a-mapping",
        ),
        pytest.param(
            {"ocean": {"members": {"github": "x"}}},
            "Communities.communities['ocean'].members: expected a list of rules",
            id="members-not-a-list",
        ),
        pytest.param(
            {"ocean": {"members": [{"githb": "x"}]}},
            "Communities.communities['ocean'].members[0].githb: unknown key (did you mean 'github'?)",
            id="unknown-rule-key",
        ),
        pytest.param(
            {"ocean": {"admins": [{}]}},
            "Communities.communities['ocean'].admins[0]: a rule needs at least one key",
            id="empty-rule",
        ),
        pytest.param(
            {"ocean": {"members": [{"github": "Org:Team:x"}]}},
            "Communities.communities['ocean'].members[0].github: expected 'org' or 'org:team-slug'",
            id="bad-github",
        ),
        pytest.param(
            {"ocean": {"members": [{"email_domain": "not a domain"}]}},
            "Communities.communities['ocean'].members[0].email_domain: 'not a domain' is not a domain name",
            id="bad-domain",
        ),
        pytest.param(
            {"ocean": {"members": [{"group": ["a"]}]}},
            "Communities.communities['ocean'].members[0].group: expected a string, got ['a'] (list)",
            id="rule-value-list",
        ),
    ],
)
def test_bad_definitions_name_the_key_path(communities, message):
    with pytest.raises(ConfigError) as info:
        load(communities)
    assert str(info.value).startswith(message), str(info.value)
    # One line, whatever the input.
    assert "\n" not in str(info.value)


def test_not_a_mapping_at_all():
    # The Dict trait itself refuses, naming the trait and its class.
    with pytest.raises(TraitError, match=r"'communities' trait of a Communities"):
        Communities(communities=[1, 2])


def test_long_bad_values_are_shortened_in_messages():
    with pytest.raises(ConfigError) as info:
        load({"ocean": {"display_name": ["y" * 10_000]}})
    assert len(str(info.value)) < 300


def test_registry_follows_changes():
    registry = load({"a": {}})
    registry.communities = {"b": {}}
    assert [c.slug for c in registry] == ["b"]
    with pytest.raises(ConfigError):
        registry.communities = {"B": {}}
    assert [c.slug for c in registry] == ["b"]  # a rejected value changes nothing


def test_every_error_is_reported_at_once():
    # Each independent key reports its first error; its siblings, and the
    # other communities, are still checked.
    with pytest.raises(ConfigErrors) as info:
        load(
            {
                "Ocean": {},
                "astro-101": {
                    "display_nam": "x",
                    "display_name": 42,
                    "culling": {"idle_timeout": 5, "max_age": "x"},
                },
                "bio": {
                    "members": [
                        {"group": ""},
                        {"emial_domain": "bio.example.org"},
                        {"github": "bio-lab"},
                    ],
                    "admins": [{}],
                },
                "fine": {"display_name": "Fine"},
            }
        )
    root = "Communities.communities"
    assert [e.path for e in info.value.errors] == [
        f"{root}['Ocean']",
        f"{root}['astro-101'].display_nam",
        f"{root}['astro-101'].display_name",
        f"{root}['astro-101'].culling.idle_timeout",
        f"{root}['astro-101'].culling.max_age",
        f"{root}['bio'].members[0].group",
        f"{root}['bio'].members[1].emial_domain",
        f"{root}['bio'].admins[0]",
    ]
    assert "did you mean 'display_name'?" in info.value.errors[1].reason
    # One line per error, each starting with its key path.
    lines = str(info.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        e.path for e in info.value.errors
    ]
    # Still a ConfigError naming the first error, for callers that want one.
    assert isinstance(info.value, ConfigError)
    assert info.value.path == f"{root}['Ocean']"
