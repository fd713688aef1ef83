"""``hubext usage report`` on real ledgers (SQLite and PostgreSQL): the numbers,
the window query, prices, and one-line errors with exit status 1 or 2."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from hubext.cli import main
from hubext.usage import Ledger, Resources
from hubext.usage.model import HUB_ACCOUNT, sessions
from hubext.usage.report import Span, build_report
from hubext.usage.store import make_engine, upgrade_to_head

from .usage_pg import db_url, postgres  # noqa: F401 (fixtures)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
GIB = 2**30


def report(capsys, *args) -> tuple[int, str, str]:
    code = main(["usage", "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_of_a_recorded_day(db_url, capsys, tmp_path):  # noqa: F811
    ledger = Ledger(db_url)
    ledger.start()
    ada = ledger.session_started(
        user="ada",
        community="ocean-lab",
        profile="gpu",
        resources=Resources(cpu_request=2, mem_request=4 * GIB, gpus=1),
        at=T0 - 2 * H,  # began the day before: 2 of its 5 hours are outside
    )
    ledger.session_ended(ada, T0 + 3 * H, "culled")
    bob = ledger.session_started(
        user="bob",
        community="astro-101",
        profile="small",
        resources=Resources(cpu_request=0.5, mem_request=GIB),
        at=T0 + 20 * H,  # still running: up to --now
    )
    ledger.seen_alive([bob], T0 + 21 * H)
    root = ledger.session_started(user="root", community=None, at=T0 + H)
    ledger.session_ended(root, T0 + 2 * H, "stopped_by_admin")
    after = ledger.session_started(user="ada", community="ocean-lab", at=T0 + 25 * H)
    ledger.session_ended(after, T0 + 26 * H, "stopped_by_user")
    ledger.close(timeout=10)

    args = ["--db-url", db_url, "--from", "2026-03-01", "--to", "2026-03-02"]
    code, out, err = report(
        capsys, *args, "--now", "2026-03-01T22:00:00Z", "--format", "json"
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    rows = {r["community"]: r for r in data["rows"]}
    assert set(rows) == {"ocean-lab", "astro-101", HUB_ACCOUNT}
    assert rows["ocean-lab"]["server_hours"] == 3
    assert rows["ocean-lab"]["cpu_hours"] == 6
    assert rows["ocean-lab"]["gib_hours"] == 12
    assert rows["ocean-lab"]["gpu_hours"] == 3
    assert rows["astro-101"]["server_hours"] == 2
    assert rows["astro-101"]["gib_hours"] == 2
    assert rows[HUB_ACCOUNT]["server_hours"] == 1
    assert data["total"]["server_seconds"] == 6 * 3600
    assert data["total"]["sessions"] == 3

    # open sessions up to the last time the hub saw them, by user
    code, out, _ = report(
        capsys,
        *args,
        "--now",
        "2026-03-01T22:00:00Z",
        "--open-until",
        "last-seen",
        "--by",
        "user",
        "--format",
        "csv",
    )
    assert code == 0
    assert out.splitlines() == [
        "user,sessions,server_hours,cpu_hours,gib_hours,gpu_hours",
        "ada,1,3.000000,6.000000,12.000000,3.000000",
        "bob,1,1.000000,0.500000,1.000000,0.000000",
        "root,1,1.000000,0.000000,0.000000,0.000000",
        "total,3,5.000000,6.500000,13.000000,3.000000",
    ]

    prices = tmp_path / "prices.yaml"
    prices.write_text("ocean-lab:\n  gpu_hour: 1.2\n  cpu_hour: 0.05\n")
    code, out, err = report(
        capsys, *args, "--now", "2026-03-01T22:00:00Z", "--prices", str(prices)
    )
    assert code == 0
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert total.split()[-1] == "3.90"  # 3 GPU-hours * 1.2 + 6 CPU-hours * 0.05
    assert err == "hubext: no prices for _hub, astro-101: counted at 0\n"

    # the same prices from the hub's own configuration (.py and z2jh values)
    hub_py = tmp_path / "jupyterhub_config.py"
    hub_py.write_text(
        "c.Communities.communities = {\n"
        "    'ocean-lab': {'usage': {'prices': {'gpu_hour': 1.2, 'cpu_hour': 0.05}}},\n"
        "    'astro-101': {},\n"
        "}\n"
    )
    values = tmp_path / "values.yaml"
    values.write_text(
        "hub:\n  config:\n    Communities:\n      communities:\n"
        "        ocean-lab:\n          usage:\n            prices:\n"
        "              gpu_hour: 1.2\n              cpu_hour: 0.05\n"
    )
    # ... and added from a jupyterhub_config.d/ file, as usage.md shows
    hub_d = tmp_path / "hub-d"
    (hub_d / "jupyterhub_config.d").mkdir(parents=True)
    (hub_d / "jupyterhub_config.py").write_text(
        "c.Communities.communities = {'ocean-lab': {}, 'astro-101': {}}\n"
        "load_subconfig('jupyterhub_config.d/50-prices.py')\n"
    )
    (hub_d / "jupyterhub_config.d" / "50-prices.py").write_text(
        "from hubext import add_to_community\n"
        "c = get_config()\n"
        "add_to_community(c, 'ocean-lab', "
        "usage={'prices': {'gpu_hour': 1.2, 'cpu_hour': 0.05}})\n"
    )
    for config in (hub_py, values, hub_d / "jupyterhub_config.py"):
        code, out, err = report(
            capsys, *args, "--now", "2026-03-01T22:00:00Z", "--hub-config", str(config)
        )
        assert code == 0, err
        total = next(line for line in out.splitlines() if line.startswith("total"))
        assert total.split()[-1] == "3.90"
        assert err == "hubext: no prices for _hub, astro-101: counted at 0\n"
    # a bad price in the configuration: its key path, exit status 1
    hub_py.write_text(
        "c.Communities.communities = {'ocean-lab': {'usage': {'prices': {'gpu_hour': -1}}}}\n"
    )
    code, out, err = report(capsys, *args, "--hub-config", str(hub_py))
    assert code == 1
    assert err == (
        "hubext: invalid configuration: Communities.communities['ocean-lab']"
        ".usage.prices.gpu_hour: must be a finite number >= 0, got -1\n"
    )
    # --prices and --hub-config together: a usage error
    with pytest.raises(SystemExit) as exit_:
        report(capsys, *args, "--prices", str(prices), "--hub-config", str(hub_py))
    assert exit_.value.code == 2


def test_the_window_query_finds_every_overlapping_session(db_url, capsys):  # noqa: F811
    # Sessions written straight into the table (edges included: stopping at
    # the window's start, starting at its end, open, zero length), then the
    # report read from the database must equal the report of the same list.
    rng = random.Random(11)
    spans, rows = [], []
    edges = [T0 + 10 * H, T0 + 20 * H]
    for i in range(300):
        start = (
            rng.choice(edges)
            if i % 10 == 0
            else T0
            + rng.randrange(0, 30 * 60) * timedelta(minutes=1)
            + timedelta(microseconds=rng.randrange(10**6))
        )
        length = (
            rng.choice([timedelta(0), H, 3 * H, 10 * H])
            if i % 3
            else (rng.randrange(0, 20 * 60) * timedelta(minutes=1))
        )
        stop = None if i % 7 == 0 else start + length
        if i % 10 == 1:
            stop = edges[0]
            start = min(start, stop)
        span = Span(
            user=f"u{i % 13}",
            community=rng.choice(["ocean-lab", "astro-101", HUB_ACCOUNT]),
            profile=rng.choice(["gpu", None]),
            started_at=start,
            last_seen_at=stop or start + length,
            stopped_at=stop,
            cpu_request=rng.choice([None, 0.0, 1.0, 2.5]),
            mem_request=rng.choice([None, 0, GIB]),
            gpus=rng.choice([0, 1]),
            # a limit alone counts as the request (the one rule of
            # hubext.usage.model.counted, in SQL and in Python)
            cpu_limit=rng.choice([None, 4.0]),
            mem_limit=rng.choice([None, 2 * GIB]),
        )
        spans.append(span)
        rows.append(
            {
                "id": f"{i:036d}",
                "username": span.user,
                "server_name": "",
                "community": span.community,
                "profile": span.profile,
                "cpu_request": span.cpu_request,
                "cpu_limit": span.cpu_limit,
                "mem_request": span.mem_request,
                "mem_limit": span.mem_limit,
                "gpus": span.gpus,
                "started_at": span.started_at,
                "last_seen_at": span.last_seen_at,
                "stopped_at": span.stopped_at,
            }
        )
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    with engine.begin() as connection:
        connection.execute(sessions.insert(), rows)
    engine.dispose()
    now = T0 + 15 * H  # inside the window: open sessions end at different places
    for by, open_until in [
        ("community", "now"),
        ("user", "last-seen"),
        ("profile", "now"),
        ("community", "last-seen"),
    ]:
        code, out, _ = report(
            capsys,
            "--db-url", db_url, "--from", edges[0].isoformat(), "--to",
            edges[1].isoformat(), "--now", now.isoformat(), "--by", by,
            "--open-until", open_until, "--format", "json",
        )  # fmt: skip
        assert code == 0
        expected = build_report(
            spans, start=edges[0], end=edges[1], now=now, by=by, open_until=open_until
        )
        data = json.loads(out)
        got = {r[by]: r for r in data["rows"]}
        assert set(got) == set(expected.rows)
        for key, usage in expected.rows.items():
            assert got[key]["server_seconds"] == usage.server_us / 1e6
            assert got[key]["sessions"] == usage.sessions
            for unit in ("cpu_hours", "gib_hours", "gpu_hours"):
                assert math.isclose(
                    got[key][unit], getattr(usage, unit), rel_tol=1e-9, abs_tol=1e-9
                ), (key, unit)
        assert data["total"]["sessions"] == expected.total.sessions > 50
        assert data["total"]["server_seconds"] == expected.total.server_us / 1e6


def _empty_sqlite(tmp_path) -> str:
    path = tmp_path / "empty.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect():
        pass
    engine.dispose()
    return f"sqlite:///{path}"


BAD = [
    pytest.param(
        ["--from", "2026-13-01"],
        2,
        "hubext: --from: not a date or time: '2026-13-01'",
        id="bad-from",
    ),
    pytest.param(
        ["--to", "yesterday"], 2, "hubext: --to: not a date or time", id="bad-to"
    ),
    pytest.param(
        ["--from", "2026-03-02", "--to", "2026-03-01"],
        2,
        "hubext: --from 2026-03-02 is not before --to 2026-03-01",
        id="empty-window",
    ),
    pytest.param(
        ["--db-url", "not a url:pw"],
        2,
        "hubext: --db-url: not a database URL (not shown: it may hold a password)",
        id="unparsable-url",
    ),
    pytest.param(
        ["--db-url", "oracle2://u:pw@h/db"],
        2,
        "hubext: --db-url: unsupported database 'oracle2'",
        id="unknown-database",
    ),
    pytest.param(
        ["--db-url", "sqlite:////nonexistent/hubext-usage.sqlite"],
        1,
        "hubext: no usage ledger at /nonexistent/hubext-usage.sqlite: no such file",
        id="no-such-sqlite-file",
    ),
    pytest.param(
        ["--db-url", "EMPTY"],
        1,
        "hubext: no usage ledger in sqlite:///",
        id="database-without-ledger",
    ),
    pytest.param(
        ["--prices", "/nonexistent/prices.yaml"],
        2,
        "hubext: --prices: no such file: /nonexistent/prices.yaml",
        id="no-prices-file",
    ),
    pytest.param(
        ["--prices", "PRICES"],
        1,
        "hubext: invalid prices: prices['ocean-lab'].cpu_hour: must be a finite "
        "number >= 0, got -0.5",
        id="bad-prices",
    ),
    pytest.param(["--by", "group"], 2, "invalid choice: 'group'", id="bad-grouping"),
]


@pytest.mark.parametrize(("args", "code", "message"), BAD)
def test_errors_are_one_line_with_an_exit_status(tmp_path, capsys, args, code, message):
    options = {
        "--db-url": _empty_sqlite(tmp_path),
        "--from": "2026-03-01",
        "--to": "2026-03-02",
    }
    given = dict(zip(args[::2], args[1::2], strict=True))
    if given.get("--db-url") == "EMPTY":
        given["--db-url"] = options["--db-url"]
    if given.get("--prices") == "PRICES":
        prices = tmp_path / "prices.json"
        prices.write_text('{"ocean-lab": {"cpu_hour": -0.5}}')
        given["--prices"] = str(prices)
    options.update(given)
    argv = [x for kv in options.items() for x in kv]
    if code == 2 and "invalid choice" in message:
        with pytest.raises(SystemExit) as e:
            main(["usage", "report", *argv])
        assert e.value.code == 2
        assert message in capsys.readouterr().err
        return
    got, out, err = report(capsys, *argv)
    assert (got, out) == (code, "")
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_unreachable_postgresql_one_line_no_password(postgres):  # noqa: F811
    # a port where nothing listens, with the real server's password in the URL
    url = postgres.url().replace(f":{postgres.port}/", ":9/")
    done = subprocess.run(
        [sys.executable, "-m", "hubext.cli", "usage", "report", "--db-url", url,
         "--from", "2026-03-01", "--to", "2026-03-02"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(
        "hubext: cannot read the usage database "
        "postgresql+psycopg://postgres:***@127.0.0.1:9/postgres: OperationalError"
    ), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert postgres.password[:8] not in done.stderr
