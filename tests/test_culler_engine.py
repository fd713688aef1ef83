"""The culler's pass engine on its own: pacing and concurrency, fast (no hub)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hubext.culler.engine import Pacer, PassSettings

from .culler_kit import engine_pass
from .fakes.hub_api import FakeHubAPI

TOKEN = "c3" * 32
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def test_pacer_spaces_each_action_after_the_first():
    slept = []

    async def sleep(seconds):  # records, never waits: the loop's clock barely moves
        slept.append(seconds)

    pacer = Pacer(10, sleep)
    for _ in range(4):
        await pacer.wait()
    assert len(slept) == 3
    assert all(9.5 < s <= 10 for s in slept), slept


async def test_pacer_without_spacing_never_sleeps():
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    pacer = Pacer(0, sleep)
    for _ in range(4):
        await pacer.wait()
    assert slept == []


async def test_pacer_really_waits():
    pacer = Pacer(0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(3):
        await pacer.wait()
    assert loop.time() - start >= 0.1


def idle_server():
    started = (NOW - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    return {"name": "", "ready": True, "pending": None, "started": started,
            "last_activity": started}  # fmt: skip


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_stops_overlap_up_to_the_concurrency(concurrency):
    with FakeHubAPI(TOKEN) as hub:
        for i in range(8):
            hub.add_user(f"idle-{i}", {"": idle_server()})
        # each stop takes 50 ms, so stops in flight overlap
        hub.fail("delete", None, times=8, hang=0.05)
        result = await engine_pass(
            hub.url,
            TOKEN,
            NOW,
            PassSettings(concurrency=concurrency, stop_spacing=0),
        )
    assert len(result.culled) == 8 and result.errors == []
    assert result.peak_concurrent_stops == concurrency


async def test_the_pass_line_agrees_with_its_numbers(caplog):
    with FakeHubAPI(TOKEN) as hub:
        hub.add_user("idle", {"": idle_server()})
        with caplog.at_level("INFO", logger="hubext.culler.test"):
            await engine_pass(hub.url, TOKEN, NOW, PassSettings(stop_spacing=0))
    (line,) = [r.getMessage() for r in caplog.records if "pass done" in r.getMessage()]
    assert ": 1 server (listed in 1 page, " in line, line
    assert " s), 1 culled, 0 stopping, 0 left alone, 0 users deleted, " in line
    assert line.endswith(", 0 errors, 2 API requests"), line
