"""The community console: its page and REST API's latency, and how soon a change
shows in the spawn form; JupyterHub's own pages and API side by side.

The database is built as a hub running hubext leaves it, with
:func:`benchmarks.bench_startup.build_database`: N users (5,000 by default)
with the encrypted ``auth_state`` hubext records, each in 1 to 3 of C
communities (100; their groups), 1 in 50 a community admin (the
``community-admin-<slug>`` role). Every community delegates environments,
sizes and the idle timeout (``self_service``; software environments under
the operator's directory of them, real virtualenvs that can run a
single-user server) and has one stored environment; the measured community
(the first community admin's) has two, and an audit log of 40 rows; all
made through the console's API before the measurements.

One real ``jupyterhub`` process per user count (JupyterHub 6.1,
configurable-http-proxy, SQLite, ``hubext`` with one OpenID Connect
provider, ``hubext-local``, the console registered, the usage ledger on).
Three people sign in through the real OpenID Connect provider
(demo/idp.mjs, with the claims their records were made from): the measured
community's admin, a member of it (no admin), and a hub admin in no
community (``admin_users``); each then sends every request as a browser
does, through the proxy, with the hub's cookies (and, to the API, the XSRF
header the hub's own pages' scripts send).

1. Latency, by the measured community's admin and by the hub admin, of:

   ============  =====================================  ===========================================
   what          console                                peer: JupyterHub's own, same person
   ============  =====================================  ===========================================
   page          ``/hub/hubext/communities/<slug>/``    ``/hub/admin`` (the admin page's HTML)
   community     ``GET /hub/api/hubext/communities/<slug>``  ``GET /hub/api/groups/<slug>``
   members       ``GET .../<slug>/members``             ``GET /hub/api/users?include_stopped_servers=1&offset=0&limit=200``
   environments  ``GET .../<slug>/settings``            (none)
   audit         ``GET .../<slug>/audit``               (none)
   ============  =====================================  ===========================================

   The console has no ``GET .../environments`` (that route takes POST only):
   a community's environments are read from ``GET .../settings``.
   JupyterHub's ``GET /hub/api/users`` has no group filter; the peer of
   ``members`` is the request the admin page makes for its table, with the
   largest page (200): for a community admin, whose scopes are filtered to
   their group, it lists exactly the community's members; for the hub
   admin, the first 200 of all users. ``GET /hub/api/groups/<slug>`` lists
   the group's member names. The admin page's HTML is a shell its script
   fills with that ``/hub/api/users`` request. Requests go round-robin over
   every (person, route, side) in a shuffled order, R rounds (3) of K
   requests each (60), after 5 not counted; reported: p50 and p95 per
   round, their median over the rounds with the range, and the ratio of
   the p95s to the peer's. Aim (issue #22): p95 under 200 ms.

2. From a change to the spawn form that shows it: M times (21) the
   community admin changes an environment through the console's API, in
   turn: ``PUT .../environments/main`` (a new display name);
   ``POST .../environments`` with a new software environment (a directory
   the hub has not checked: the console runs its python once to import
   ``jupyterhub.singleuser``); ``POST .../environments`` with a software
   environment checked before (main's). Before each POST the environment
   added by the previous one is deleted (not timed). Then the member asks
   for ``GET /hub/spawn`` until the form shows the new display name. Timed
   from sending the change to the first form that shows it, and to the
   change's own answer; p50, p95, max per kind. Aim: under 1 s. Also timed:
   a new virtualenv's import check alone (what the POST of a new software
   environment waits for). The peer, the operator's way today (a
   configuration edit and a restart): seconds from the hub process's
   start until the member's spawn form answers, ``--restarts`` times (1).

The machine's load average is printed at the start and end of each user
count.

    python -m benchmarks.bench_console [--users 5000 --users 1000 ...]
        [--communities 100] [--rounds 3] [--requests 60] [--changes 21]
        [--restarts 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_startup import (  # noqa: E402
    ADMIN_EVERY,
    PROVIDER,
    build_database,
    communities_config,
    community_slug,
)
from demo.services import DemoEnvironment, stop_process  # noqa: E402
from hubext.software_environments import IMPORT_CHECK  # noqa: E402
from tests.console_kit import SIZES  # noqa: E402
from tests.delegated_kit import make_environment  # noqa: E402
from tests.hubclient import HubSession  # noqa: E402

HUB_ADMIN = f"hubadmin@{PROVIDER}"
#: Rows of the measured community's audit log before the measurements.
AUDIT_ROWS = 40
#: Requests per (person, route) before each user count's rounds, not counted.
WARMUP = 5
API = "/hub/api/hubext/communities"
PERSONS = ("community admin", "hub admin")
ROUTES = ("page", "community", "members", "environments", "audit")


def bounds(envs: Path) -> dict:
    """A community's ``self_service``: software environments under the
    operator's directory of them."""
    return {
        "environments": {"software_roots": [str(envs)], "max_profiles": 5},
        "sizes": SIZES,
        "idle_timeout": {"min": 900, "max": 28800},
    }


def groups_of(path: Path, name: str) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [
            g
            for (g,) in con.execute(
                "SELECT g.name FROM groups g JOIN user_group_map m ON m.group_id = g.id "
                "JOIN users u ON u.id = m.user_id WHERE u.name = ? ORDER BY g.name",
                (name,),
            )
        ]
    finally:
        con.close()


def measured_people(path: Path) -> tuple[str, str, str, int]:
    """The measured community (the first community admin's), its admin, a
    member who is no admin, and its member count."""
    con = sqlite3.connect(path)
    try:
        admin, slug = con.execute(
            "SELECT u.name, substr(r.name, length('community-admin-') + 1) "
            "FROM users u JOIN user_role_map m ON m.user_id = u.id "
            "JOIN roles r ON r.id = m.role_id "
            "WHERE r.name LIKE 'community-admin-%' ORDER BY u.id LIMIT 1"
        ).fetchone()
        members = [
            name
            for (name,) in con.execute(
                "SELECT u.name FROM users u JOIN user_group_map m ON m.user_id = u.id "
                "JOIN groups g ON g.id = m.group_id WHERE g.name = ? ORDER BY u.id",
                (slug,),
            )
        ]
        admins = {
            name
            for (name,) in con.execute(
                "SELECT u.name FROM users u JOIN user_role_map m ON m.user_id = u.id "
                "JOIN roles r ON r.id = m.role_id WHERE r.name = ?",
                (f"community-admin-{slug}",),
            )
        }
    finally:
        con.close()
    member = next(m for m in members if m not in admins)
    return slug, admin, member, len(members)


def accounts(path: Path, names: dict[str, str], slug: str) -> dict:
    """The provider's accounts of the people who sign in, with the claims
    the database's records were made from (account id: the recorded
    subject)."""
    found = {}
    for person, name in names.items():
        username = name.removesuffix(f"@{PROVIDER}")
        groups = groups_of(path, name)
        if person == "community admin":
            groups.append(f"{slug}-admins")
        subject = "sub-" + username.removeprefix("user")
        found[person] = (subject, username, groups)
    return found


def hub_config(env: DemoEnvironment) -> str:
    workdir = env.data_dir
    proxy = str(REPO / "node_modules" / ".bin" / "configurable-http-proxy")
    return f"""
import json
from hubext.console import register_console

c.JupyterHub.bind_url = "{env.hub_url}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{env.hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{env.proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.log_level = "INFO"
c.JupyterHub.authenticator_class = "hubext"
c.CommunityAuthenticator.providers = {{
    {PROVIDER!r}: {{
        "kind": "oidc",
        "config": {{
            "client_id": "hubext-demo",
            "client_secret": {env.client_secret!r},
            "authorize_url": "{env.idp_url}/auth",
            "token_url": "{env.idp_url}/token",
            "userdata_url": "{env.idp_url}/me",
            "username_claim": "preferred_username",
            "scope": ["openid", "email", "profile", "groups"],
        }},
    }},
}}
c.CommunityAuthenticator.admin_users = {{{HUB_ADMIN!r}}}
c.JupyterHub.spawner_class = "hubext-local"
c.LocalCommunitySpawner.home_root = "{workdir}/homes"
c.LocalCommunitySpawner.profile_list = [
    {{"display_name": "Default", "slug": "default", "default": True}},
]
c.Communities.communities = json.loads(open("{workdir}/communities.json").read())
register_console(c)
"""


class Hub:
    """The hub of one user count: its directory, process and people's sessions."""

    def __init__(self, workdir: Path, template: Path, args, key: str):
        self.env = DemoEnvironment.with_free_ports(workdir)
        self.env.crypt_key = key
        self.url = self.env.hub_url
        workdir.mkdir(parents=True)
        shutil.copy(template, workdir / "jupyterhub.sqlite")
        self.slug, admin, member, self.size = measured_people(template)
        self.names = {
            "community admin": admin,
            "hub admin": HUB_ADMIN,
            "member": member,
        }
        self.accounts = accounts(template, self.names, self.slug)
        self.sessions: dict[str, HubSession] = {}
        self.envs = workdir / "envs"
        communities = communities_config(args.communities)
        for slug in communities:
            communities[slug]["self_service"] = bounds(self.envs)
        (self.envs / self.slug).mkdir(parents=True)
        (workdir / "communities.json").write_text(json.dumps(communities))
        self.config = workdir / "jupyterhub_config.py"
        self.config.write_text(hub_config(self.env))
        self.log = workdir / "hub.log"
        self.process = None
        self.idp = None

    def start_idp(self) -> None:
        """The provider, with the people's accounts (kept running: the hub
        refreshes their sign-ins with it)."""
        claims = {
            subject: {
                "preferred_username": username,
                "name": username,
                "email": f"{username}@dept0.uni.example.edu",
                "email_verified": True,
                "groups": groups,
            }
            for subject, username, groups in self.accounts.values()
        }
        path = self.env.data_dir / "accounts.json"
        path.write_text(json.dumps(claims))
        with open(self.env.data_dir / "idp.log", "ab") as log:
            self.idp = self.env.start_idp(
                path,
                stdout=log,
                redirect_uris=(f"{self.url}/hub/{PROVIDER}/oauth_callback",),
                keep_state=False,
            )

    def sign_in(self) -> None:
        """Each person signs in through the provider (a browser's session)."""
        for person, (subject, _, _) in self.accounts.items():
            session = HubSession(self.url)
            r = session.login(PROVIDER, subject)
            if r.status_code != 302 or "refused" in r.headers.get("Location", ""):
                raise RuntimeError(f"{person}'s sign-in: {r.status_code} {r.headers}")
            self.sessions[person] = session

    def start(self) -> tuple[float, float | None]:
        """Start the hub: seconds to /hub/health and to the member's spawn form
        (None before the member signed in)."""
        t0 = time.perf_counter()
        with open(self.log, "ab") as log:
            self.process = self.env.start_hub(self.config, stdout=log, wait=False)
        health = self._wait(lambda: requests.get(f"{self.url}/hub/health", timeout=5))
        form = None
        if "member" in self.sessions:
            form = self._wait(lambda: self.get("member", "/hub/spawn")) - t0
        return health - t0, form

    def _wait(self, request) -> float:
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited; see {self.log}")
            try:
                if request().status_code == 200:
                    return time.perf_counter()
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"the hub did not answer; see {self.log}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=60)
            self.process = None

    def stop_idp(self) -> None:
        if self.idp is not None:
            stop_process(self.idp, timeout=5)
            self.idp = None

    def get(self, person: str, path: str) -> requests.Response:
        """A GET with the person's cookies (and the XSRF token, as the hub's
        own pages' scripts send it)."""
        session = self.sessions[person]
        return session.session.get(
            self.url + path,
            headers=session.xsrf_headers(),
            timeout=120,
            allow_redirects=False,
        )

    def change(self, method: str, path: str, body: dict | None = None):
        session = self.sessions["community admin"]
        r = session.session.request(
            method,
            self.url + path,
            json=body,
            headers=session.xsrf_headers(),
            timeout=120,
        )
        if r.status_code not in (200, 201, 204):
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r

    def version(self, slug: str) -> int:
        r = self.get("hub admin", f"{API}/{slug}/settings")
        r.raise_for_status()
        return r.json()["version"]

    def environment(self, name: str, display_name: str, directory: str) -> dict:
        """An environment entry, its software environment ``directory`` (under
        the software root) made if it is not there."""
        where = self.envs / directory
        if not (where / "bin" / "python").exists():
            make_environment(where)
        return {
            "slug": name,
            "display_name": display_name,
            "software_environment": str(where),
            "sizes": ["small", "large"],
            "default_size": "small",
        }

    def seed(self, n_communities: int) -> None:
        """One environment stored in every community (by the hub admin), and
        the measured one's two environments and audit log (by its admin)."""
        hub_admin = self.sessions["hub admin"]
        headers = hub_admin.xsrf_headers()
        for k in range(n_communities):
            slug = community_slug(k)
            if slug == self.slug:
                continue
            body = {"version": self.version(slug)}
            body["environment"] = self.environment("py", f"{slug} Python", "shared")
            r = hub_admin.session.post(
                f"{self.url}{API}/{slug}/environments", json=body, headers=headers
            )
            if r.status_code != 201:
                raise RuntimeError(f"seeding {slug}: {r.status_code} {r.text[:500]}")
        slug = self.slug
        version = self.version(slug)
        for name in ("main", "extra-0"):
            entry = self.environment(name, f"{name} (seeded)", f"{slug}/{name}")
            body = {"version": version, "environment": entry}
            r = self.change("POST", f"{API}/{slug}/environments", body)
            version = r.json()["settings"]["version"]
        for i in range(AUDIT_ROWS - 2):
            body = {"version": version, "idle_timeout": 900 + 60 * i}
            r = self.change("PUT", f"{API}/{slug}/idle-timeout", body)
            version = r.json()["settings"]["version"]

    def routes(self, person: str) -> dict[str, tuple[str, str | None]]:
        """route: (the console's path, the peer's path or None)."""
        slug = self.slug
        return {
            "page": (f"/hub/hubext/communities/{slug}/", "/hub/admin"),
            "community": (f"{API}/{slug}", f"/hub/api/groups/{slug}"),
            "members": (
                f"{API}/{slug}/members",
                "/hub/api/users?include_stopped_servers=1&offset=0&limit=200",
            ),
            "environments": (f"{API}/{slug}/settings", None),
            "audit": (f"{API}/{slug}/audit", None),
        }

    def check_routes(self) -> list[str]:
        """Every measured request answers 200 with what it should; notes."""
        notes = []
        for person in PERSONS:
            for route, (console, peer) in self.routes(person).items():
                for path in (console, peer):
                    if path is None:
                        continue
                    r = self.get(person, path)
                    if r.status_code != 200:
                        raise RuntimeError(
                            f"{person} GET {path}: {r.status_code} {r.text[:300]}"
                        )
                    if route == "members" and path == console:
                        n = len(r.json()["members"])
                        notes.append(f"{person}: console members lists {n}")
                    elif route == "members":
                        n = len(r.json())
                        notes.append(f"{person}: /hub/api/users lists {n}")
                    elif route == "community" and path == peer:
                        n = len(r.json()["users"])
                        notes.append(f"{person}: /hub/api/groups lists {n}")
                    elif route == "audit":
                        n = len(r.json()["rows"])
                        notes.append(f"{person}: audit lists {n} rows")
        # the measured community's admin reads no other community
        other = community_slug(1 if self.slug == community_slug(0) else 0)
        r = self.get("community admin", f"{API}/{other}")
        assert r.status_code == 404, (other, r.status_code)
        return notes


def latencies(hub: Hub, rounds: int, count: int) -> dict:
    """(person, route, side) -> per round, the request times (ms)."""
    jobs = []
    for person in PERSONS:
        for route, (console, peer) in hub.routes(person).items():
            jobs.append((person, route, "console", console))
            if peer is not None:
                jobs.append((person, route, "peer", peer))
    rng = random.Random(0)
    for _ in range(WARMUP):
        for person, _route, _side, path in jobs:
            hub.get(person, path).raise_for_status()
    times: dict = {}
    for _ in range(rounds):
        this = {(p, r, s): [] for p, r, s, _ in jobs}
        for _ in range(count):
            rng.shuffle(jobs)
            for person, route, side, path in jobs:
                t = time.perf_counter()
                r = hub.get(person, path)
                elapsed = (time.perf_counter() - t) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"{person} GET {path}: {r.status_code}")
                this[(person, route, side)].append(elapsed)
        for key, values in this.items():
            times.setdefault(key, []).append(values)
    return times


#: The kinds of change timed, in turn.
KINDS = (
    "PUT: a new display name",
    "POST: a new software environment",
    "POST: a checked software environment",
)


def changes_to_form(hub: Hub, count: int) -> list[tuple[str, float, float, int]]:
    """Per change: its kind, seconds to the change's answer and to the first
    spawn form showing it, and the forms asked for until then."""
    slug = hub.slug
    version = hub.version(slug)
    extra = "extra-0"
    results = []
    for k in range(count):
        kind = KINDS[k % len(KINDS)]
        marker = f"Bench change {k} {secrets.token_hex(4)}"
        if kind.startswith("PUT"):
            method, path = "PUT", f"{API}/{slug}/environments/main"
            entry = hub.environment("main", marker, f"{slug}/main")
        else:
            path = f"{API}/{slug}/environments/{extra}"
            r = hub.change("DELETE", path, {"version": version})
            version = r.json()["settings"]["version"]
            extra = f"extra-{k + 1}"
            method, path = "POST", f"{API}/{slug}/environments"
            # a new directory (its python not run by the hub yet), or main's
            directory = f"{slug}/{extra}" if "new" in kind else f"{slug}/main"
            entry = hub.environment(extra, marker, directory)
        body = {"version": version, "environment": entry}
        t0 = time.perf_counter()
        r = hub.change(method, path, body)
        answered = time.perf_counter() - t0
        version = r.json()["settings"]["version"]
        forms = 0
        while True:
            forms += 1
            page = hub.get("member", "/hub/spawn")
            if page.status_code == 200 and marker in page.text:
                shown = time.perf_counter() - t0
                break
            if time.perf_counter() - t0 > 60:
                raise TimeoutError(f"change {k} not in the spawn form after 60 s")
        results.append((kind, answered, shown, forms))
        print(
            f"    change {k + 1:2d} {kind:<38} answered {answered * 1000:6.0f} ms, "
            f"in the form {shown * 1000:6.0f} ms ({forms} form{'s' * (forms > 1)})",
            flush=True,
        )
        time.sleep(random.uniform(0.2, 0.6))
    return results


def import_check_seconds(hub: Hub, count: int = 3) -> list[float]:
    """What the console runs for a software environment it has not checked
    yet (:func:`hubext.software_environments.machine_problem`): its python
    importing ``jupyterhub.singleuser``, timed on new environments."""
    times = []
    for k in range(count):
        where = hub.envs / "import-check" / f"e{k}"
        make_environment(where)
        t = time.perf_counter()
        subprocess.run(
            [str(where / "bin" / "python"), "-I", "-c", IMPORT_CHECK],
            check=True,
            cwd="/",
            env={"PATH": f"{where}/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
        times.append(time.perf_counter() - t)
    return times


def run_point(args, users: int, workdir: Path) -> dict:
    load_start = os.getloadavg()
    key = os.urandom(32).hex()
    template = workdir / f"template-{users}.sqlite"
    t = time.perf_counter()
    n_members = build_database(template, users, args.communities, key)
    print(
        f"{users} users: database built in {time.perf_counter() - t:.1f} s "
        f"({n_members} memberships, {users // ADMIN_EVERY} community admins)",
        flush=True,
    )
    hub = Hub(workdir / f"hub-{users}", template, args, key)
    template.unlink()
    restarts = []
    try:
        hub.start_idp()
        health, _ = hub.start()
        print(f"  started: health {health:.1f} s", flush=True)
        hub.sign_in()
        t = time.perf_counter()
        hub.seed(args.communities)
        print(f"  seeded in {time.perf_counter() - t:.1f} s", flush=True)
        notes = hub.check_routes()
        for note in notes:
            print(f"  {note}", flush=True)
        times = latencies(hub, args.rounds, args.requests)
        changes = changes_to_form(hub, args.changes)
        imports = import_check_seconds(hub)
        for _ in range(args.restarts):
            hub.stop()
            restarts.append(hub.start())
            print(
                f"  restart: health {restarts[-1][0]:.1f} s, "
                f"spawn form {restarts[-1][1]:.1f} s",
                flush=True,
            )
    finally:
        hub.stop()
        hub.stop_idp()
    if not args.keep:
        shutil.rmtree(hub.workdir)
    return {
        "users": users,
        "community": (hub.slug, hub.size),
        "times": times,
        "changes": changes,
        "imports": imports,
        "restarts": restarts,
        "notes": notes,
        "load": (load_start, os.getloadavg()),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def per_round(rounds: list[list[float]], q: float) -> str:
    values = [percentile(r, q) for r in rounds]
    return f"{statistics.median(values):.0f} [{min(values):.0f}-{max(values):.0f}]"


def spread(values: list[float]) -> str:
    """p50/p95/max, in seconds."""
    return (
        f"{statistics.median(values):.3f}/{percentile(values, 0.95):.3f}"
        f"/{max(values):.3f}"
    )


def report(point: dict, aim_ms: float = 200.0, aim_s: float = 1.0) -> None:
    (a1, a5, a15), (b1, b5, b15) = point["load"]
    slug, size = point["community"]
    times = point["times"]
    print(
        f"\n{point['users']} users; community {slug} ({size} members); "
        f"load average at start {a1:.2f} {a5:.2f} {a15:.2f}, "
        f"at end {b1:.2f} {b5:.2f} {b15:.2f}"
    )
    print("ms: median over rounds [range]")
    print(
        f"{'person':<16} {'route':<13} {'console p50':>14} {'console p95':>14}"
        f" {'peer p50':>14} {'peer p95':>14} {'p95 ratio':>9}  aim"
    )
    for person in PERSONS:
        for route in ROUTES:
            ours = times[(person, route, "console")]
            peer = times.get((person, route, "peer"))
            ours95 = statistics.median(percentile(r, 0.95) for r in ours)
            row = (
                f"{person:<16} {route:<13} {per_round(ours, 0.5):>14}"
                f" {per_round(ours, 0.95):>14}"
            )
            if peer is not None:
                peer95 = statistics.median(percentile(r, 0.95) for r in peer)
                row += (
                    f" {per_round(peer, 0.5):>14} {per_round(peer, 0.95):>14}"
                    f" {ours95 / peer95:>9.2f}"
                )
            else:
                row += f" {'-':>14} {'-':>14} {'-':>9}"
            worst = max(percentile(r, 0.95) for r in ours)
            row += "  met" if worst < aim_ms else "  NOT met"
            print(row)
    changes = point["changes"]
    print(f"\nchange -> spawn form showing it ({len(changes)} changes), seconds:")
    print(
        f"{'change':<38} {'n':>3} {'answered p50/p95/max':>22}"
        f" {'in the form p50/p95/max':>25} {'form 1st':>8}  aim"
    )
    for kind in (*KINDS, "all"):
        mine = [c for c in changes if kind in (c[0], "all")]
        if not mine:
            continue
        answered = [c[1] for c in mine]
        shown = [c[2] for c in mine]
        first = sum(c[3] == 1 for c in mine)
        print(
            f"{kind:<38} {len(mine):>3} {spread(answered):>22} {spread(shown):>25}"
            f" {first:>4}/{len(mine):<3}  {'met' if max(shown) < aim_s else 'NOT met'}"
        )
    after = [c[2] - c[1] for c in changes]
    print(f"  from the change's answer to the form showing it: {spread(after)}")
    print(
        "  a new software environment's import check, alone: "
        + ", ".join(f"{t:.2f}" for t in point["imports"])
    )
    for health, form in point["restarts"]:
        print(
            f"  peer (config edit + restart): health {health:.1f} s, "
            f"spawn form {form:.1f} s"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users", type=int, action="append", help="user count (repeatable)"
    )
    parser.add_argument("--communities", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--changes", type=int, default=21)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--keep", help="keep the hubs' directories here")
    args = parser.parse_args()
    counts = args.users or [5000]

    points = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for users in counts:
            points.append(run_point(args, users, workdir))
            report(points[-1])


if __name__ == "__main__":
    main()
