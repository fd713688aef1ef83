"""Limits per community: the key, the decision, and the hub's reservations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hubext._validation import ConfigErrors, KeyPath
from hubext.communities import parse_communities
from hubext.limits import (
    HUB_ACCOUNT_NAME,
    Budget,
    Demand,
    Limits,
    account_name,
    decide,
    describe,
    limits_of,
    parse_limits,
    summary,
)
from hubext.spawners.limits import HubLimits
from hubext.usage.ledger import Ledger, Resources

PATH = KeyPath("Communities.communities['lab'].limits")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_parse_everything():
    limits = parse_limits(
        {
            "max_servers": 30,
            "max_servers_per_member": 1,
            "max_cpu": 64,
            "max_memory": "256G",
            "max_gpu": 4,
            "budget": {
                "gpu_hours": 100,
                "period": {"days": 30},
                "per_member": {"gpu_hours": 10, "cpu_hours": 5.5},
            },
        },
        PATH,
    )
    assert limits == Limits(
        max_servers=30,
        max_servers_per_member=1,
        max_cpu=64.0,
        max_memory=256 * 2**30,
        max_gpu=4,
        budget=Budget(
            pool={"gpu_hours": 100.0},
            per_member={"gpu_hours": 10.0, "cpu_hours": 5.5},
            days=30,
        ),
    )
    assert describe(limits) == (
        "30 servers, 1/member, 64 CPUs, 256 GiB, 4 GPUs, 100 GPU-hours/30 days, "
        "10 GPU-hours/member/30 days, 5.5 CPU-hours/member/30 days"
    )
    assert describe(None) == describe(Limits()) == "-"


@pytest.mark.parametrize(
    ("value", "bytes_"),
    [
        ("512Mi", 512 * 2**20),
        ("2G", 2 * 2**30),
        ("1.5T", int(1.5 * 2**40)),
        (1000, 1000),
    ],
)
def test_memory_sizes(value, bytes_):
    assert parse_limits({"max_memory": value}, PATH).max_memory == bytes_


def test_every_error_is_reported_with_its_key_path():
    with pytest.raises(ConfigErrors) as e:
        parse_communities(
            {
                "lab": {
                    "limits": {
                        "max_servers": -1,
                        "max_servers_per_member": 1.5,
                        "max_cpu": "lots",
                        "max_memory": "2 bananas",
                        "max_gpu": True,
                        "budget": {"period": "week", "gpu_hours": -3},
                        "max_sessions": 3,
                    }
                }
            }
        )
    text = str(e.value)
    for expected in [
        "limits.max_sessions: unknown key",
        "limits.max_servers: must be a whole number >= 0, got -1",
        "limits.max_servers_per_member: must be a whole number >= 0, got 1.5",
        "limits.max_cpu: must be a number >= 0, got 'lots'",
        "limits.max_memory: must be bytes or a size like '256G' or '512Mi', got '2 bananas'",
        "limits.max_gpu: must be a whole number >= 0, got True",
        "limits.budget.period: must be 'month' or {'days': N}, got 'week'",
        "limits.budget.gpu_hours: must be a number >= 0, got -3",
    ]:
        assert expected in text, text


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({}, "limits.budget: names no resource"),
        (
            {"period": {"days": 0}, "gpu_hours": 1},
            "period.days: must be a whole number of days >= 1",
        ),
        ({"per_member": {"tpu_hours": 1}}, "per_member.tpu_hours: unknown key"),
    ],
)
def test_bad_budgets(budget, message):
    with pytest.raises(ConfigErrors) as e:
        parse_communities({"lab": {"limits": {"budget": budget}}})
    assert message in str(e.value)


def test_month_window_and_renewal():
    budget = Budget(pool={"gpu_hours": 1})
    assert budget.window_start(NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    assert "renews on 2026-12-01" in budget.renews(NOW)
    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert "renews on 2027-01-01" in budget.renews(december)
    rolling = Budget(pool={"gpu_hours": 1}, days=7)
    assert rolling.window_start(NOW) == NOW - timedelta(days=7)
    assert rolling.period_words() == "in the last 7 days"


def demand(user="ann", cpu=1.0, memory=2**30, gpus=0, community="lab"):
    return Demand(community=community, user=user, cpu=cpu, memory=memory, gpus=gpus)


@pytest.mark.parametrize(
    ("limits", "running", "wanted", "key", "words"),
    [
        (
            Limits(max_servers=2),
            [demand("a"), demand("b")],
            demand("c"),
            "max_servers",
            "Lab has 2 of its 2 servers running (max_servers). Try again when one of them stops.",
        ),
        (
            Limits(max_servers_per_member=1),
            [demand("ann")],
            demand("ann"),
            "max_servers_per_member",
            "You have 1 server charged to Lab running",
        ),
        (
            Limits(max_cpu=4),
            [demand("a", cpu=3)],
            demand("c", cpu=2),
            "max_cpu",
            "request 3 of its 4 CPUs (max_cpu) and this one requests 2 CPUs",
        ),
        (
            Limits(max_memory=4 * 2**30),
            [demand("a", memory=3 * 2**30)],
            demand("c", memory=2 * 2**30),
            "max_memory",
            "request 3 GiB of its 4 GiB (max_memory) and this one requests 2 GiB",
        ),
        (
            Limits(max_gpu=1),
            [demand("a", gpus=1)],
            demand("c", gpus=1),
            "max_gpu",
            "(max_gpu)",
        ),
    ],
)
def test_decide_refuses_at_the_limit(limits, running, wanted, key, words):
    refusal = decide(limits, wanted, running, name="Lab")
    assert refusal is not None and refusal.key == key
    assert words in refusal.message
    # one place fewer used: it fits (boundaries are inclusive)
    assert decide(limits, wanted, running[1:], name="Lab") is None


def test_resources_not_asked_for_are_not_limited():
    assert decide(Limits(max_gpu=0), demand(gpus=0), [], name="Lab") is None
    assert decide(Limits(max_cpu=2), demand(cpu=2), [], name="Lab") is None


def test_budgets_refuse_only_servers_that_use_the_resource():
    limits = Limits(
        budget=Budget(pool={"gpu_hours": 10}, per_member={"server_hours": 5})
    )
    used = {("gpu_hours", False): 10.0, ("server_hours", True): 1.0}
    gpu = demand(gpus=1)
    refusal = decide(limits, gpu, [], name="Lab", used=used, now=NOW)
    assert refusal.key == "budget.gpu_hours"
    assert refusal.message == (
        "Lab has used 10.0 of its 10 GPU-hours this month (budget.gpu_hours). "
        "It renews on 2026-12-01 at 00:00 UTC."
    )
    # a CPU server of the same community still starts
    assert decide(limits, demand(gpus=0), [], name="Lab", used=used, now=NOW) is None
    used[("server_hours", True)] = 5.0
    refusal = decide(limits, demand(gpus=0), [], name="Lab", used=used, now=NOW)
    assert refusal.key == "budget.per_member.server_hours"
    assert refusal.message.startswith(
        "You have used 5.0 of your 5 server-hours of Lab's budget this month"
    )


def test_summary_for_the_form():
    limits = Limits(
        max_servers=3,
        max_servers_per_member=1,
        max_gpu=2,
        budget=Budget(pool={"gpu_hours": 100}, days=30),
    )
    lines = summary(
        limits,
        "lab",
        "ann",
        [demand("ann", gpus=1), demand("bo")],
        name="Lab",
        used={("gpu_hours", False): 42.25},
    )
    assert lines == [
        "Lab: 2 of 3 servers running.",
        "You: 1 of 1 server charged to Lab.",
        "Lab: 1 of 2 GPUs requested by running servers.",
        "Lab: 42.2 of 100 GPU-hours used in the last 30 days.",
    ]


ONES = Limits(
    max_servers=1,
    max_servers_per_member=1,
    max_cpu=1,
    max_gpu=1,
    budget=Budget(pool={"gpu_hours": 1}, per_member={"cpu_hours": 1}, days=1),
)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        pytest.param(
            describe(ONES),
            "1 server, 1/member, 1 CPU, 1 GPU, 1 GPU-hour/1 day, "
            "1 CPU-hour/member/1 day",
            id="describe",
        ),
        pytest.param(
            summary(ONES, "lab", "ann", [], name="Lab", used={}),
            [
                "Lab: 0 of 1 server running.",
                "You: 0 of 1 server charged to Lab.",
                "Lab: 0 of 1 CPU requested by running servers.",
                "Lab: 0 of 1 GPU requested by running servers.",
                "Lab: 0.0 of 1 GPU-hour used in the last 1 day.",
                "You: 0.0 of 1 CPU-hour used in the last 1 day.",
            ],
            id="summary",
        ),
        pytest.param(
            decide(
                ONES, demand("c", gpus=1), [demand("a", gpus=1)], name="Lab"
            ).message.split(". ")[0],
            "Lab has 1 of its 1 server running (max_servers)",
            id="max-servers",
        ),
        pytest.param(
            decide(
                Limits(max_gpu=1),
                demand("c", gpus=1),
                [demand("a", gpus=1)],
                name="Lab",
            ).message.split(". ")[0],
            "Servers charged to Lab request 1 of its 1 GPU (max_gpu) and this "
            "one requests 1 GPU",
            id="max-gpu",
        ),
        pytest.param(
            decide(
                ONES, demand("c"), [], name="Lab", used={("cpu_hours", True): 1.0}
            ).message,
            "You have used 1.0 of your 1 CPU-hour of Lab's budget in the last 1 day "
            "(budget.per_member.cpu_hours). Usage older than 1 day stops counting: "
            "try again when enough of it has aged out of the window.",
            id="budget",
        ),
    ],
)
def test_one_of_anything_is_singular(words, expected):
    assert words == expected


def test_the_limits_and_name_of_each_account():
    communities = parse_communities(
        {
            "lab": {"display_name": "Ocean Lab", "limits": {"max_servers": 2}},
            "open": {},
        }
    )
    default = Limits(max_servers=9)
    assert limits_of(communities, "lab", default) == Limits(max_servers=2)
    # a community without limits, and the hub-wide account: the default
    assert limits_of(communities, "open", default) is default
    assert limits_of(communities, "_hub", default) is default
    assert account_name(communities, "lab") == "Ocean Lab"
    assert account_name(communities, "_hub") == HUB_ACCOUNT_NAME
    # the hub-wide account is capitalized only where it opens a sentence
    refusal = decide(
        Limits(max_servers=1), demand("ann"), [demand("bo")], name=HUB_ACCOUNT_NAME
    )
    assert refusal.message.startswith("The hub-wide account has 1 of its 1 server ")
    refusal = decide(
        Limits(max_servers_per_member=1),
        demand("ann"),
        [demand("ann")],
        name=HUB_ACCOUNT_NAME,
    )
    assert "charged to the hub-wide account running" in refusal.message


# -- the hub's reservations and budgets ------------------------------------------------


def test_reservations_are_held_and_released():
    hub = HubLimits(None)
    limits = Limits(max_servers=2)
    assert hub.reserve(("a", ""), demand("a"), limits, name="Lab") is None
    assert hub.reserve(("b", ""), demand("b"), limits, name="Lab") is None
    # another community is not counted
    assert (
        hub.reserve(("x", ""), demand("x", community="other"), limits, name="O") is None
    )
    assert hub.reserve(("c", ""), demand("c"), limits, name="Lab").key == "max_servers"
    # the same server asking again is not counted twice
    assert hub.reserve(("a", ""), demand("a"), limits, name="Lab") is None
    hub.release(("a", ""))
    assert hub.reserve(("c", ""), demand("c"), limits, name="Lab") is None
    assert [d.user for d in hub.running("lab")] == ["b", "c"]


async def test_concurrent_reservations_never_overshoot():
    hub = HubLimits(None)
    limits = Limits(max_servers=10)

    async def start(i):
        await asyncio.sleep(0)
        return hub.reserve((f"u{i}", ""), demand(f"u{i}"), limits, name="Lab")

    results = await asyncio.gather(*(start(i) for i in range(200)))
    assert sum(r is None for r in results) == 10


async def test_budget_use_reads_the_ledger_and_adds_running_servers(tmp_path):
    url = f"sqlite:///{tmp_path}/usage.sqlite"
    now = datetime.now(UTC).replace(microsecond=0)
    month = now.replace(day=1, hour=0, minute=0, second=0)
    ledger = Ledger(url)
    ledger.start()
    gpu = Resources(gpus=2)
    for user, begin, hours, community in [
        ("ann", month, 1.0, "lab"),  # 2 GPU-hours, this month
        ("bo", month, 0.5, "lab"),  # 1 GPU-hour
        ("ann", month - timedelta(days=2), 10.0, "lab"),  # last month: ignored
        ("cy", month, 3.0, "other"),  # another community: ignored
    ]:
        key = ledger.session_started(
            user=user, community=community, resources=gpu, at=begin
        )
        ledger.session_ended(key, at=begin + timedelta(hours=hours), reason="died")
    ledger.close()

    clock = [now]
    hub = HubLimits(url, refresh_interval=3600, clock=lambda: clock[0])
    budget = Budget(pool={"gpu_hours": 10}, per_member={"gpu_hours": 10})
    used = await hub.budget_use("lab", "ann", budget)
    assert used[("gpu_hours", False)] == pytest.approx(3.0)
    assert used[("gpu_hours", True)] == pytest.approx(2.0)
    # a server of ann's runs for 30 minutes: added from memory, no new reading
    hub.track(("ann", ""), demand("ann", gpus=1), now)
    clock[0] = now + timedelta(minutes=30)
    used = await hub.budget_use("lab", "ann", budget)
    assert used[("gpu_hours", False)] == pytest.approx(3.5)
    assert used[("gpu_hours", True)] == pytest.approx(2.5)
    used = await hub.budget_use("lab", "bo", budget)
    assert used[("gpu_hours", True)] == pytest.approx(1.0)


async def test_an_unreadable_ledger_counts_running_servers_and_says_so(
    tmp_path, caplog
):
    hub = HubLimits(f"sqlite:///{tmp_path}/missing/none.sqlite")
    used = await hub.budget_use("lab", "ann", Budget(pool={"server_hours": 1}))
    assert used == {}
    assert "cannot read the usage of lab from the ledger" in caplog.text
