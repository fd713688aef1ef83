"""Per-community culling policy: validation and the most generous policy."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from hubext import Communities
from hubext._validation import ConfigError
from hubext.culling import CullingPolicy, policy_for

DEFAULT = CullingPolicy(idle_timeout=3600, max_age=None, cull_named_servers=True)
SETTINGS = {
    "workshop": {
        "idle_timeout": 600,
        "max_age": 8 * 3600,
        "remove_named_servers": True,
    },
    "lab": {"idle_timeout": 4 * 3600},
    "forever": {"idle_timeout": None, "cull_named_servers": False},
}


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param([], DEFAULT, id="no-community"),
        pytest.param(["other"], DEFAULT, id="community-without-policy"),
        pytest.param(
            ["workshop"],
            CullingPolicy(600, 8 * 3600, True, True),
            id="one-community",
        ),
        pytest.param(
            ["workshop", "lab"],
            CullingPolicy(4 * 3600, None, True, False),
            id="longest-timeout-and-no-max-age-wins",
        ),
        pytest.param(
            ["lab", "forever", "workshop"],
            CullingPolicy(None, None, False, False),
            id="never-beats-any-number",
        ),
    ],
)
def test_most_generous_policy(groups, expected):
    assert policy_for(groups, SETTINGS, DEFAULT) == expected


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param([{}], 90, id="default"),
        pytest.param([{"cull_users_after": 7}], 7, id="one-community"),
        pytest.param(
            [{"cull_users_after": 7}, {"cull_users_after": 30}], 30, id="longest-wins"
        ),
        pytest.param([{"cull_users_after": 7}, {}], 90, id="default-is-longer"),
        pytest.param(
            [{"cull_users_after": 7}, {"cull_users_after": None}],
            None,
            id="never-wins",
        ),
    ],
)
def test_most_generous_user_timeout(settings, expected):
    day = 86400
    default = CullingPolicy(cull_users_after=90 * day)
    communities = {
        f"c{i}": {k: (v * day if v is not None else None) for k, v in setting.items()}
        for i, setting in enumerate(settings)
    }
    policy = policy_for(list(communities), communities, default)
    assert policy.cull_users_after == (expected * day if expected else None)


def test_order_does_not_matter():
    a = policy_for(["workshop", "lab", "forever"], SETTINGS, DEFAULT)
    b = policy_for(["forever", "workshop", "lab"], SETTINGS, DEFAULT)
    assert a == b


@pytest.mark.parametrize(
    ("culling", "message"),
    [
        (
            {"idle_timeout": 30},
            "['x'].culling.idle_timeout: must be at least 60 seconds",
        ),
        ({"idle_timeout": "1h"}, "['x'].culling.idle_timeout: expected seconds"),
        ({"idle_timeout": True}, "['x'].culling.idle_timeout: expected seconds"),
        ({"max_age": -1}, "['x'].culling.max_age: must be at least 60"),
        (
            {"cull_named_servers": "yes"},
            "['x'].culling.cull_named_servers: expected true or false",
        ),
        (
            {"idle_timout": 600},
            "['x'].culling.idle_timout: unknown key (did you mean 'idle_timeout'?)",
        ),
        (600, "['x'].culling: expected a mapping"),
        (
            {"cull_users_after": 600},
            "['x'].culling.cull_users_after: must be at least 3600 seconds",
        ),
        ({"cull_users_after": "30d"}, "['x'].culling.cull_users_after: expected"),
    ],
)
def test_bad_culling_settings(culling, message):
    config = Config()
    config.Communities.communities = {"x": {"culling": culling}}
    with pytest.raises(ConfigError) as info:
        Communities(config=config)
    assert f"Communities.communities{message}" in str(info.value)


def test_culling_settings_are_kept():
    config = Config()
    config.Communities.communities = {
        "x": {
            "culling": {"idle_timeout": None, "max_age": 7200, "cull_users_after": None}
        }
    }
    assert Communities(config=config)["x"].get("culling") == {
        "idle_timeout": None,
        "max_age": 7200,
        "cull_users_after": None,
    }
