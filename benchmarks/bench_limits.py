"""Community limits: the cost of a decision, and 200 concurrent starts on a real hub.

**Decision** (``--part decision``): a ledger holds a year of history ending
now (5,000 users, about 2 million sessions, filled the way
``benchmarks/bench_usage_report.py`` fills it), SQLite in a temporary file
and, with ``--postgresql``, a throwaway PostgreSQL server started like the
tests' (``tests/usage_pg.py``). One decision is what the hub does before a
start: :meth:`HubLimits.budget_use` (the community's and the member's usage
in the budget's window) then :meth:`HubLimits.reserve` (the pure
:func:`~hubext.limits.decide` next to the servers held, and the hold), for a
community with ``max_servers``, ``max_servers_per_member``, ``max_cpu`` and a
budget of CPU- and GiB-hours for the pool and per member; 400 servers are
held hub-wide. Measured: the first decision of a community after the hub
starts (it waits for a read of the ledger, in a thread: the loop is free
meanwhile) apart, then ``--decisions`` decisions by random members, cached
(the default 60 s refresh) and while the ledger is re-read in the background
every 0.2 s. Budgets per calendar month and per rolling 7 days.

Side by side: 2i2c's jupyterhub-usage-quotas (``--peer``, its wheel from
``pip download jupyterhub-usage-quotas``), which decides in a
``pre_spawn_hook`` by querying Prometheus for the member's usage in a
rolling window of days. Its own ``UsageQuotaManager.enforce`` is run (two
f-strings re-quoted so that Python 3.11 compiles them; nothing else
changed), against a real Prometheus (Debian's ``prometheus`` 2.42) into
which the same sessions of the last 7 days are backfilled (``promtool tsdb
create-blocks-from openmetrics``) as kube-state-metrics would have exported
them: ``kube_pod_container_resource_requests`` (cpu, memory) and
``kube_pod_annotations`` with ``hub.jupyter.org/username``, one sample a
minute per session (its ``prometheus_scrape_interval`` default, 60 s), pod
``jupyter-<user>``, one ``uid`` per session. Its policies: CPU and memory
over 7 days for the community's group. Prometheus's range subquery cannot
be cached by the peer: every decision asks again.

**Hub** (``--part hub``): two real hubs (the demo configuration, JupyterHub +
configurable-http-proxy + the OIDC provider) with the same ledger (the year
of history, its community-0 renamed ocean-lab), whose spawner is hubext-local
with the process start replaced by one tiny HTTP server of this benchmark
(every hubext hook runs: options, limits, usage). Limits off: no ``limits``
key. Limits on: Ocean Lab has every limit, none reached (max_servers 1000,
a budget of CPU-hours and server-hours for the pool and per member, read
from the ledger). Each round: 200 named servers of one member started at
once through the REST API (50 client threads), until all answered and all
ready, then all stopped; rounds alternate between the hubs. Measured: wall
time to all answered and to all ready, and the hub's CPU time (its main
thread: the event loop; and the whole process) over the round's starts.

    apt-get install prometheus   # for --peer
    .venv/bin/python benchmarks/bench_limits.py [--part decision|peer|hub|all] \\
        [--sessions 2000000] [--postgresql] [--peer] [--rounds 5]
    .venv/bin/python benchmarks/bench_limits.py --part peer   # the peer alone

The aim (issue 12): a decision's p99 under 5 ms with a year of history.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import glob
import http.server
import importlib.util
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import bench_usage_report  # noqa: E402
from demo.services import free_port, stop_process  # noqa: E402
from hubext.limits import Demand, parse_limits  # noqa: E402
from hubext.spawners.limits import DEFAULT_PATH, HubLimits  # noqa: E402
from hubext.usage.query import aggregate_report  # noqa: E402
from hubext.usage.store import make_engine  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GIB = 2**30
COMMUNITY = "community-3"
USERS = 5_000
HELD = 400
#: the year of history ends now (Prometheus answers the peer's query at now)
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
PEER_DAYS = 7

LIMITS = {
    "max_servers": 1000,
    "max_servers_per_member": 5,
    "max_cpu": 100_000,
    "budget": {
        "cpu_hours": 1e9,
        "gib_hours": 1e9,
        "per_member": {"cpu_hours": 1e9, "gib_hours": 1e9},
    },
}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.3f}"


# -- the ledger ----------------------------------------------------------------------


def fill_ledger(url: str, n: int) -> float:
    """A year of ``n`` sessions ending now (bench_usage_report's rows)."""
    bench_usage_report.YEAR = NOW - timedelta(days=365)  # its rows start there
    engine = make_engine(url)
    took = bench_usage_report.fill(engine, n)
    engine.dispose()
    return took


def window_rows(url: str, days: int):
    """The SQLite ledger's sessions overlapping the last ``days`` days."""
    since = NOW - timedelta(days=days)
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        rows = db.execute(
            "SELECT id, username, cpu_request, mem_request, started_at, "
            "COALESCE(stopped_at, last_seen_at) FROM hubext_usage_sessions "
            "WHERE COALESCE(stopped_at, last_seen_at) > ? ORDER BY id",
            (since.replace(tzinfo=None).isoformat(sep=" "),),
        ).fetchall()
    finally:
        db.close()
    return rows


# -- ours: HubLimits -----------------------------------------------------------------


def held_servers(tracker: HubLimits, rng: random.Random) -> None:
    communities = [f"community-{i}" for i in range(20)]
    for i in range(HELD):
        community = communities[i % len(communities)]
        demand = Demand(
            community=community,
            user=f"user{rng.randrange(USERS)}",
            cpu=rng.choice([0.5, 1.0, 2.0]),
            memory=rng.choice([1, 2, 4]) * GIB,
        )
        tracker.track((f"held-{i}", ""), demand, NOW - timedelta(minutes=30))


async def decisions(url: str, period, count: int, refresh: float) -> dict:
    limits = parse_limits(
        {**LIMITS, "budget": {**LIMITS["budget"], "period": period}}, DEFAULT_PATH
    )
    tracker = HubLimits(url, refresh_interval=refresh, clock=lambda: NOW)
    rng = random.Random(7)
    held_servers(tracker, rng)

    async def one(user: str) -> tuple[float, float]:
        t, c = time.perf_counter(), time.thread_time()
        used = await tracker.budget_use(COMMUNITY, user, limits.budget)
        demand = Demand(community=COMMUNITY, user=user, cpu=1.0, memory=2 * GIB)
        refusal = tracker.reserve(
            (user, "bench"), demand, limits, name="Community 3", used=used, now=NOW
        )
        took = time.perf_counter() - t, time.thread_time() - c
        assert refusal is None, refusal
        tracker.release((user, "bench"))
        return took

    first = await one(f"user{rng.randrange(USERS)}")
    times = []
    for _ in range(count):
        times.append(await one(f"user{rng.randrange(USERS)}"))
        if refresh < 1:
            await asyncio.sleep(0)  # let a finished background read be stored
    reads = tracker._readings[(COMMUNITY, limits.budget.days)]
    tracker._engine.dispose()
    return {
        "first": first[0],
        "times": [wall for wall, _ in times],
        "cpu": [cpu for _, cpu in times],
        "members": len(reads.hours) // 4 - 1,
    }


def run_ours(name: str, url: str, count: int) -> list[tuple[str, dict]]:
    results = []
    for period, words in (("month", "calendar month"), ({"days": PEER_DAYS}, "7 days")):
        for refresh, how in ((60.0, "cached"), (0.2, "re-read every 0.2 s")):
            r = asyncio.run(decisions(url, period, count, refresh))
            label = f"hubext, {name}, {words}, {how}"
            results.append((label, r))
            print(
                f"{label:52} first {ms(r['first']):>9} ms   p50 "
                f"{ms(pct(r['times'], 50)):>7} ms   p99 {ms(pct(r['times'], 99)):>7} ms"
                f"   max {ms(max(r['times'])):>7} ms   CPU p99 {ms(pct(r['cpu'], 99)):>7} ms"
                f"   ({len(r['times'])} decisions, {r['members']} members in the window)",
                flush=True,
            )
    return results


# -- the peer: jupyterhub-usage-quotas against Prometheus ----------------------------


def peer_wheel(tmp: Path, given: str | None) -> Path:
    if given:
        return Path(given)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp),
         "jupyterhub-usage-quotas"],
        check=True,
    )  # fmt: skip
    return Path(glob.glob(str(tmp / "jupyterhub_usage_quotas-*.whl"))[0])


def load_peer(wheel: Path, tmp: Path):
    """The peer's manager module, from its wheel, compiled by this Python."""
    shutil.unpack_archive(wheel, tmp / "peer", format="zip")
    package = tmp / "peer" / "jupyterhub_usage_quotas"
    # its package __init__ starts a metrics exporter: load the modules alone
    module = types.ModuleType("jupyterhub_usage_quotas")
    module.__path__ = [str(package)]
    sys.modules["jupyterhub_usage_quotas"] = module
    for name in ("schemas", "common", "manager"):
        source = (package / f"{name}.py").read_text()
        # Python < 3.12: the same quote inside an f-string's replacement field
        source = re.sub(r'\{(\w+)\["(\w+)"\]\}', r"{\1['\2']}", source)
        spec = importlib.util.spec_from_loader(f"jupyterhub_usage_quotas.{name}", None)
        mod = importlib.util.module_from_spec(spec)
        mod.__file__ = str(package / f"{name}.py")
        sys.modules[spec.name] = mod
        exec(compile(source, mod.__file__, "exec"), mod.__dict__)
    return sys.modules["jupyterhub_usage_quotas.manager"]


def write_openmetrics(rows, path: Path) -> int:
    """kube-state-metrics' series for ``rows``, one sample a minute each."""
    from kubespawner.slugs import safe_slug

    since = (NOW - timedelta(days=PEER_DAYS + 1)).timestamp()
    end = NOW.timestamp()
    samples = 0
    families = (
        ("kube_pod_container_resource_requests", "cpu"),
        ("kube_pod_container_resource_requests", "memory"),
        ("kube_pod_annotations", None),
    )
    with open(path, "w") as out:
        done_types = set()
        for family, resource in families:
            if family not in done_types:
                out.write(f"# TYPE {family} gauge\n")
                done_types.add(family)
            for sid, user, cpu, mem, started, stopped in rows:
                pod = f"jupyter-{safe_slug(user, max_length=48)}"
                base = f'namespace="hub",pod="{pod}",uid="{sid[-12:]}"'
                if resource is None:
                    labels = f"{base},annotation_hub_jupyter_org_username={user!r}"
                    value = "1"
                else:
                    labels = (
                        f'{base},container="notebook",node="node-1",'
                        f'resource="{resource}",unit="{"core" if resource == "cpu" else "byte"}"'
                    )
                    value = repr(float(cpu)) if resource == "cpu" else str(int(mem))
                labels = labels.replace("'", '"')
                t0 = datetime.fromisoformat(started).replace(tzinfo=UTC).timestamp()
                t1 = datetime.fromisoformat(stopped).replace(tzinfo=UTC).timestamp()
                t = max(since, 60 * -(-t0 // 60))
                lines = []
                while t <= min(t1, end):
                    lines.append(f"{family}{{{labels}}} {value} {int(t)}\n")
                    t += 60
                out.writelines(lines)
                samples += len(lines)
        out.write("# EOF\n")
    return samples


class Prometheus:
    def __init__(self, tmp: Path):
        self.dir = tmp / "prometheus"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def backfill(self, openmetrics: Path) -> float:
        t = time.perf_counter()
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
             "--max-block-duration=480h", str(openmetrics), str(self.dir / "data")],
            check=True,
        )  # fmt: skip
        return time.perf_counter() - t

    def start(self) -> None:
        config = self.dir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n")
        self.log = open(self.dir / "prometheus.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={self.dir / 'data'}",
             "--storage.tsdb.retention.time=3650d",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"Prometheus did not start: {self.dir / 'prometheus.log'}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=20)
            self.log.close()


async def peer_decisions(manager_module, prometheus_url: str, count: int) -> dict:
    from traitlets.config import Config

    config = Config()
    config.UsageQuotaManager.prometheus_url = prometheus_url
    config.UsageQuotaManager.hub_namespace = "hub"
    config.UsageQuotaManager.policy = [
        {"resource": resource, "limit": limit, "window": PEER_DAYS,
         "scope": {"group": [COMMUNITY]}}
        for resource, limit in (("cpu", 10**9), ("memory", "1000000G"))
    ]  # fmt: skip
    manager = manager_module.UsageQuotaManager(config=config)
    rng = random.Random(7)
    times, used = [], []
    try:
        for _ in range(count + 1):
            user = f"user{rng.randrange(USERS)}"
            t = time.perf_counter()
            output = await manager.enforce(user, [COMMUNITY])
            times.append(time.perf_counter() - t)
            assert output["allow_server_launch"] is True, output
            used.append((user, output["quota"]["used"]))
    finally:
        await manager.prometheus_client.close()
    return {"first": times[0], "times": times[1:], "used": used}


def run_peer(args, tmp: Path, sqlite_url: str) -> None:
    manager_module = load_peer(peer_wheel(tmp, args.peer_wheel), tmp)
    rows = window_rows(sqlite_url, PEER_DAYS + 1)
    openmetrics = tmp / "sessions.om"
    t = time.perf_counter()
    samples = write_openmetrics(rows, openmetrics)
    written = time.perf_counter() - t
    prometheus = Prometheus(tmp)
    took = prometheus.backfill(openmetrics)
    openmetrics.unlink()
    print(
        f"peer data: {len(rows):,} sessions of the last {PEER_DAYS + 1} days, "
        f"{samples:,} samples (written in {written:.0f} s, backfilled in {took:.0f} s)",
        flush=True,
    )
    prometheus.start()
    try:
        r = asyncio.run(
            peer_decisions(manager_module, prometheus.url, args.peer_decisions)
        )
    finally:
        prometheus.stop()
    label = f"jupyterhub-usage-quotas, Prometheus, {PEER_DAYS} days"
    print(
        f"{label:52} first {ms(r['first']):>9} ms   p50 "
        f"{ms(pct(r['times'], 50)):>7} ms   p99 {ms(pct(r['times'], 99)):>7} ms"
        f"   max {ms(max(r['times'])):>7} ms   ({len(r['times'])} decisions)",
        flush=True,
    )
    # what it counted vs the ledger: the member's GiB-hours in the window
    engine = make_engine(sqlite_url)
    ledger = aggregate_report(
        engine,
        start=NOW - timedelta(days=PEER_DAYS),
        end=NOW,
        now=NOW,
        by="user",
        # the series above end at a session's last heartbeat (the synthetic
        # year leaves 0.1 % of its sessions open for months)
        open_until="last-seen",
    ).rows
    engine.dispose()
    over = [
        (user, peer, ledger[user].gib_hours if user in ledger else 0.0)
        for user, peer in r["used"]
    ]
    names = [f"user{i}" for i in range(USERS)]
    # the peer's pod regex is a prefix match: user395 is charged for user3950..
    prefix = {u for u, _, _ in over if any(n != u and n.startswith(u) for n in names)}
    much = [(u, p, x) for u, p, x in over if p > 1.5 * x + 1]
    exact = sorted(p / x for u, p, x in over if u not in prefix and x > 0)
    print(
        f"peer's GiB-hours vs the ledger's, {len(over)} decisions: {len(much)} "
        f"members charged over 1.5 times their use, "
        f"{sum(1 for m in much if m[0] in prefix)} "
        f"of them with a name that prefixes others' ({len(prefix)} such members asked)"
        + "".join(f"; {u}: {p:.1f} vs {x:.1f}" for u, p, x in much[:4])
        + f"; the others: peer / ledger median {statistics.median(exact):.3f}, "
        f"range {exact[0]:.3f}-{exact[-1]:.3f}",
        flush=True,
    )
    return r


# -- a real hub: 200 concurrent starts, limits on vs off -----------------------------

HUB_CONFIG = """
from jupyterhub.spawner import LocalProcessSpawner
from hubext.spawners.local import LocalCommunitySpawner


class NoProcess(LocalProcessSpawner):
    # the server is the benchmark's one HTTP server: no process started
    _up = False

    async def start(self):
        self._up = True
        return {target!r}

    async def poll(self):
        return None if self._up else 0

    async def stop(self, now=False):
        self._up = False

    def get_state(self):
        return {{**super().get_state(), "up": self._up}}

    def load_state(self, state):
        super().load_state(state)
        self._up = bool(state.get("up"))


class BenchSpawner(LocalCommunitySpawner, NoProcess):
    pass


c.JupyterHub.spawner_class = BenchSpawner
c.JupyterHub.log_level = "WARN"
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 0
c.UsageLedger.db_url = {ledger!r}
"""

LIMITS_ON = """
c.Communities.communities["ocean-lab"]["limits"] = {
    "max_servers": 1000,
    "max_servers_per_member": 1000,
    "max_cpu": 100000,
    "budget": {
        "server_hours": 1e9,
        "cpu_hours": 1e9,
        "per_member": {"server_hours": 1e9, "cpu_hours": 1e9},
    },
}
"""


class Target(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def thread_cpu(pid: int, tid: int | None = None) -> float:
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def hub_ledger(tmp: Path, sqlite_url: str) -> str:
    """A copy of the year's ledger, community-0 renamed ocean-lab, user0 alice."""
    path = tmp / "hub-ledger.sqlite"
    src = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    dst = sqlite3.connect(path)
    src.backup(dst)
    src.close()
    dst.execute(
        "UPDATE hubext_usage_sessions SET community='ocean-lab' "
        "WHERE community='community-0'"
    )
    dst.execute(
        "UPDATE hubext_usage_sessions SET username='alice' WHERE username='user0'"
    )
    dst.commit()
    dst.close()
    return f"sqlite:///{path}"


def one_round(hub, token: str, servers: int) -> dict:
    pid = hub.hub.pid
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    url = f"{hub.url}/hub/api/users/alice/servers"

    def start(i: int) -> int:
        return session.post(
            f"{url}/s{i}", json={"profile": "ocean-model"}, timeout=300
        ).status_code

    loop0, all0 = thread_cpu(pid, pid), thread_cpu(pid)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(start, range(servers)))
    answered = time.perf_counter() - t0
    assert all(s in (201, 202) for s in statuses), sorted(set(statuses))
    while True:
        got = hub.api.user("alice")["servers"]
        if sum(1 for s in got.values() if s.get("ready")) == servers:
            break
        time.sleep(0.05)
    ready = time.perf_counter() - t0
    loop1, all1 = thread_cpu(pid, pid), thread_cpu(pid)
    for i in range(servers):
        r = hub.api.request("DELETE", f"/users/alice/servers/s{i}")
        assert r.status_code in (202, 204), r.text
    while hub.api.user("alice")["servers"]:
        time.sleep(0.1)
    return {
        "answered": answered,
        "ready": ready,
        "loop_cpu": loop1 - loop0,
        "cpu": all1 - all0,
    }


def run_hubs(args, tmp: Path, sqlite_url: str) -> None:
    from tests.harness import RunningHub

    ledger = hub_ledger(tmp, sqlite_url)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{server.server_address[1]}"
    accounts = tmp / "accounts.json"
    accounts.write_text(
        '{"alice": {"preferred_username": "alice", "groups": ["ocean-lab"]}}'
    )
    hubs = {}
    try:
        for kind, extra in (("limits off", ""), ("limits on", LIMITS_ON)):
            config = HUB_CONFIG.format(target=target, ledger=ledger) + extra
            hub = RunningHub(tmp / kind.replace(" ", "-"), config, accounts=accounts)
            hubs[kind] = hub.start()
            hub.signed_in("alice")
            hub.bench_token = hub.token_for("alice")
            one_round(hub, hub.bench_token, 1)  # warm-up: first budget read
        results = {kind: [] for kind in hubs}
        for _ in range(args.rounds):
            for kind, hub in hubs.items():
                results[kind].append(one_round(hub, hub.bench_token, args.servers))
    finally:
        for hub in hubs.values():
            hub.stop()
        server.shutdown()
    print(
        f"\n{args.rounds} rounds of {args.servers} concurrent starts (REST, 50 client "
        "threads) on a real hub each; median [min-max] over the rounds"
    )
    header = (
        f"{'hub':12} {'all answered s':>20} {'all ready s':>20} "
        f"{'loop CPU s':>20} {'hub CPU s':>20} {'loop ms/start':>14}"
    )
    print(header)
    print("-" * len(header))
    medians = {}
    for kind, rounds in results.items():
        cols = []
        for key in ("answered", "ready", "loop_cpu", "cpu"):
            values = [r[key] for r in rounds]
            medians[(kind, key)] = statistics.median(values)
            cols.append(
                f"{statistics.median(values):6.2f} [{min(values):.2f}-{max(values):.2f}]"
            )
        per_start = medians[(kind, "loop_cpu")] / args.servers * 1000
        print(
            f"{kind:12} " + " ".join(f"{c:>20}" for c in cols) + f" {per_start:14.2f}"
        )
    for key, words in (("answered", "time to all answered"), ("loop_cpu", "loop CPU")):
        ratio = medians[("limits on", key)] / medians[("limits off", key)]
        print(f"limits on / off, {words}: {ratio:.2f}")


# -- main ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=["decision", "peer", "hub", "all"], default="all"
    )
    parser.add_argument("--sessions", type=int, default=2_000_000)
    parser.add_argument("--decisions", type=int, default=5_000)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument(
        "--peer", action="store_true", help="also the peer (Prometheus)"
    )
    parser.add_argument("--peer-decisions", type=int, default=100)
    parser.add_argument(
        "--peer-wheel", help="jupyterhub_usage_quotas wheel (else pip download)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    try:
        sqlite_url = f"sqlite:///{tmp / 'hubext-usage.sqlite'}"
        took = fill_ledger(sqlite_url, args.sessions)
        print(
            f"ledger: {args.sessions:,} sessions of {USERS:,} users over the year to "
            f"{NOW:%Y-%m-%d %H:%M} UTC (SQLite filled in {took:.0f} s); "
            f"decisions for {COMMUNITY}, {HELD} servers held hub-wide",
            flush=True,
        )
        if args.part in ("decision", "all"):
            run_ours("SQLite", sqlite_url, args.decisions)
            if args.postgresql:
                from tests.usage_pg import PostgresServer

                pg = PostgresServer().start()
                try:
                    url = pg.url(pg.create_database())
                    fill_ledger(url, args.sessions)
                    run_ours("PostgreSQL", url, args.decisions)
                finally:
                    pg.destroy()
        if args.part == "peer" or (args.peer and args.part in ("decision", "all")):
            run_peer(args, tmp, sqlite_url)
        if args.part in ("hub", "all"):
            run_hubs(args, tmp, sqlite_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
