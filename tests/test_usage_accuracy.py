"""The usage ledger is exact: a small simulated timeline, by time travel.

The simulation of ``benchmarks/bench_usage_accuracy.py`` (hubext's real usage
hooks on a spawner whose servers are simulated, the hub's real ledger
writing to a SQLite file, ``hubext usage report`` reading it), small enough
for the suite: users stop their servers, admins and the culler stop them,
servers die and are found by a poll, starts fail, the hub crashes, restarts
keeping its servers, and shuts down stopping them. The report must equal, to
the microsecond and per community, what the simulation expects from the
polls it made; what is stopped through the hub must be counted exactly; a
death at most one poll period too long; a crash must cut a session at most
one poll period (plus the start-up time, before the first poll) early.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from benchmarks.bench_usage_accuracy import Params, simulate
from hubext.usage.model import sessions
from hubext.usage.query import aggregate_report
from hubext.usage.store import make_engine, upgrade_to_head


def test_a_simulated_timeline_is_counted_exactly(tmp_path):
    params = Params(
        sessions=400,
        users=40,
        communities=4,
        admins=2,
        days=1,
        crashes=2,
        restarts=2,
        cleanups=1,
        seed=7,
    )
    outcome = simulate(params, tmp_path)
    sim = outcome.sim

    assert outcome.problems == []
    # every kind of end happened, so every rule above was checked
    ends = {run.how for run in sim.runs}
    assert {
        "stopped_by_user",
        "stopped_by_admin",
        "culled",
        "died",
        "failed_to_start",
        "hub_cleanup",
    } <= ends
    assert sorted(kind for kind, _, _ in sim.hub_events) == [
        "cleanup",
        "crash",
        "crash",
        "restart",
        "restart",
    ]
    assert any(run.cut_gaps for run in sim.runs)
    assert any(run.detection for run in sim.runs)
    resumed = [run for run in sim.runs if len(run.expected) > 1]
    assert resumed, "no server outlived a hub"
    # the ledger's end reasons, as the hooks recorded them
    reasons = {row.end_reason for row in outcome.rows}
    assert reasons == {
        "stopped_by_user",
        "stopped_by_admin",
        "culled",
        "died",
        "failed_to_start",
        "hub_restart",
    }
    # the communities' rows and the hub-wide account add up to the total
    assert sum(outcome.report["rows"].values()) == outcome.report["total"]
    assert "_hub" in outcome.report["rows"]


@pytest.mark.parametrize("fraction", [0, 499_999, 999_499, 999_500, 999_999])
def test_the_report_counts_microseconds_near_a_whole_second(tmp_path, fraction):
    """SQLite's ``strftime('%s')`` rounds to the millisecond: a stored time at
    .9995 s or later would count as the next second (1 s too much or too
    little), which the simulated timeline above met in one session in 2,000.
    """
    engine = make_engine(f"sqlite:///{tmp_path / 'hubext-usage.sqlite'}")
    upgrade_to_head(engine)
    start = datetime(2025, 3, 3, 12, 0, 0, fraction, tzinfo=UTC)
    stop = datetime(2025, 3, 3, 12, 0, 10, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            sessions.insert(),
            {
                "id": "a",
                "username": "ada",
                "server_name": "",
                "community": "ocean-lab",
                "started_at": start,
                "last_seen_at": stop,
                "stopped_at": stop,
                "end_reason": "stopped_by_user",
            },
        )
    report = aggregate_report(
        engine,
        start=datetime(2025, 3, 3, tzinfo=UTC),
        end=datetime(2025, 3, 4, tzinfo=UTC),
        now=datetime(2025, 3, 4, tzinfo=UTC),
    )
    engine.dispose()
    assert report.rows["ocean-lab"].server_us == 10_000_000 - fraction
