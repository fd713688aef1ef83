"""A hub's start-up with many users: hubext vs stock JupyterHub, side by side.

One SQLite database per user count is built as a hub running hubext leaves
it: N users, each with the encrypted ``auth_state`` hubext records at
sign-in (an OpenID Connect provider's tokens and user info, and
``auth_state["hubext"]``: provider, subject, provider username, communities
and the identity's rule atoms), in 1 to 3 of 100 communities (their groups,
which carry the digest of their community's rules), 1 in 50 a community
admin (their community's admin role), every user with the default ``user``
role and a (stopped) default server.

Each hub is a real ``jupyterhub`` process with configurable-http-proxy, on a
fresh copy of that database:

- stock: JupyterHub 6.1 with the dummy authenticator and its default
  spawner;
- hubext: ``hubext`` (one OpenID Connect provider, the 100 communities),
  ``hubext-local``, the usage ledger on (its default).

Timed from the process start to the first 200 of ``/hub/health`` and of
``GET /hub/api/users`` (through the proxy, as a browser or a service sees
it), with the hub process's CPU time until ``/hub/health`` answered, three
ways: ``cold``, the first start on the database; ``restart``, the next
start on it; for hubext also ``changed``, a start after a change of the
communities' rules (one community renamed, one with other member rules),
where every recorded identity is read and matched again (as at the first
start after upgrading to a hubext that records the rules' digests). Stock's
``changed`` counterpart is a further restart. Rounds alternate the hubs;
figures are medians with the range.

Every provider URL points at a local HTTP server that counts requests: a
start must make none. The machine's load average is printed at the start
and end of each user count.

    python -m benchmarks.bench_startup --users 5000 [--users 20000 ...]
        [--rounds 3] [--communities 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo.services import free_port, stop_process  # noqa: E402

PROVIDER = "uni"
ADMIN_EVERY = 50


class CountingIdP(BaseHTTPRequestHandler):
    """Stands for the identity provider: every request is counted, none answered."""

    count = 0
    lock = threading.Lock()

    def _any(self):
        with CountingIdP.lock:
            CountingIdP.count += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _any

    def log_message(self, *args):
        pass


def community_slug(k: int) -> str:
    return f"community-{k:03d}"


def communities_config(n: int, change: bool = False) -> dict:
    """``c.Communities.communities``: community k's members are the provider's
    ``community-k`` group, its admins the ``community-k-admins`` group.

    ``change``: community 0 renamed, community 1's members by email domain.
    """
    communities = {}
    for k in range(n):
        slug = community_slug(k)
        communities[slug] = {
            "display_name": f"Community {k}",
            "members": [{"provider": PROVIDER, "group": slug}],
            "admins": [{"provider": PROVIDER, "group": f"{slug}-admins"}],
        }
    if change:
        communities[f"{community_slug(0)}-renamed"] = communities.pop(community_slug(0))
        communities[community_slug(1)]["members"] = [
            {"provider": PROVIDER, "email_domain": "dept1.uni.example.edu"}
        ]
    return communities


def _token(n: int) -> str:
    return secrets.token_urlsafe(n)


def auth_state(i: int, groups: list[str], domain: str) -> dict:
    """What an OpenID Connect sign-in through hubext stores (OAuthenticator's
    ``build_auth_state_dict``, then hubext's record)."""
    username = f"user{i:06d}"
    subject = f"sub-{i:06d}"
    id_token = ".".join((_token(150), _token(300), _token(190)))
    token_response = {
        "access_token": _token(32),
        "refresh_token": _token(32),
        "id_token": id_token,
        "expires_in": 3600,
        "token_type": "Bearer",
        "scope": "openid email profile groups",
    }
    email = f"{username}@{domain}"
    atoms = {
        ("provider", PROVIDER),
        ("username", username),
        ("email_domain", domain),
        *(("group", g) for g in groups),
    }
    return {
        "access_token": token_response["access_token"],
        "refresh_token": token_response["refresh_token"],
        "id_token": id_token,
        "scope": token_response["scope"].split(),
        "token_response": token_response,
        "oauth_user": {
            "sub": subject,
            "preferred_username": username,
            "email": email,
            "email_verified": True,
            "groups": groups,
        },
        "hubext": {
            "provider": PROVIDER,
            "subject": subject,
            "provider_username": username,
            "member_of": sorted(g for g in groups if not g.endswith("-admins")),
            "admin_of": sorted(
                g.removesuffix("-admins") for g in groups if g.endswith("-admins")
            ),
            "atoms": sorted([k, v] for k, v in atoms),
        },
    }


def build_database(path: Path, users: int, n_communities: int, crypt_key: str):
    """The database sign-ins through hubext leave: users, groups, roles, auth_state."""
    from cryptography.fernet import Fernet
    from jupyterhub import orm, roles
    from sqlalchemy import insert
    from traitlets.config import Config

    from hubext import Communities
    from hubext.reconcile import GROUP_PROPERTY, rules_fingerprint
    from hubext.roles import community_admin_roles

    rng = random.Random(users)
    fernet = Fernet(base64.urlsafe_b64encode(bytes.fromhex(crypt_key)))
    db = orm.new_session_factory(f"sqlite:///{path}")()
    for spec in roles.get_default_roles():
        roles.create_role(db, spec, commit=False)
    config = Config()
    config.Communities.communities = communities_config(n_communities)
    communities = Communities(config=config)
    for spec in community_admin_roles(communities):
        roles.create_role(db, {**spec, "managed_by_auth": True}, commit=False)
    db.commit()
    role_id = {r.name: r.id for r in db.query(orm.Role)}
    group_id = {}
    for k in range(n_communities):
        slug = community_slug(k)
        fingerprint = rules_fingerprint(communities[slug])
        group = orm.Group(
            name=slug, properties={GROUP_PROPERTY: {"rules": fingerprint}}
        )
        db.add(group)
        db.flush()
        group_id[group.name] = group.id

    now = datetime.now(UTC).replace(tzinfo=None)
    user_rows, spawner_rows, member_rows, role_rows = [], [], [], []
    for i in range(users):
        uid = i + 1
        mine = rng.sample(range(n_communities), rng.randint(1, 3))
        groups = [community_slug(k) for k in mine]
        claims = list(groups)
        if i % ADMIN_EVERY == 0:
            claims.append(f"{groups[0]}-admins")
            role_rows.append(
                {
                    "user_id": uid,
                    "role_id": role_id[f"community-admin-{groups[0]}"],
                    "managed_by_auth": True,
                }
            )
        domain = f"dept{rng.randrange(4)}.uni.example.edu"
        state = auth_state(i, claims, domain)
        user_rows.append(
            {
                "id": uid,
                "name": f"user{i:06d}@{PROVIDER}",
                "admin": False,
                "created": now - timedelta(days=rng.randrange(300)),
                "last_activity": now - timedelta(minutes=rng.randrange(100000)),
                "cookie_id": secrets.token_hex(16),
                "encrypted_auth_state": fernet.encrypt(json.dumps(state).encode()),
                "user_info": {},
            }
        )
        spawner_rows.append({"user_id": uid, "name": "", "state": {}})
        member_rows += [{"user_id": uid, "group_id": group_id[g]} for g in groups]
        role_rows.append(
            {"user_id": uid, "role_id": role_id["user"], "managed_by_auth": False}
        )
    db.execute(insert(orm.User), user_rows)
    db.execute(insert(orm.Spawner), spawner_rows)
    db.execute(insert(orm.user_group_map), member_rows)
    db.execute(insert(orm._role_associations["user"]), role_rows)
    db.commit()
    db.close()
    return len(member_rows)


def memberships(path: Path) -> dict[str, int]:
    """Members per group, and holders of community-admin roles, in a database."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        groups = dict(
            con.execute(
                "SELECT g.name, count(m.user_id) FROM groups g "
                "LEFT JOIN user_group_map m ON m.group_id = g.id GROUP BY g.name"
            )
        )
        admins = con.execute(
            "SELECT count(*) FROM user_role_map m JOIN roles r ON r.id = m.role_id "
            "WHERE r.name LIKE 'community-admin-%'"
        ).fetchone()[0]
    finally:
        con.close()
    return {**groups, "(community admins)": admins}


def hub_config(kind: str, workdir: Path, ports, idp_url: str, n: int, token: str):
    port, hub_port, api_port = ports
    common = f"""
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(REPO / "node_modules" / ".bin" / "configurable-http-proxy")!r}]
c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.log_level = "INFO"
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "bench", "scopes": ["list:users", "read:users"], "services": ["bench"]}},
]
"""
    if kind == "stock":
        return (
            common
            + """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
"""
        )
    return (
        common
        + f"""
import json
c.JupyterHub.authenticator_class = "hubext"
c.CommunityAuthenticator.providers = {{
    {PROVIDER!r}: {{
        "kind": "oidc",
        "config": {{
            "client_id": "hub",
            "client_secret": "bench-secret",
            "authorize_url": "{idp_url}/auth",
            "token_url": "{idp_url}/token",
            "userdata_url": "{idp_url}/me",
            "username_claim": "preferred_username",
            "scope": ["openid", "email", "profile", "groups"],
        }},
    }},
}}
c.CommunityAuthenticator.auth_refresh_age = 300
c.JupyterHub.spawner_class = "hubext-local"
c.LocalCommunitySpawner.home_root = "{workdir}/homes"
c.Communities.communities = json.loads(open("{workdir}/communities.json").read())
"""
    )


class Hub:
    """One hub's directory: its configuration and database, started and stopped."""

    def __init__(self, kind, workdir: Path, template: Path, idp_url, args, key):
        self.kind = kind
        self.workdir = workdir
        self.args = args
        self.key = key
        workdir.mkdir(parents=True)
        shutil.copy(template, workdir / "jupyterhub.sqlite")
        self.token = secrets.token_hex(32)
        self.port = free_port()
        ports = (self.port, free_port(), free_port())
        self.config = workdir / "jupyterhub_config.py"
        self.config.write_text(
            hub_config(kind, workdir, ports, idp_url, args.communities, self.token)
        )
        self.communities(change=False)
        if args.keep:  # to start it again by hand
            (workdir / "crypt_key").write_text(key)
        self.log = workdir / "hub.log"
        self.starts = 0

    def communities(self, change: bool) -> None:
        (self.workdir / "communities.json").write_text(
            json.dumps(communities_config(self.args.communities, change))
        )

    def start(self) -> tuple[float, float, float, subprocess.Popen]:
        """Start the hub: seconds to /hub/health, to the first /hub/api/users,
        and the hub process's CPU seconds until /hub/health answered."""
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "JUPYTERHUB_CRYPT_KEY": self.key,
        }
        url = f"http://127.0.0.1:{self.port}/hub"
        t0 = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.config)],
            cwd=self.workdir,
            env=env,
            stdout=open(self.log, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        health = self._wait(f"{url}/health", t0, process)
        cpu = cpu_seconds(process.pid)
        r = requests.get(
            f"{url}/api/users",
            headers={"Authorization": f"token {self.token}"},
            timeout=120,
        )
        r.raise_for_status()
        users = time.perf_counter() - t0
        return health, users, cpu, process

    def _wait(self, url, t0, process) -> float:
        deadline = t0 + 600
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{self.kind} hub exited; see {self.log}")
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    return time.perf_counter() - t0
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise TimeoutError(url)

    def stop(self, process) -> None:
        stop_process(process, timeout=60)

    def reconcile_lines(self, start: int) -> list[str]:
        """hubext's start-up summary line(s) of start number ``start``."""
        text = self.log.read_text(errors="replace")
        part = text.split(f"===== start {start} =====")[-1].split("===== start")[0]
        return [
            line.split("] ", 1)[-1]
            for line in part.splitlines()
            if RECONCILE_LINE.search(line)
        ]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


RECONCILE_LINE = re.compile(r"hubext: start-up: ")


def run_point(args, users: int, workdir: Path, idp_url: str) -> dict:
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
    expected = memberships(template)
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    notes = []
    for rnd in range(args.rounds):
        order = ("stock", "hubext") if rnd % 2 == 0 else ("hubext", "stock")
        for kind in order:
            hub = Hub(
                kind, workdir / f"{users}-{rnd}-{kind}", template, idp_url, args, key
            )
            for phase in ("cold", "restart", "changed"):
                if phase == "changed" and kind == "hubext":
                    hub.communities(change=True)
                health, first_users, cpu, process = hub.start()
                hub.stop(process)
                results.setdefault((kind, phase), []).append((health, first_users, cpu))
                print(
                    f"  round {rnd + 1} {kind:<6} {phase:<8} health {health:6.2f} s, "
                    f"users {first_users:6.2f} s, CPU {cpu:5.2f} s",
                    flush=True,
                )
                if kind == "hubext":
                    lines = hub.reconcile_lines(hub.starts)
                    notes += [f"round {rnd + 1} {phase}: {line}" for line in lines]
                    now = memberships(hub.workdir / "jupyterhub.sqlite")
                    if phase != "changed":
                        assert now == expected, (phase, now, expected)
                    else:  # the renamed community has the same members
                        renamed = f"{community_slug(0)}-renamed"
                        assert now[renamed] == expected[community_slug(0)]
                        assert community_slug(0) not in now
            if not args.keep:
                shutil.rmtree(hub.workdir)
    template.unlink()
    return {
        "users": users,
        "results": results,
        "load": (load_start, os.getloadavg()),
        "notes": notes,
    }


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def report(point: dict) -> None:
    users, results = point["users"], point["results"]
    (a1, a5, a15), (b1, b5, b15) = point["load"]
    print(
        f"\n{users} users; load average at start {a1:.2f} {a5:.2f} {a15:.2f}, "
        f"at end {b1:.2f} {b5:.2f} {b15:.2f}"
    )
    print(
        f"{'start':<9} {'stock health s':>20} {'hubext health s':>20} {'ratio':>6}"
        f" {'stock users s':>20} {'hubext users s':>20} {'ratio':>6}"
        f" {'stock CPU s':>20} {'hubext CPU s':>20} {'ratio':>6}"
    )
    for phase in ("cold", "restart", "changed"):
        stock = results[("stock", phase)]
        ours = results[("hubext", phase)]
        row = [f"{phase:<9}"]
        for i in (0, 1, 2):
            s = [v[i] for v in stock]
            h = [v[i] for v in ours]
            ratio = statistics.median(h) / statistics.median(s)
            row.append(f"{summary(s):>20} {summary(h):>20} {ratio:>6.2f}")
        print(" ".join(row))
    for note in point["notes"]:
        print(f"  {note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users", type=int, action="append", help="user count (repeatable)"
    )
    parser.add_argument("--communities", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", help="keep the hubs' directories here")
    args = parser.parse_args()
    counts = args.users or [5000]

    idp = ThreadingHTTPServer(("127.0.0.1", 0), CountingIdP)
    threading.Thread(target=idp.serve_forever, daemon=True).start()
    idp_url = f"http://127.0.0.1:{idp.server_address[1]}"
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for users in counts:
            points.append(run_point(args, users, workdir, idp_url))
            report(points[-1])
    idp.shutdown()
    print(f"\nidentity-provider requests during all starts: {CountingIdP.count}")
    print("(hubext changed = after a change of its communities; stock: a restart)")


if __name__ == "__main__":
    main()
