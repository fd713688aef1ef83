"""Usage metrics: the counters per community (exact values, time injected),
equal to what the ledger and the report count for the same sessions; the
``jupyterhub_user_group_info`` gauge of 2i2c's exporter; both on a real hub's
``/hub/metrics``."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta

import pytest
from jupyterhub import orm
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from hubext.usage import HUB_ACCOUNT, Ledger, Resources
from hubext.usage.metrics import (
    UsageMetrics,
    UserGroupInfoCollector,
    hub_memberships,
    user_group_series,
)
from hubext.usage.model import sessions
from hubext.usage.query import overlapping_spans
from hubext.usage.report import build_report
from hubext.usage.store import make_engine

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
GIB = 2**30


class Clock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def registry():
    return CollectorRegistry()


def value(registry, name: str, **labels) -> float | None:
    return registry.get_sample_value(name, labels)


def usage(registry, community: str) -> dict[str, float | None]:
    return {
        "server": value(
            registry, "hubext_usage_server_seconds_total", community=community
        ),
        **{
            resource: value(
                registry,
                "hubext_usage_resource_seconds_total",
                community=community,
                resource=resource,
            )
            for resource in ("cpu", "memory", "gpu")
        },
        "running": value(registry, "hubext_usage_running_servers", community=community),
    }


ZERO = {"server": 0.0, "cpu": 0.0, "memory": 0.0, "gpu": 0.0, "running": 0.0}


def test_every_configured_community_and_the_hub_account_start_at_zero(registry):
    UsageMetrics(["ocean-lab", "astro-101"], registry=registry)
    for community in ("ocean-lab", "astro-101", HUB_ACCOUNT):
        assert usage(registry, community) == ZERO
    assert usage(registry, "elsewhere")["server"] is None


def test_counters_move_by_the_time_since_the_last_heartbeat(registry):
    metrics = UsageMetrics(["ocean-lab"], registry=registry)
    big = Resources(
        cpu_request=2, cpu_limit=8, mem_request=4 * GIB, mem_limit=16 * GIB, gpus=1
    )
    metrics.session_started("a", "ocean-lab", big, at=T0)
    assert usage(registry, "ocean-lab") == {**ZERO, "running": 1.0}

    metrics.seen_alive(["a", "unknown"], at=T0 + 30 * S)
    assert usage(registry, "ocean-lab") == {
        "server": 30.0,
        "cpu": 60.0,  # the request, not the limit
        "memory": 30.0 * 4 * GIB,
        "gpu": 30.0,
        "running": 1.0,
    }
    # a heartbeat never moves a counter back, nor counts twice
    metrics.seen_alive(["a"], at=T0 + 10 * S)
    metrics.seen_alive(["a"], at=T0 + 30 * S)
    assert usage(registry, "ocean-lab")["server"] == 30.0

    metrics.session_ended("a", at=T0 + 90.5 * S)
    ended = {
        "server": 90.5,
        "cpu": 181.0,
        "memory": 90.5 * 4 * GIB,
        "gpu": 90.5,
        "running": 0.0,
    }
    assert usage(registry, "ocean-lab") == ended
    # only the first end counts; the session is gone for heartbeats too
    metrics.session_ended("a", at=T0 + 200 * S)
    metrics.seen_alive(["a"], at=T0 + 300 * S)
    assert usage(registry, "ocean-lab") == ended
    assert value(registry, "hubext_usage_running_servers", community="ocean-lab") == 0


def test_no_community_is_the_hub_account_and_a_new_community_gets_series(registry):
    clock = Clock()
    metrics = UsageMetrics(["ocean-lab"], registry=registry, clock=clock)
    metrics.session_started("admin", None, Resources(cpu_request=0.5))
    metrics.session_started("later", "added-later", None)
    clock.now = T0 + 60 * S
    metrics.seen_alive(["admin", "later"])
    clock.now = T0 + 70 * S
    metrics.session_ended("admin")
    assert usage(registry, HUB_ACCOUNT) == {**ZERO, "server": 70.0, "cpu": 35.0}
    assert usage(registry, "added-later") == {**ZERO, "server": 60.0, "running": 1.0}
    assert usage(registry, "ocean-lab") == ZERO


def test_bad_input_is_logged_never_raised(registry, caplog):
    metrics = UsageMetrics(registry=registry, log=logging.getLogger("test.metrics"))
    metrics.session_started("a", "ocean-lab", Resources(cpu_request="two"), at=T0)
    metrics.session_started("b", "ocean-lab", at=T0)
    metrics.session_started("b", "ocean-lab", at=T0 + S)
    metrics.session_ended("b", at=T0 + 5 * S)
    assert usage(registry, "ocean-lab") == {**ZERO, "server": 5.0}
    assert "could not count the start of a" in caplog.text
    assert "session b started twice" in caplog.text


def test_the_counters_equal_the_ledger_and_its_report(tmp_path, registry):
    """The same sessions through the ledger and the report, and through the
    metrics: the same seconds per community, for every resource."""
    rng = random.Random(11)
    db = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    ledger = Ledger(db, log=logging.getLogger("test.usage"))
    ledger.start()
    communities = ["ocean-lab", "astro-101", None]
    metrics = UsageMetrics(["ocean-lab", "astro-101"], registry=registry)
    # 300 sessions with heartbeats at microsecond moments; some ended,
    # some failed at once, some still open (counted up to their last beat)
    events = []
    for _ in range(300):
        start = T0 + timedelta(microseconds=rng.randrange(3_600_000_000))
        resources = Resources(
            cpu_request=rng.choice([None, 0.25, 1, 2.5]),
            cpu_limit=8,
            mem_request=rng.choice([None, 512 * 2**20, 3 * GIB]),
            mem_limit=32 * GIB,
            gpus=rng.choice([0, 0, 1, 2]),
        )
        community = rng.choice(communities)
        beats = sorted(
            start + timedelta(microseconds=rng.randrange(7_200_000_000))
            for _ in range(rng.randrange(6))
        )
        end = rng.choice(
            [
                "open",
                "failed",
                start + timedelta(microseconds=rng.randrange(9_000_000_000)),
            ]
        )
        events.append((start, "start", community, resources))
        events += [(at, "beat") for at in beats]
        if end == "failed":
            events.append((start, "end"))
        elif end != "open":
            events.append((max(end, *beats, start), "end"))
    keys = {}
    order = sorted(range(len(events)), key=lambda i: events[i][0])
    session_of = {}
    current = None
    for i, event in enumerate(events):
        if event[1] == "start":
            current = i
        session_of[i] = current
    for i in order:
        at, kind, *rest = events[i]
        if kind == "start":
            community, resources = rest
            key = ledger.session_started(
                user="u", community=community, resources=resources, at=at
            )
            metrics.session_started(key, community, resources, at=at)
            keys[i] = key
        elif kind == "beat":
            key = keys[session_of[i]]
            ledger.seen_alive([key], at=at)
            metrics.seen_alive([key], at=at)
        else:
            key = keys[session_of[i]]
            ledger.session_ended(key, at=at, reason="stopped_by_user")
            metrics.session_ended(key, at=at)
    assert ledger.wait_idle(30)
    ledger.close()

    engine = make_engine(db)
    with engine.connect() as connection:
        open_in_ledger = connection.execute(
            select(func.count()).where(sessions.c.stopped_at.is_(None))
        ).scalar()
    window = (T0 - 24 * 3600 * S, T0 + 24 * 3600 * S)
    report = build_report(
        overlapping_spans(engine, *window),
        start=window[0],
        end=window[1],
        now=window[1],
        open_until="last-seen",
    )
    engine.dispose()
    assert set(report.rows) == {"ocean-lab", "astro-101", HUB_ACCOUNT}
    assert open_in_ledger > 0
    open_servers = sum(
        usage(registry, c)["running"] for c in ("ocean-lab", "astro-101", HUB_ACCOUNT)
    )
    # the running-servers gauges count what the ledger has open
    assert open_servers == open_in_ledger
    for community, row in report.rows.items():
        counted = usage(registry, community)
        assert counted["server"] == pytest.approx(row.server_us / 1e6, abs=1e-3)
        assert counted["cpu"] == pytest.approx(row.cpu_seconds, abs=1e-3)
        assert counted["memory"] / GIB == pytest.approx(row.gib_seconds, abs=1e-3)
        assert counted["gpu"] == pytest.approx(row.gpu_seconds, abs=1e-3)


def test_the_ledgers_outage_and_refused_events_are_metrics(tmp_path, registry):
    import time

    from hubext.usage.metrics import LedgerCollector

    # the directory of the file does not exist yet: SQLite cannot open it
    folder = tmp_path / "state"
    url = f"sqlite:///{folder}/hubext-usage.sqlite"
    ledger = Ledger(url, max_pending=2, retry_initial=0.05, retry_max=0.05)
    now = [1000.0]
    registry.register(LedgerCollector(ledger, monotonic=lambda: now[0]))
    assert value(registry, "hubext_usage_ledger_outage_seconds") == 0
    ledger.start()
    try:
        for i in range(3):
            ledger.session_started(user=f"u{i}", community="x")
        deadline = time.monotonic() + 10
        while ledger.outage_since is None and time.monotonic() < deadline:
            time.sleep(0.02)
        now[0] = ledger.outage_since + 42.5
        assert value(registry, "hubext_usage_ledger_outage_seconds") == 42.5
        assert value(registry, "hubext_usage_ledger_pending_events") == 2
        assert value(registry, "hubext_usage_ledger_refused_events_total") == 1
        folder.mkdir()
        assert ledger.wait_idle(10)
        deadline = time.monotonic() + 10
        while ledger.outage_since is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert value(registry, "hubext_usage_ledger_outage_seconds") == 0
        assert value(registry, "hubext_usage_ledger_pending_events") == 0
        assert value(registry, "hubext_usage_ledger_refused_events_total") == 1
    finally:
        ledger.close(timeout=5)


# -- jupyterhub_user_group_info ---------------------------------------------


@pytest.mark.parametrize(
    ("memberships", "expected"),
    [
        ([("ada", "ocean-lab")], {"ada": ["ocean-lab"]}),
        (
            [("ada", "ocean-lab"), ("ada", "astro-101")],
            {"ada": ["astro-101", "ocean-lab", "multiple"]},
        ),
        ([("dave", None)], {"dave": ["none"]}),
        (
            [("bob", "astro-101"), ("dave", None), ("bob", "ocean-lab")],
            {"bob": ["astro-101", "ocean-lab", "multiple"], "dave": ["none"]},
        ),
    ],
    ids=["one-group", "several-groups-and-multiple", "no-group-is-none", "mixed"],
)
def test_user_group_series_follow_the_exporter(memberships, expected):
    assert user_group_series(memberships) == expected


def test_user_group_info_from_a_hub_database(registry):
    """The collector reads a JupyterHub database (its real schema) at scrape."""
    db = orm.new_session_factory("sqlite://")()
    ocean, astro = orm.Group(name="ocean-lab"), orm.Group(name="astro-101")
    ada = orm.User(name="Ada.Lovelace@x", groups=[ocean, astro])
    db.add_all([ocean, astro, ada, orm.User(name="dave")])
    db.commit()
    registry.register(
        UserGroupInfoCollector(lambda: hub_memberships(db), namespace="hub-ns")
    )
    samples = {
        (s.labels["usergroup"], s.labels["username"]): s
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "jupyterhub_user_group_info"
    }
    assert set(samples) == {
        ("astro-101", "Ada.Lovelace@x"),
        ("ocean-lab", "Ada.Lovelace@x"),
        ("multiple", "Ada.Lovelace@x"),
        ("none", "dave"),
    }
    # KubeSpawner's legacy "escape" and 7.0 "safe" names (golden values)
    assert samples["ocean-lab", "Ada.Lovelace@x"].labels == {
        "namespace": "hub-ns",
        "usergroup": "ocean-lab",
        "username": "Ada.Lovelace@x",
        "username_escaped": "-41da-2e-4covelace-40x",
        "username_safe": "ada-lovelace-x---c762190e",
    }
    assert {s.value for s in samples.values()} == {1.0}

    # membership changes show at the next scrape
    ada.groups = [astro]
    db.delete(db.query(orm.User).filter_by(name="dave").one())
    db.commit()
    after = [
        (s.labels["usergroup"], s.labels["username"])
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "jupyterhub_user_group_info"
    ]
    assert after == [("astro-101", "Ada.Lovelace@x")]


# -- a real hub --------------------------------------------------------------

HUB_CONFIG = """
c.UsageLedger.user_group_info_metric = True
c.JupyterHub.load_roles.append(
    {"name": "metrics-reader", "scopes": ["read:metrics"], "services": ["hubext-test"]}
)
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from .harness import running_hub

    with running_hub(tmp_path_factory, "usage-metrics", HUB_CONFIG) as hub:
        yield hub


def scrape(hub) -> dict[str, dict[tuple, float]]:
    from prometheus_client.parser import text_string_to_metric_families

    r = hub.api.session.get(f"{hub.url}/hub/metrics", timeout=30)
    r.raise_for_status()
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


@pytest.mark.e2e
def test_a_real_spawn_shows_on_the_hubs_metrics_as_in_the_ledger(hub):
    """LocalCommunitySpawner's usage hooks count a server on /hub/metrics:
    every community's series, the running server, its seconds equal to the
    ledger's; and jupyterhub_user_group_info of the hub's users."""
    import requests

    from hubext.communities import Communities

    from .hubclient import wait_until

    # JupyterHub's own rule applies: a token with read:metrics
    assert requests.get(f"{hub.url}/hub/metrics", timeout=30).status_code == 403
    communities = sorted(Communities(config=_demo_config()).registry)
    assert len(communities) >= 2
    for account in ("alice", "carol"):
        hub.signed_in(account)
    # a user of no group (an account made by an admin)
    assert hub.api.request("POST", "/users/dave").status_code == 201

    r = hub.api.request("POST", "/users/carol/server", json={})
    assert r.status_code in (201, 202), r.text
    server = hub.api.wait_for_server("carol")
    charged = server["user_options"].get("community") or HUB_ACCOUNT
    one = (("community", charged),)
    running = scrape(hub)
    assert running["hubext_usage_running_servers"][one] == 1
    for community in [*communities, HUB_ACCOUNT]:
        key = (("community", community),)
        assert key in running["hubext_usage_server_seconds_total"]
        for resource in ("cpu", "memory", "gpu"):
            key = (("community", community), ("resource", resource))
            assert key in running["hubext_usage_resource_seconds_total"]
    groups = {
        (dict(labels)["username"], dict(labels)["usergroup"])
        for labels in running["jupyterhub_user_group_info"]
    }
    assert groups == {
        ("alice", "ocean-lab"),
        ("carol", "ocean-lab"),
        ("carol", "astro-101"),
        ("carol", "multiple"),
        ("dave", "none"),
    }

    r = hub.api.request("DELETE", "/users/carol/server")
    assert r.status_code in (202, 204), r.text
    hub.api.wait_for_server("carol", ready=False)
    assert wait_until(lambda: scrape(hub)["hubext_usage_running_servers"][one] == 0)
    after = scrape(hub)["hubext_usage_server_seconds_total"]
    assert after[one] > 0
    for community in [*communities, HUB_ACCOUNT]:
        if community != charged:
            assert after[(("community", community),)] == 0

    # the same seconds as the ledger's record of this session, once closed
    from sqlalchemy import select

    from hubext.usage.model import sessions

    (ledger_file,) = hub.workdir.rglob("hubext-usage.sqlite")
    engine = make_engine(f"sqlite:///{ledger_file}")

    def closed():
        with engine.connect() as connection:
            return connection.execute(
                select(sessions.c.stopped_at).where(sessions.c.stopped_at.is_not(None))
            ).all()

    assert wait_until(closed)
    now = datetime.now(UTC)
    report = build_report(
        overlapping_spans(engine, now - 3600 * S, now),
        start=now - 3600 * S,
        end=now,
        now=now,
    )
    engine.dispose()
    assert set(report.rows) == {charged}
    assert after[one] == pytest.approx(report.rows[charged].server_us / 1e6, abs=1e-3)


def _demo_config():
    """The demo's configuration, as the hub loads it."""
    from traitlets.config import PyFileConfigLoader

    from demo.services import DEMO_CONFIG

    return PyFileConfigLoader(str(DEMO_CONFIG)).load_config()
