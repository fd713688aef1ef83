"""Report speed: one month by community out of a year of sessions.

Fills a usage ledger with a year of 5,000 users' sessions (about 2 million:
400 each, 20 communities and the hub-wide account, a few still open), then
times ``hubext usage report --by community`` for one month (the query of the
sessions overlapping the window and their clipping and adding up; the best
of ``--rounds``), the way ``hubext usage report`` does it (the database
clips and adds up) and the pure way (every overlapping row read). SQLite in a temporary file, and PostgreSQL in a throwaway
server started like the tests' (Debian's postgresql package).

    python benchmarks/bench_usage_report.py [--sessions 2000000] [--backend both]

The aim (issue 11): under 1 s for the month.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hubext.usage.model import HUB_ACCOUNT, sessions
from hubext.usage.query import aggregate_report, overlapping_spans
from hubext.usage.report import build_report
from hubext.usage.store import make_engine, upgrade_to_head

YEAR = datetime(2026, 1, 1, tzinfo=UTC)
GIB = 2**30
BATCH = 20_000


def rows(n: int, users: int = 5_000, seed: int = 1):
    rng = random.Random(seed)
    communities = [f"community-{i}" for i in range(20)] + [HUB_ACCOUNT]
    seconds = 365 * 86400
    for i in range(n):
        start = YEAR + timedelta(seconds=rng.randrange(seconds))
        length = timedelta(seconds=min(int(rng.expovariate(1 / 7200)), 86400))
        still_open = rng.random() < 0.001
        yield {
            "id": f"{i:036d}",
            "username": f"user{rng.randrange(users)}",
            "server_name": "",
            "community": rng.choice(communities),
            "profile": rng.choice(["small", "medium", "gpu"]),
            "choices": None,
            "cpu_request": rng.choice([0.5, 1.0, 2.0, 4.0]),
            "cpu_limit": None,
            "mem_request": rng.choice([1, 2, 4, 8]) * GIB,
            "mem_limit": None,
            "gpus": rng.choice([0, 0, 0, 1]),
            "started_at": start,
            "last_seen_at": start + length,
            "stopped_at": None if still_open else start + length,
            "end_reason": None if still_open else "stopped_by_user",
        }


def fill(engine, n: int) -> float:
    upgrade_to_head(engine)
    t = time.perf_counter()
    batch = []
    with engine.begin() as connection:
        for row in rows(n):
            batch.append(row)
            if len(batch) == BATCH:
                connection.execute(sessions.insert(), batch)
                batch = []
        if batch:
            connection.execute(sessions.insert(), batch)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.exec_driver_sql(f"ANALYZE {sessions.name}")
    return time.perf_counter() - t


def time_report(engine, rounds: int) -> dict[str, tuple[float, int]]:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    end = datetime(2026, 7, 1, tzinfo=UTC)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    ways = {
        # what `hubext usage report` does: the database clips and adds up
        "report": lambda: aggregate_report(engine, start=start, end=end, now=now),
        # the pure definition, every overlapping row read into Python
        "rows read": lambda: build_report(
            overlapping_spans(engine, start, end), start=start, end=end, now=now
        ),
    }
    times = {}
    for name, way in ways.items():
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            report = way()
            best = min(best, time.perf_counter() - t)
        times[name] = (best, report.total.sessions)
    return times


def bench(name: str, url: str, n: int, rounds: int) -> None:
    engine = make_engine(url)
    filled = fill(engine, n)
    times = time_report(engine, rounds)
    counted = times["report"][1]
    assert times["rows read"][1] == counted
    print(
        f"{name:10}  {n:>9,} sessions (filled in {filled:.0f} s), one month by "
        f"community ({counted:,} sessions in it): "
        + ", ".join(f"{way} {t * 1000:,.0f} ms" for way, (t, _) in times.items())
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql", "both"], default="both"
    )
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'hubext-usage.sqlite'}"
            bench("sqlite", url, args.sessions, args.rounds)
    if args.backend in ("postgresql", "both"):
        from tests.usage_pg import PostgresServer

        server = PostgresServer().start()
        try:
            bench("postgresql", server.url(server.create_database()), args.sessions,
                  args.rounds)  # fmt: skip
        finally:
            server.destroy()


if __name__ == "__main__":
    main()
