"""Culling decisions from hub REST models (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hubext.culler.decide import Cull, Skip, decide
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
