"""How the console reads a community's members from the hub's database
(JupyterHub's own schema, made by its ORM in SQLite): the right people, and
queries whose plan finds them through the membership and the users' primary
key rather than reading every user (with their encrypted auth_state)."""

from __future__ import annotations

from jupyterhub import orm, roles
from sqlalchemy import event

from hubext.console.members import read_members
from hubext.roles import community_admin_role_name


def _hub_db(path):
    db = orm.new_session_factory(f"sqlite:///{path}")()
    roles.create_role(db, {"name": community_admin_role_name("astro"), "scopes": []})
    astro, ocean = orm.Group(name="astro"), orm.Group(name="ocean")
    db.add_all([astro, ocean])
    for i in range(40):
        user = orm.User(name=f"user{i:02d}", encrypted_auth_state=b"x" * 4000)
        db.add(user)
        (astro if i % 4 == 0 else ocean).users.append(user)
    db.commit()
    for name in ("user00", "user01"):  # user01 is an admin out of the group
        roles.grant_role(
            db,
            entity=orm.User.find(db, name),
            rolename=community_admin_role_name("astro"),
        )
    db.commit()
    return db


def test_members_and_admins_are_read_without_reading_every_user(tmp_path):
    db = _hub_db(tmp_path / "jupyterhub.sqlite")
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "users" in statement:
            statements.append((statement, parameters))

    event.listen(db.get_bind(), "before_cursor_execute", record)
    rows = read_members(db, "astro")
    event.remove(db.get_bind(), "before_cursor_execute", record)

    assert [(name, admin) for name, admin, _ in rows] == [
        ("user00", True),
        ("user01", True),
        ("user04", False),
        ("user08", False),
        ("user12", False),
        ("user16", False),
        ("user20", False),
        ("user24", False),
        ("user28", False),
        ("user32", False),
        ("user36", False),
    ]
    assert dict((n, e) for n, _, e in rows)["user04"] == b"x" * 4000
    assert dict((n, e) for n, _, e in rows)["user01"] is None  # not in the group
    assert len(statements) == 2, statements
    raw = db.connection().connection.driver_connection
    for statement, parameters in statements:
        plan = [
            step[3]
            for step in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        ]
        # no step reads the whole users table (nor its name index)
        assert not [step for step in plan if step.startswith("SCAN users")], plan
        assert "SEARCH users USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    db.close()


def test_a_community_with_nobody_has_no_members(tmp_path):
    db = _hub_db(tmp_path / "jupyterhub.sqlite")
    assert read_members(db, "nobody-here") == []
    db.close()
