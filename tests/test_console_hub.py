"""A real hub opens the delegated state when it starts: the schema created
beside its database or in PostgreSQL, kept across restarts, no password in its
log; an unusable ``c.Console.db_url`` stops it with one line."""

from __future__ import annotations

import textwrap

import pytest

from demo.services import DEMO_CONFIG, DemoEnvironment
from hubext.console.store import StateStore, Stored, current_revision, head_revision
from hubext.database import make_engine

from .harness import running_hub
from .usage_pg import postgres  # noqa: F401 (fixture)


def _start_log(hub, start: int) -> str:
    return hub.log().split(f"===== hub start {start} =====")[1]


@pytest.mark.e2e
def test_the_hub_opens_the_delegated_state_when_it_starts(
    tmp_path_factory,
    postgres,  # noqa: F811
):
    with running_hub(tmp_path_factory, "console-hub") as hub:
        # by default: a file of its own beside the hub's SQLite database
        path = hub.env.data_dir / "hubext-state.sqlite"
        url = f"sqlite:///{path}"
        assert f"hubext: the delegated state is in {url}" in _start_log(hub, 1)
        store = StateStore(make_engine(url))
        assert current_revision(store.engine) == head_revision()
        store.change(
            "ocean-lab",
            0,
            {"idle_timeout": 3600},
            actor="ada",
            actor_kind="user",
            action="idle_timeout.set",
        )
        hub.restart()
        assert store.read("ocean-lab") == Stored({"idle_timeout": 3600}, 1)
        assert store.verify() is None
        store.close()

        # PostgreSQL, with a password: the schema there, the password nowhere
        name = postgres.create_database()
        pg_url = postgres.url(name)
        hub.restart(extra_config=f"c.Console.db_url = {pg_url!r}\n")
        log = _start_log(hub, 3)
        shown = f"postgresql+psycopg://postgres:***@127.0.0.1:{postgres.port}/{name}"
        assert f"hubext: the delegated state is in {shown}" in log
        engine = make_engine(pg_url)
        assert current_revision(engine) == head_revision()
        engine.dispose()

        # unreachable: the hub starts all the same, and says why
        down = pg_url.replace(f":{postgres.port}/", ":9/")
        hub.restart(extra_config=f"c.Console.db_url = {down!r}\n")
        assert hub.api.get("/users").status_code == 200
        log = _start_log(hub, 4)
        assert (
            "hubext: the delegated state at postgresql+psycopg://postgres:***@"
            f"127.0.0.1:9/{name} cannot be opened: OperationalError"
        ) in log
        assert postgres.password[:8] not in hub.log()
        postgres.drop_database(name)


@pytest.mark.e2e
def test_an_unsupported_console_database_stops_the_hub(tmp_path):
    env = DemoEnvironment.with_free_ports(tmp_path / "hub")
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        textwrap.dedent(
            f"""\
            load_subconfig({str(DEMO_CONFIG)!r})
            c = get_config()
            c.Console.db_url = "mysql://hubext:pw-Lm93Qz@db.internal/state"
            """
        )
    )
    log = tmp_path / "hub.log"
    with open(log, "wb") as out:
        hub = env.start_hub(config, stdout=out, wait=False)
        try:
            returncode = hub.wait(timeout=60)
        finally:
            hub.kill()
    assert returncode != 0
    lines = log.read_text().splitlines()
    critical = [line for line in lines if "hubext: invalid configuration:" in line]
    assert len(critical) == 1, lines[-20:]
    assert critical[0].endswith(
        "Console.db_url: unsupported database 'mysql'; supported: sqlite, postgresql"
    )
    assert "pw-Lm93Qz" not in log.read_text()
    assert not (tmp_path / "hub" / "hubext-state.sqlite").exists()
