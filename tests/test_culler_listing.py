"""The culler's listing: pages that adapt to the hub, read while servers stop.

:class:`~hubext.culler.listing.PageSizer` is pure (a table of simulated hubs);
the pass runs against the fault-injecting hub API, where a stopped server
leaves the listing at once and every row after it moves up, as in JupyterHub.
"""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from hubext._validation import ConfigError
from hubext.culler.app import Culler
from hubext.culler.listing import PageSizer

from .culler_kit import fake_hub_culler, one_pass
from .fakes.hub_api import FakeHubAPI

TOKEN = "b7" * 32
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

# -- the page size ---------------------------------------------------------------------


def settle(sizer: PageSizer, fixed: float, per_user: float, pages: int = 30) -> int:
    """The size ``sizer`` settles at on a hub answering a page of ``n`` users
    in ``fixed + n * per_user`` seconds."""
    for _ in range(pages):
        sizer.observe(sizer.size, fixed + sizer.size * per_user)
    return sizer.size


@pytest.mark.parametrize(
    ("fixed", "per_user", "budget", "expected"),
    [
        # 0.015 / 0.0003: the users of a page take 15 ms of the hub's time
        pytest.param(0.01, 0.0003, 0.015, 50, id="users-take-the-budget"),
        pytest.param(0.01, 0.0003, 0.0075, 25, id="a-smaller-budget"),
        # what every page costs, however large, changes nothing
        pytest.param(0.2, 0.0003, 0.015, 50, id="a-costly-page-the-same"),
        pytest.param(0.001, 0.00001, 0.015, 200, id="cheap-users-the-maximum"),
        # never fewer than the first page's users
        pytest.param(0.01, 0.01, 0.015, 20, id="dear-users-the-first-size"),
    ],
)
def test_the_page_size_settles(fixed, per_user, budget, expected):
    sizer = PageSizer(20, 10, 200, budget)
    assert settle(sizer, fixed, per_user) == pytest.approx(expected, abs=1)


def test_the_second_page_is_twice_the_first_to_learn_the_costs():
    sizer = PageSizer(50, 10, 200, 0.015)
    assert sizer.per_user() is None
    assert sizer.observe(50, 0.025) == 100
    sizer.observe(100, 0.04)
    assert sizer.per_user() == pytest.approx(0.0003)


def test_pages_at_most_double_and_at_most_halve():
    sizer = PageSizer(50, 1, 1000, 0.015)
    assert sizer.observe(50, 0.025) == 100
    assert sizer.observe(100, 0.02501) == 200  # users nearly free: doubled
    sizer = PageSizer(10, 1, 1000, 0.015)
    assert sizer.observe(10, 0.01) == 20
    assert sizer.observe(20, 0.0101) == 40
    assert sizer.observe(40, 1.0) == 20  # 33 ms a user: halved, not 10


def test_a_hub_that_slows_down_gets_smaller_pages():
    sizer = PageSizer(20, 10, 200, 0.015)
    fast = settle(sizer, 0.01, 0.0003)
    for size in (fast, fast // 2) * PageSizer.WINDOW:  # the hub got busy
        sizer.observe(size, 0.02 + size * 0.0006)
    slow = settle(sizer, 0.02, 0.0006)
    assert slow < fast and slow == pytest.approx(25, abs=1)


def test_a_few_slow_answers_change_nothing():
    """A page answered late (the hub busy for a moment) is not a dearer hub."""
    sizer = PageSizer(20, 10, 200, 0.015)
    settled = settle(sizer, 0.01, 0.0003)
    for size in (settled, settled // 2, settled, settled // 2):
        sizer.observe(size, 0.01 + size * 0.0003)
    for _ in range(3):
        assert sizer.observe(sizer.size, 0.4) == settled


def test_noise_never_breaks_the_sizer():
    sizer = PageSizer(50, 10, 200, 0.015)
    # a larger page answered faster than a smaller one: no negative cost
    for rows, seconds in [(50, 0.03), (100, 0.02), (25, 0.05), (200, 0.01)]:
        size = sizer.observe(rows, seconds)
        assert 50 <= size <= 200
    assert sizer.observe(0, 0.01) == sizer.size  # nothing to learn


def test_a_cap_lowers_the_bounds():
    sizer = PageSizer(150, 100, 200, 0.015)
    sizer.cap(30)
    assert (sizer.minimum, sizer.size, sizer.maximum) == (30, 30, 30)
    assert sizer.observe(30, 0.02) == 30


def test_noisy_answers_never_make_pages_smaller_than_the_first():
    """On a shared machine a page's time swings with the other work: taken
    for a dearer hub, it made pages smaller than JupyterHub's default, and a
    listing slower than one in pages of the default. The defaults list in
    pages of 50, whatever the answers' times."""
    noise = random.Random(21)
    sizer = PageSizer(50, 10, 50, 0.015)
    for _ in range(400):
        rows = sizer.size
        busy = noise.choice([0, 0, 0, 0.005, 0.02, 0.08])
        assert sizer.observe(rows, 0.007 + rows * 0.0003 + busy) == 50
    # with room to grow, pages grow and come back, never below the first size
    sizer = PageSizer(50, 10, 200, 0.015)
    sizes = set()
    for _ in range(400):
        rows = sizer.size
        busy = noise.choice([0, 0, 0, 0.005, 0.02, 0.08])
        sizes.add(sizer.observe(rows, 0.007 + rows * 0.0003 + busy))
    assert min(sizes) >= 50 and max(sizes) <= 200


@pytest.mark.parametrize(
    ("sizes", "budget"),
    [
        pytest.param((50, 100, 10), 0.015, id="min-over-max"),
        pytest.param((50, 10, 200), 0, id="no-budget"),
    ],
)
def test_a_sizer_out_of_order_is_refused(sizes, budget):
    with pytest.raises(ValueError, match="page"):
        PageSizer(*sizes, budget)


# -- the settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        pytest.param(
            {"page_size": 500}, r"Culler.page_size: 500 is not between", id="page-size"
        ),
        pytest.param(
            {"min_page_size": 300},
            r"Culler.min_page_size: 300 is more than Culler.max_page_size \(50\)",
            id="min-over-max",
        ),
    ],
)
def test_page_sizes_out_of_order_are_refused(traits, message):
    with pytest.raises(ConfigError, match=message):
        Culler(**traits).check_page_sizes()


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        pytest.param({"page_time": 0}, "Culler.page_time: must be more than 0", id="0"),
        pytest.param({"page_time": -1.0}, "Culler.page_time", id="negative"),
        pytest.param({"page_size": 0}, "page_size", id="page-size-0"),
        pytest.param({"min_page_size": 0}, "min_page_size", id="min-0"),
        pytest.param({"concurrency": 0}, "concurrency", id="concurrency-0"),
    ],
)
def test_bad_values_are_refused(traits, message):
    with pytest.raises(Exception, match=message):  # a TraitError
        Culler(**traits)


def test_the_service_stops_on_page_sizes_out_of_order():
    result = subprocess.run(
        [sys.executable, "-m", "hubext.culler", "--page-size=500", "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "JUPYTERHUB_API_TOKEN": TOKEN,
            "HUBEXT_SERVICE": "culler",
            "HUBEXT_COMMUNITIES": "{}",
            "PATH": "",
        },
    )
    assert result.returncode == 1
    assert "Culler.page_size: 500 is not between" in result.stderr


# -- a pass that lists while it stops --------------------------------------------------


def ago(minutes):
    return (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def server(idle_minutes):
    return {
        "name": "",
        "ready": True,
        "pending": None,
        "started": ago(idle_minutes + 5),
        "last_activity": ago(idle_minutes),
    }


@pytest.fixture
def hub():
    """23 users with a ready server, every other one idle for 2 hours."""
    with FakeHubAPI(TOKEN) as fake:
        for i in range(23):
            fake.add_user(f"user-{i:02d}", {"": server(120 if i % 2 == 0 else 1)})
        yield fake


IDLE = {f"user-{i:02d}" for i in range(0, 23, 2)}


def pages(size, **traits):
    return {"page_size": size, "min_page_size": size, "max_page_size": size, **traits}


def listing_requests(hub):
    """The (offset, limit) of each page asked for, in order."""
    asked = []
    for method, path in hub.requests:
        if method == "GET" and urlsplit(path).path == "/hub/api/users":
            query = parse_qs(urlsplit(path).query)
            asked.append((int(query["offset"][0]), int(query["limit"][0])))
    return asked


@pytest.mark.parametrize("size", [1, 3, 5, 50])
async def test_one_pass_culls_every_idle_server_while_stops_move_the_rows(hub, size):
    """Each stop moves the rows after it up one: none is skipped."""
    result = await one_pass(fake_hub_culler(hub.url, TOKEN, NOW, **pages(size)))
    assert sorted(u for u, _, _ in hub.deleted) == sorted(IDLE)
    assert result.errors == [] and result.servers == 23


async def test_servers_are_stopped_while_the_listing_goes_on(hub):
    result = await one_pass(fake_hub_culler(hub.url, TOKEN, NOW, **pages(3)))
    kinds = [m for m, p in hub.requests if m == "DELETE" or "/hub/api/users?" in p]
    last_page = len(kinds) - 1 - kinds[::-1].index("GET")
    assert "DELETE" in kinds[:last_page]  # stops before the listing's end
    # the first page first, then from the last page back
    assert listing_requests(hub) == [
        (0, 3),
        *[(o, 3) for o in range(20, 4, -3)],
        (3, 2),
    ]
    assert result.pages == 8 and result.largest_page == 3


async def test_the_first_pages_servers_wait_for_the_end_of_the_listing(hub):
    await one_pass(fake_hub_culler(hub.url, TOKEN, NOW, **pages(3)))
    order = [p for m, p in hub.requests if m == "DELETE" or "/hub/api/users?" in p]
    last_page = max(i for i, p in enumerate(order) if "/hub/api/users?" in p)
    first_page = {"user-00", "user-02"}  # the idle users of rows 0-2
    stopped_early = {p.split("/")[4] for p in order[:last_page] if "?" not in p}
    assert stopped_early and not stopped_early & first_page


async def test_a_hub_that_caps_pages_is_listed_whole(hub):
    """Pages larger than the hub's api_page_max_limit are asked for again."""
    hub.max_limit = 4
    result = await one_pass(
        fake_hub_culler(hub.url, TOKEN, NOW, page_size=3, max_page_size=10)
    )
    assert sorted(u for u, _, _ in hub.deleted) == sorted(IDLE)
    assert result.errors == [] and result.largest_page == 4
    asked = listing_requests(hub)
    assert max(limit for _, limit in asked[asked.index((19, 4)) :]) == 4


async def test_a_backlog_of_stops_slows_the_listing_to_its_shortest_pages(hub):
    """While a round of stops waits for its slots, pages are the smallest."""
    hub.fail("delete", None, times=12, hang=0.2)  # slow stops
    traits = {"page_size": 4, "min_page_size": 1, "max_page_size": 4}
    result = await one_pass(
        fake_hub_culler(hub.url, TOKEN, NOW, concurrency=1, **traits)
    )
    assert sorted(u for u, _, _ in hub.deleted) == sorted(IDLE)
    limits = [limit for _, limit in listing_requests(hub)]
    assert 1 in limits and result.pages > 23 // 4 + 1


async def test_a_listing_failing_part_way_stops_what_it_decided(hub):
    hub.fail("list", None)  # the first page passes
    hub.fail("list", None)  # the second too
    hub.fail("list", 500)  # the third fails
    result = await one_pass(fake_hub_culler(hub.url, TOKEN, NOW, **pages(3)))
    assert len(result.errors) == 1 and "HTTP 500" in result.errors[0]
    stopped = {u for u, _, _ in hub.deleted}
    # the first page (user-00, user-02) and the last (rows 20-22)
    assert stopped == {"user-00", "user-02", "user-20", "user-22"}
    result = await one_pass(fake_hub_culler(hub.url, TOKEN, NOW, **pages(3)))
    assert sorted(u for u, _, _ in hub.deleted) == sorted(IDLE)  # the next pass
