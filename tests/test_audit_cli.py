"""``hubext audit verify`` and ``hubext audit list`` on real databases (SQLite
and PostgreSQL): exit status, formats, CSV a spreadsheet opens safely, the
database found from a hub's configuration, and no password in any output."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update

from hubext.cli import main
from hubext.console.model import VERSION_TABLE, audit
from hubext.console.store import StateStore
from hubext.csv_cells import FORMULA_STARTS
from hubext.database import make_engine

from .usage_pg import db_url, postgres  # noqa: F401 (fixtures)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
#: Names a spreadsheet would take for formulas (OWASP's examples), and a
#: terminal's control sequence.
HOSTILE_ACTORS = ["=cmd|' /C calc'!A0", "@SUM(1+1)", "+1", "-2+3", "\tx", "'quoted"]


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def filled(db_url):  # noqa: F811
    """A state with changes of two communities and events."""
    store = StateStore.open(db_url)
    store.change(
        "ocean-lab",
        0,
        {"environments": [{"slug": "py311"}]},
        actor="ada",
        actor_kind="user",
        action="environment.add",
        at=T0,
    )
    store.change(
        "ocean-lab",
        1,
        {"environments": [{"slug": "py311"}], "idle_timeout": 3600},
        actor="ada",
        actor_kind="user",
        action="idle_timeout.set",
        at=T0 + timedelta(hours=1),
    )
    for i, actor in enumerate(HOSTILE_ACTORS):
        store.record(
            actor=actor,
            actor_kind="user",
            action="environment.add_refused",
            community="astro-101",
            after={"image": '=HYPERLINK("http://evil")'} if i == 0 else "-1",
            at=T0 + timedelta(hours=2, minutes=i),
        )
    store.change(
        "astro-101",
        0,
        {"idle_timeout": 900},
        actor="hubext-console",
        actor_kind="service",
        action="idle_timeout.set",
        at=T0 + timedelta(hours=3),
    )
    yield store
    store.close()


def test_verify_says_the_chain_holds_and_prints_its_head(filled, db_url, capsys):  # noqa: F811
    code, out, err = run(capsys, "verify", "--db-url", db_url)
    seq, digest = filled.head()
    assert (code, err) == (0, "")
    assert out == (
        f"hubext: the audit log holds: {seq} rows, and the stored settings are "
        f"those it records; head: {seq}:{digest}\n"
    )
    # the head noted, the log checked against it later
    code, out, err = run(
        capsys, "verify", "--db-url", db_url, "--expect", f"{seq}:{digest}"
    )
    assert code == 0


def test_verify_names_the_first_bad_row(filled, db_url, capsys):  # noqa: F811
    head = filled.head()
    with filled.engine.begin() as connection:
        connection.execute(update(audit).where(audit.c.seq == 4).values(actor="ada"))
    code, out, err = run(capsys, "verify", "--db-url", db_url)
    assert (code, out) == (1, "")
    assert err == (
        "hubext: the audit log is broken at row 4: its content does not match its "
        "hash: the row was edited\n"
    )
    # the state behind the log, changed directly
    with filled.engine.begin() as connection:
        # row 4 as it was (the second hostile actor's refusal)
        connection.execute(
            update(audit).where(audit.c.seq == 4).values(actor=HOSTILE_ACTORS[1])
        )
        connection.execute(
            text(
                "UPDATE hubext_delegated SET version = 7 WHERE community = 'astro-101'"
            )
        )
    code, out, err = run(capsys, "verify", "--db-url", db_url)
    assert code == 1
    assert err.startswith(
        "hubext: the delegated state does not match the audit log: the stored "
        "document of 'astro-101' (version 7) is not what its last change"
    ), err
    # an anchor the log no longer holds
    with filled.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE hubext_delegated SET version = 1 WHERE community = 'astro-101'"
            )
        )
    other = f"{head[0]}:{'0' * 64}"
    code, out, err = run(capsys, "verify", "--db-url", db_url, "--expect", other)
    assert code == 1
    assert f"broken at row {head[0]}: its hash is {head[1]}, not the " in err


def test_an_empty_log_holds(db_url, capsys):  # noqa: F811
    StateStore.open(db_url).close()
    assert run(capsys, "verify", "--db-url", db_url) == (
        0,
        "hubext: the audit log holds: it is empty\n",
        "",
    )
    code, out, _ = run(capsys, "list", "--db-url", db_url)
    assert code == 0
    assert out.splitlines()[-1] == "(no rows)"


def test_list_as_a_table(filled, db_url, capsys):  # noqa: F811
    code, out, err = run(capsys, "list", "--db-url", db_url)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "seq", "at", "(UTC)", "actor", "community", "action", "version", "what",
    ]  # fmt: skip
    assert lines[2].split() == [
        "1", "2026-03-01", "09:00:00", "ada", "(user)", "ocean-lab",
        "environment.add", "1", "environments",
    ]  # fmt: skip
    assert lines[3].split()[-2:] == ["2", "idle_timeout"]
    # a control character is shown escaped, never sent to the terminal
    assert "\t" not in out and "\\tx (user)" in out
    assert len(lines) == 2 + filled.count()
    code, out, _ = run(capsys, "list", "--db-url", db_url, "--community", "ocean-lab")
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["1", "2"]
    code, out, _ = run(
        capsys, "list", "--db-url", db_url, "--since", "2026-03-01T12:00:00Z"
    )
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["9"]


def test_list_as_csv_is_safe_in_a_spreadsheet(filled, db_url, capsys):  # noqa: F811
    code, out, err = run(capsys, "list", "--db-url", db_url, "--format", "csv")
    assert (code, err) == (0, "")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == [
        "seq", "at", "actor", "actor_kind", "community", "action", "version",
        "before", "after", "prev_hash", "hash",
    ]  # fmt: skip
    expected = filled.audit()
    assert len(rows) == 1 + len(expected)
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), row
    # every text comes back by removing one leading "'"
    actors = [row[2] for row in rows[1:]]
    assert [a[1:] if a.startswith("'") else a for a in actors] == [
        r.actor for r in expected
    ]
    assert actors[2] == "'=cmd|' /C calc'!A0"
    assert actors[7] == "''quoted"
    # before and after as canonical JSON
    assert rows[1][7:9] == ["", '{"environments":[{"slug":"py311"}]}']
    assert rows[3][8] == '{"image":"=HYPERLINK(\\"http://evil\\")"}'
    assert rows[4][8] == '"-1"'
    assert [row[0] for row in rows[1:]] == [str(r.seq) for r in expected]
    assert rows[1][6] == "1" and rows[3][6] == ""


def test_list_as_json_has_every_hashed_field(filled, db_url, capsys):  # noqa: F811
    code, out, err = run(capsys, "list", "--db-url", db_url, "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"rows": [r.as_json() for r in filled.audit()]}
    first = json.loads(out)["rows"][0]
    assert first["at"] == "2026-03-01T09:00:00.000000+00:00"
    assert first["prev_hash"] == "0" * 64


# -- the database from the hub's configuration ----------------------------------------


def test_the_database_named_in_a_hub_config(filled, db_url, tmp_path, capsys):  # noqa: F811
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(f"c = get_config()\nc.Console.db_url = {db_url!r}\n")
    code, out, err = run(capsys, "verify", "--hub-config", str(config))
    assert code == 0, err
    shown = make_engine(db_url).url.render_as_string(hide_password=True)
    assert err == f"hubext: reading {shown}\n"
    values = tmp_path / "values.yaml"
    values.write_text(f"hub:\n  config:\n    Console:\n      db_url: {db_url}\n")
    code, out, err = run(capsys, "list", "--hub-config", str(values))
    assert code == 0, err
    assert "ocean-lab" in out


def test_the_default_beside_the_hubs_database(tmp_path, monkeypatch, capsys):
    hub_dir = tmp_path / "srv"
    hub_dir.mkdir()
    StateStore.open(f"sqlite:///{hub_dir}/hubext-state.sqlite").close()
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        f"c = get_config()\nc.JupyterHub.db_url = 'sqlite:///{hub_dir}/jupyterhub.sqlite'\n"
    )
    code, _, err = run(capsys, "verify", "--hub-config", str(config))
    assert (code, err) == (
        0,
        f"hubext: reading sqlite:///{hub_dir}/hubext-state.sqlite\n",
    )
    # JupyterHub's default database, relative: from where the command runs
    config.write_text("c = get_config()\n")
    monkeypatch.chdir(hub_dir)
    code, _, err = run(capsys, "verify", "--hub-config", str(config))
    assert (code, err) == (
        0,
        f"hubext: reading sqlite:///{hub_dir}/hubext-state.sqlite\n",
    )
    # a values file: the hub pod's directory
    values = tmp_path / "values.yaml"
    values.write_text("hub:\n  db:\n    type: sqlite-pvc\n")
    code, _, err = run(capsys, "verify", "--hub-config", str(values))
    assert code == 1
    assert err.splitlines() == [
        "hubext: reading sqlite:////srv/jupyterhub/hubext-state.sqlite",
        "hubext: no delegated state at /srv/jupyterhub/hubext-state.sqlite: no such file",
    ]


def test_a_bad_console_db_url_in_the_hub_config(tmp_path, capsys):
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "c = get_config()\nc.Console.db_url = 'mysql://u:pw-Rt72Lx@h/db'\n"
    )
    code, out, err = run(capsys, "verify", "--hub-config", str(config))
    assert (code, out) == (1, "")
    assert err == (
        "hubext: invalid configuration: Console.db_url: unsupported database "
        "'mysql'; supported: sqlite, postgresql\n"
    )


# -- errors: one line, the right status, no password ----------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(
            ["verify", "--db-url", "not a url:pw-Sx1"],
            2,
            "hubext: --db-url: not a database URL (not shown: it may hold a password)",
            id="unparsable-url",
        ),
        pytest.param(
            ["list", "--db-url", "mysql://u:pw-Sx1@h/db"],
            2,
            "hubext: --db-url: unsupported database 'mysql'",
            id="unsupported-database",
        ),
        pytest.param(
            ["verify", "--db-url", "sqlite:////nonexistent/hubext-state.sqlite"],
            1,
            "hubext: no delegated state at /nonexistent/hubext-state.sqlite: no such file",
            id="no-such-file",
        ),
        pytest.param(
            ["verify", "--db-url", "EMPTY"],
            1,
            "hubext: no delegated state in sqlite:///",
            id="no-schema",
        ),
        pytest.param(
            ["verify", "--db-url", "NEWER"],
            1,
            "hubext: the delegated state in sqlite:///",
            id="newer-schema",
        ),
        pytest.param(
            ["list", "--db-url", "FILLED", "--community", "Ocean Lab"],
            2,
            "hubext: --community: slug must match",
            id="bad-community",
        ),
        pytest.param(
            ["list", "--db-url", "FILLED", "--since", "last week"],
            2,
            "hubext: --since: not a date or time: 'last week'",
            id="bad-since",
        ),
        pytest.param(
            ["verify", "--db-url", "FILLED", "--expect", "12:abc"],
            2,
            "hubext: --expect: not SEQ:HASH",
            id="bad-anchor",
        ),
        pytest.param(
            ["verify", "--hub-config", "/nonexistent/jupyterhub_config.py"],
            2,
            "hubext: --hub-config: no such file: /nonexistent/jupyterhub_config.py",
            id="no-hub-config",
        ),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, args, code, message):
    path = tmp_path / "hubext-state.sqlite"
    if "EMPTY" in args:
        make_engine(f"sqlite:///{path}").connect().close()  # a file, no schema
    elif "NEWER" in args:
        StateStore.open(f"sqlite:///{path}").close()
        engine = make_engine(f"sqlite:///{path}")
        with engine.begin() as connection:
            connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0042'"))
        engine.dispose()
        message += f"{path} is at revision '0042', and this hubext reads '0002'"
    elif "FILLED" in args:
        StateStore.open(f"sqlite:///{path}").close()
    args = [
        f"sqlite:///{path}" if a in ("EMPTY", "NEWER", "FILLED") else a for a in args
    ]
    got, out, err = run(capsys, *args)
    assert (got, out) == (code, "")
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "pw-Sx1" not in err
    assert not (tmp_path / "nonexistent").exists()


def test_nothing_is_created_where_there_is_no_database(tmp_path, capsys):
    path = tmp_path / "hubext-state.sqlite"
    assert run(capsys, "list", "--db-url", f"sqlite:///{path}")[0] == 1
    assert not path.exists()


@pytest.mark.parametrize("where", ["unreachable", "wrong-password"])
def test_postgresql_errors_show_no_password(postgres, where):  # noqa: F811
    if where == "unreachable":
        url = postgres.url().replace(f":{postgres.port}/", ":9/")
    else:
        url = postgres.url().replace(postgres.password, postgres.password + "x")
    done = subprocess.run(
        [sys.executable, "-m", "hubext.cli", "audit", "verify", "--db-url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    port = 9 if where == "unreachable" else postgres.port
    assert done.stderr.startswith(
        f"hubext: cannot read postgresql+psycopg://postgres:***@127.0.0.1:{port}/"
        "postgres: OperationalError"
    ), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert postgres.password[:8] not in done.stderr


def test_the_console_script_runs_it(filled, db_url):  # noqa: F811
    done = subprocess.run(
        [sys.executable, "-m", "hubext.cli", "audit", "list", "--db-url", db_url,
         "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["rows"]) == filled.count()
    if "postgresql" in db_url:
        password = make_engine(db_url).url.password
        assert password not in done.stdout + done.stderr
