"""The console's page and API with 5,000 members across 100 communities, and
the time from a change to the next spawn form that shows it.

A real JupyterHub application in this process (tests/inprocess_hub.py says
what is real: JupyterHub's handlers, ORM, scopes and hubext's console over
HTTP; no proxy, no servers), SQLite. 100 communities (``community-0`` ...
``community-99``), each delegating environments, sizes and the idle
timeout; 50 members each (5,000 people, each with the identity hubext
records at sign-in, encrypted, so that "why each is a member" is read and
decrypted for each); 5 stored environments each. Measured, by the admin of
``community-42`` (a member of it, holding its ``community-admin`` role):

- ``GET /hub/api/hubext/communities/community-42``: the whole community
  (bounds, settings, members and why, limits and use), by token;
- the community's console page, by cookie;
- ``GET /hub/api/hubext/communities``, ``.../members``, ``.../audit``;
- the peer: JupyterHub's own REST API listing the same people for the same
  admin (``GET /hub/api/users``, which JupyterHub filters to the admin's
  group by their ``read:users!group=`` scope: what its admin page loads),
  and ``GET /hub/api/groups/community-42``;
- a change to the next spawn form: the admin renames an environment
  through the API, then a member's spawn form is fetched until it shows
  the new name; the time from sending the change to that form (the first
  change apart: it runs the machine's check of the environment's python,
  once per environment).

    python benchmarks/bench_console.py [--rounds 200] [--changes 20]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("JUPYTERHUB_CRYPT_KEY", secrets.token_hex(32))

from jupyterhub import orm
from jupyterhub.crypto import CryptKeeper

from tests.console_kit import make_software_environment
from tests.inprocess_hub import InProcessHub, Person, hub_config

COMMUNITIES = 100
MEMBERS = 50
ENVIRONMENTS = 5
TARGET = "community-42"


def communities(envs: Path) -> dict:
    def one(slug: str) -> dict:
        return {
            "display_name": slug.replace("-", " ").title(),
            "members": [{"provider": "demo", "group": slug}],
            "admins": [{"provider": "demo", "group": f"{slug}-admins"}],
            "limits": {"max_cpu": 64, "max_memory": "256G"},
            "self_service": {
                "environments": {
                    "software_roots": [str(envs / "shared")],
                    "max_profiles": 10,
                },
                "sizes": {
                    "small": {"cpu_guarantee": 1, "mem_guarantee": "4G"},
                    "large": {"cpu_guarantee": 8, "mem_guarantee": "32G"},
                },
                "idle_timeout": {"min": 900, "max": 28800},
            },
        }

    return {f"community-{c}": one(f"community-{c}") for c in range(COMMUNITIES)}


def document(python: str, name: str = "Environment") -> dict:
    return {
        "environments": [
            {
                "slug": f"env-{i}",
                "display_name": f"{name} {i}",
                "software_environment": python,
                "sizes": ["small", "large"],
            }
            for i in range(ENVIRONMENTS)
        ],
        "idle_timeout": 3600,
    }


async def add_members(hub: InProcessHub) -> None:
    """5,000 people in 100 groups, each with a recorded identity (encrypted)."""
    db = hub.app.db
    fernet = CryptKeeper.instance().fernet
    for c in range(COMMUNITIES):
        slug = f"community-{c}"
        group = orm.Group.find(db, slug) or orm.Group(name=slug)
        db.add(group)
        for m in range(MEMBERS):
            name = f"m{c}-{m}"
            user = orm.User(name=name)
            atoms = [["provider", "demo"], ["username", name], ["group", slug]]
            state = {"hubext": {"provider": "demo", "subject": name, "atoms": atoms}}
            user.encrypted_auth_state = fernet.encrypt(json.dumps(state).encode())
            db.add(user)
            group.users.append(user)
        db.commit()


def stats(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ms)})"


def timed(session, url: str, rounds: int, **kwargs) -> list[float]:
    session.get(url, timeout=60, **kwargs).raise_for_status()  # warm
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        r = session.get(url, timeout=60, **kwargs)
        samples.append(time.perf_counter() - start)
        r.raise_for_status()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    envs = work / "envs"
    python = make_software_environment(envs, "shared", "py")
    hub = InProcessHub(work, hub_config(work, communities(envs), [])).start()
    try:
        run(hub, python, args)
    finally:
        hub.stop()


def run(hub: InProcessHub, python: str, args) -> None:
    started = time.perf_counter()
    hub.call(add_members, hub)
    admin = hub.add_person(
        Person("admin42", [TARGET], [TARGET]),
        [["provider", "demo"], ["group", TARGET], ["group", f"{TARGET}-admins"]],
    )
    member = hub.add_person(
        Person("member42", [TARGET]), [["provider", "demo"], ["group", TARGET]]
    )
    store = hub.app.authenticator._console.store
    for c in range(COMMUNITIES):
        store.change(
            f"community-{c}",
            0,
            document(python),
            actor="bench",
            actor_kind="user",
            action="settings.replace",
        )
    print(
        f"{COMMUNITIES} communities x {MEMBERS} members "
        f"({COMMUNITIES * MEMBERS} people, {ENVIRONMENTS} environments each) "
        f"set up in {time.perf_counter() - started:.0f} s"
    )
    api = f"{hub.url}/hub/api"
    token = admin.token_session
    rows = [
        ("console API: the community", token, f"{api}/hubext/communities/{TARGET}"),
        (
            "console API: its members",
            token,
            f"{api}/hubext/communities/{TARGET}/members",
        ),
        ("console API: the list", token, f"{api}/hubext/communities"),
        (
            "console API: its audit log",
            token,
            f"{api}/hubext/communities/{TARGET}/audit",
        ),
        (
            "console page (cookie)",
            admin.cookie_session,
            f"{hub.url}/hub/hubext/communities/{TARGET}/",
        ),
        ("peer: JupyterHub GET /api/users", token, f"{api}/users?limit=200"),
        ("peer: JupyterHub GET /api/groups/<slug>", token, f"{api}/groups/{TARGET}"),
    ]
    # the peer lists the same people
    users = token.get(f"{api}/users?limit=200", timeout=60).json()
    listed = users["items"] if isinstance(users, dict) else users
    members = token.get(rows[1][2], timeout=60).json()["members"]
    print(
        f"the admin sees {len(members)} members in the console, "
        f"{len(listed)} users through JupyterHub's API"
    )
    for label, session, url in rows:
        print(f"{label:42s} {stats(timed(session, url, args.rounds))}")

    # a change to the next spawn form that shows it
    form_url = f"{hub.url}/hub/spawn/{member.name}"
    assert "Environment 0" in member.cookie_session.get(form_url, timeout=60).text
    delays, answered = [], []
    # the first change of an environment runs the machine's check of its
    # python (an import of jupyterhub.singleuser, as the servers' user),
    # kept while the environment is unchanged: reported apart
    for i in range(args.changes + 1):
        name = f"Renamed {i}"
        version = store.read(TARGET).version
        start = time.perf_counter()
        r = token.put(
            f"{api}/hubext/communities/{TARGET}/environments/env-0",
            json={
                "version": version,
                "environment": {
                    **document(python)["environments"][0],
                    "display_name": name,
                },
            },
            timeout=60,
        )
        r.raise_for_status()
        answered.append(time.perf_counter() - start)
        while name not in member.cookie_session.get(form_url, timeout=60).text:
            if time.perf_counter() - start > 30:
                raise SystemExit(f"the spawn form did not show {name!r} in 30 s")
        delays.append(time.perf_counter() - start)
    print(
        f"{'the first change (the machine check once)':42s} "
        f"answered in {answered[0] * 1000:.0f} ms, in the form at "
        f"{delays[0] * 1000:.0f} ms"
    )
    print(f"{'a change: the API answered':42s} {stats(answered[1:])}")
    print(f"{'a change to the next spawn form showing it':42s} {stats(delays[1:])}")


if __name__ == "__main__":
    main()
