"""The culler when the hub API misbehaves: never a wrong cull, always a next pass."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from .culler_kit import fake_hub_culler, one_pass
from .fakes.hub_api import FakeHubAPI

TOKEN = "f" * 64
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def ago(minutes):
    return (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def server(idle_minutes, **extra):
    return {
        "name": "",
        "ready": True,
        "pending": None,
        "started": ago(idle_minutes + 5),
        "last_activity": ago(idle_minutes),
        **extra,
    }


@pytest.fixture
def hub():
    with FakeHubAPI(TOKEN) as fake:
        fake.add_user("idle-1", {"": server(120)})
        fake.add_user("idle-2", {"": server(300)})
        fake.add_user("busy", {"": server(1)})
        yield fake


def make_culler(hub, **traits):
    return fake_hub_culler(hub.url, TOKEN, NOW, **traits)


async def test_a_normal_pass(hub):
    result = await one_pass(make_culler(hub))
    assert sorted(u for u, _, _ in hub.deleted) == ["idle-1", "idle-2"]
    assert result.errors == [] and len(result.culled) == 2


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param({"status": 429}, id="429"),
        pytest.param(
            {"status": 200, "body": b"<html>proxy error</html>"}, id="not-json"
        ),
        pytest.param({"status": 200, "body": b'{"items": 7}'}, id="wrong-shape"),
        pytest.param(
            {"status": 200, "body": b'{"items": [], "_pagination": [1]}'},
            id="bad-pagination",
        ),
        pytest.param(
            {
                "status": 200,
                "body": b'{"items": [], "_pagination": '
                b'{"offset": 0, "limit": 0, "total": 3, "next": null}}',
            },
            id="pages-of-no-rows",
        ),
        pytest.param({"hang": 2.0}, id="timeout"),
    ],
)
async def test_listing_faults_cull_nothing_and_the_next_pass_retries(hub, fault):
    hub.fail("list", **fault)
    culler = make_culler(hub)
    result = await one_pass(culler, request_timeout=0.5)
    assert result.errors and hub.deleted == []
    result = await one_pass(culler, request_timeout=0.5)  # the next pass
    assert result.errors == []
    assert sorted(u for u, _, _ in hub.deleted) == ["idle-1", "idle-2"]


async def test_a_failed_stop_does_not_stop_the_others(hub):
    hub.fail("delete", 500)
    result = await one_pass(make_culler(hub))
    assert len(result.errors) == 1 and "HTTP 500" in result.errors[0]
    assert len(hub.deleted) == 1 and len(result.culled) == 1


async def test_malformed_activity_is_left_alone(hub):
    hub.add_user("odd", {"": server(500, last_activity="last tuesday")})
    hub.add_user("odder", {"": server(500, last_activity=12345)})
    result = await one_pass(make_culler(hub))
    assert {s.user for s in result.skipped} == {"odd", "odder"}
    assert "odd" not in {u for u, _, _ in hub.deleted}


async def test_pending_and_not_ready_servers_are_left_alone(hub):
    hub.add_user("starting", {"": server(500, pending="spawn")})
    await one_pass(make_culler(hub))
    assert "starting" not in {u for u, _, _ in hub.deleted}


async def test_pages_shifting_mid_pass_never_handle_a_user_twice(hub):
    for i in range(7):
        hub.add_user(f"idle-page-{i}", {"": server(500)})
    hub.shift_pages = True
    result = await one_pass(make_culler(hub, page_size=3))
    deleted = [u for u, _, _ in hub.deleted]
    assert len(deleted) == len(set(deleted))  # each at most once
    assert "busy" not in deleted
    assert result.errors == []


async def test_dry_run_sends_no_delete(hub):
    result = await one_pass(make_culler(hub, dry_run=True))
    assert len(result.culled) == 2 and hub.deleted == []
    assert not [r for r in hub.requests if r[0] == "DELETE"]


async def test_named_servers_and_removal(hub):
    hub.add_user("lab-user", {"": server(1), "lab": {**server(500), "name": "lab"}})
    await one_pass(make_culler(hub, remove_named_servers=True))
    assert ("lab-user", "lab", True) in hub.deleted
    assert ("lab-user", "", False) not in hub.deleted


async def test_the_service_keeps_running_after_failed_passes(hub):
    hub.fail("list", 500, times=2)
    culler = make_culler(hub, interval=0.05)
    task = asyncio.ensure_future(culler.run())
    for _ in range(100):
        if len(hub.deleted) >= 2:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(u for u, _, _ in hub.deleted) == ["idle-1", "idle-2"]
    assert sum(1 for method, _ in hub.requests if method == "GET") >= 3


async def test_slow_stops_are_reported_as_stopping(hub):
    hub.fail("delete", 202, body=b"")
    result = await one_pass(make_culler(hub))
    assert len(result.stopping) == 1 and len(result.culled) == 1
    assert result.errors == []


async def test_metrics(hub):
    from prometheus_client import generate_latest

    culler = make_culler(hub)
    hub.fail("delete", 500)
    await one_pass(culler)
    text = generate_latest(culler.metrics.registry).decode()
    assert 'hubext_culler_servers_culled_total{reason="idle"} 1.0' in text
    assert "hubext_culler_errors_total 1.0" in text
    assert "hubext_culler_passes_total 1.0" in text
    assert "hubext_culler_pass_duration_seconds_count 1.0" in text


async def test_a_dry_run_is_not_paced(hub):
    """Stops are paced by ``stop_spacing``; "would cull" decisions are not."""
    for i in range(20):
        hub.add_user(f"idle-many-{i}", {"": server(500)})
    slept = []

    async def sleep(seconds):  # the culler's injectable sleep: count, never wait
        slept.append(seconds)

    culler = make_culler(hub, stop_spacing=3600, dry_run=True, sleep=sleep)
    result = await one_pass(culler)
    assert len(result.culled) == 22 and hub.deleted == []
    assert slept == []
    culler.dry_run = (
        False  # the same pass for real: one wait before each stop but the first
    )
    result = await one_pass(culler)
    assert len(result.culled) == 22 and len(hub.deleted) == 22
    assert len(slept) == 21 and all(0 < s <= 3600 for s in slept)
