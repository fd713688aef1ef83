"""Culling decisions from hub REST models (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hubext.culler.decide import Cull, CullUser, Skip, decide, decide_user
from hubext.culling import CullingPolicy

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = CullingPolicy(idle_timeout=3600, max_age=8 * 3600)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def server(last_activity=30, started=100, **extra):
    model = {"ready": True, "pending": None}
    model["last_activity"] = (
        ts(last_activity) if isinstance(last_activity, (int, float)) else last_activity
    )
    model["started"] = ts(started) if isinstance(started, (int, float)) else started
    model.update(extra)
    return model


@pytest.mark.parametrize(
    ("name", "model", "policy", "expected"),
    [
        pytest.param("", server(30), POLICY, None, id="active"),
        pytest.param("", server(3600), POLICY, "idle", id="idle-at-limit"),
        pytest.param(
            "",
            server(None, started=4000),
            POLICY,
            "idle",
            id="no-activity-uses-started",
        ),
        pytest.param("", server(10, started=9 * 3600), POLICY, "max_age", id="too-old"),
        # boundaries: at the limit is culled, a second before is not
        pytest.param("", server(3599), POLICY, None, id="idle-just-under"),
        pytest.param(
            "", server(10, started=8 * 3600), POLICY, "max_age", id="max-age-at-limit"
        ),
        pytest.param(
            "", server(10, started=8 * 3600 - 1), POLICY, None, id="max-age-just-under"
        ),
        pytest.param("", server(5000, pending="stop"), POLICY, Skip, id="pending"),
        pytest.param("", server(5000, ready=False), POLICY, Skip, id="not-ready"),
        pytest.param("", server("yesterday"), POLICY, Skip, id="malformed-activity"),
        pytest.param("", server(12345), POLICY, "idle", id="old-activity"),
        pytest.param("", server(-600), POLICY, Skip, id="future-activity"),
        pytest.param("", server(None, started=None), POLICY, Skip, id="no-timestamps"),
        pytest.param("lab", server(5000), POLICY, "idle", id="named"),
        pytest.param(
            "lab",
            server(5000),
            CullingPolicy(cull_named_servers=False),
            None,
            id="named-kept",
        ),
        pytest.param(
            "",
            server(10**6, started=10**6),
            CullingPolicy(None, None),
            None,
            id="never",
        ),
    ],
)
def test_decide(name, model, policy, expected):
    verdict = decide("ann", name, model, policy, NOW)
    if expected is None:
        assert verdict is None
    elif expected is Skip:
        assert isinstance(verdict, Skip)
    else:
        assert isinstance(verdict, Cull) and verdict.reason == expected


def test_remove_named_servers():
    verdict = decide(
        "ann", "lab", server(5000), CullingPolicy(remove_named_servers=True), NOW
    )
    assert verdict.remove is True
    default = decide(
        "ann", "", server(5000), CullingPolicy(remove_named_servers=True), NOW
    )
    assert default.remove is False  # the default server is never removed


# -- users (cull_users) ---------------------------------------------------------------

USER_POLICY = CullingPolicy(cull_users_after=30 * 86400)
DAY = 86400


def user(days_inactive=40, **extra):
    model = {
        "name": "ann",
        "admin": False,
        "servers": {},
        "last_activity": ts(days_inactive * DAY)
        if isinstance(days_inactive, (int, float))
        else days_inactive,
    }
    model.update(extra)
    return model


@pytest.mark.parametrize(
    ("model", "policy", "expected"),
    [
        pytest.param(user(40), USER_POLICY, CullUser, id="inactive"),
        pytest.param(user(30), USER_POLICY, CullUser, id="at-limit"),
        pytest.param(user(29), USER_POLICY, None, id="recently-active"),
        pytest.param(user(400, admin=True), USER_POLICY, None, id="admin-never"),
        pytest.param(
            user(400, servers={"": server(10**6)}), USER_POLICY, None, id="running"
        ),
        pytest.param(
            user(400, servers={"lab": server(10**6, ready=False, pending="spawn")}),
            USER_POLICY,
            None,
            id="pending-server",
        ),
        pytest.param(
            user(400, servers={"": server(10**6, ready=False, pending="stop")}),
            USER_POLICY,
            None,
            id="stopping-server",
        ),
        pytest.param(user(None), USER_POLICY, None, id="never-active"),
        pytest.param(user(400), CullingPolicy(), None, id="policy-never"),
        pytest.param(user("last tuesday"), USER_POLICY, Skip, id="malformed-activity"),
        pytest.param(user(-1), USER_POLICY, Skip, id="future-activity"),
        pytest.param(
            {k: v for k, v in user(400).items() if k != "admin"},
            USER_POLICY,
            Skip,
            id="admin-flag-unknown",
        ),
        pytest.param(user(400, admin="no"), USER_POLICY, Skip, id="admin-not-bool"),
        pytest.param(
            {k: v for k, v in user(400).items() if k != "servers"},
            USER_POLICY,
            Skip,
            id="servers-unknown",
        ),
    ],
)
def test_decide_user(model, policy, expected):
    verdict = decide_user(model, policy, NOW)
    if expected is None:
        assert verdict is None
    else:
        assert isinstance(verdict, expected)


def test_decide_user_reports_inactivity():
    verdict = decide_user(user(40), USER_POLICY, NOW)
    assert verdict == CullUser("ann", 40 * DAY)
