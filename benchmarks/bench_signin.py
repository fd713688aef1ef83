"""A sign-in storm: hubext vs GenericOAuthenticator with manage_groups, side by side.

N people (500 by default) sign in within S seconds (60) to each of two real
JupyterHub processes (configurable-http-proxy, SQLite) that run one after the
other in one run, on the same real OpenID Connect provider (demo/idp.mjs,
``oidc-provider``, on 127.0.0.1), with the same accounts' claims:

- hubext: ``CommunityAuthenticator`` with one ``oidc`` provider and C
  communities (1,000), community k's members the provider's ``community-k``
  group, its admins ``community-k-admins``;
- the peer: OAuthenticator 17.4's ``GenericOAuthenticator`` with
  ``manage_groups = True``, ``auth_state_groups_key = "oauth_user.groups"``
  and ``allowed_groups`` the C community slugs.

Both store ``auth_state`` (hubext requires it; the peer's refreshes of
groups need it) and run the same spawner, ``hubext-local``, with the same
small profile list (``allowed_groups`` naming communities), so the spawn
page is the same options form.

Each person is in 1 to 3 communities' groups, 1 in 50 also in one
community's ``-admins`` group. A person's sign-in is the full HTTP flow a
browser makes (tests/hubclient.py ``HubSession.login``: the hub's
``oauth_login``, the provider's authorize endpoint and sign-in form, the
hub's callback: code exchange with PKCE, userinfo, the hub's groups and
roles written) then ``GET /hub/spawn`` (the options form). Recorded per
person: seconds from the first request to the form's 200. People arrive at
a steady rate (N / S per second), or all at once with ``--burst``.

Measured inside each hub: its event loop's lag (a 10 ms timer in the hub,
each firing's lateness recorded). Measured outside: the CPU seconds of the
hub, the proxy, the provider and this client during the storm, and the
machine's load average at the start and end of each storm.

Each round has its own N accounts (new users on both hubs) and each storm a
fresh provider; rounds alternate which hub goes first (hubext first in
round 1), so the machine's noise does not favour one hub. Before the rounds,
W people (30) sign in to each hub at the same rate, not counted: the first
sign-ins after a start fill caches (SQLAlchemy's compiled statements, the
spawner's communities), on both hubs.

    python -m benchmarks.bench_signin [--people 500] [--seconds 60]
        [--communities 1000] [--rounds 2] [--warmup 30] [--burst] [--keep DIR]
        [--profile DIR] [--extra-config FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import difflib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo.services import DemoEnvironment, stop_process  # noqa: E402
from tests.hubclient import HubSession  # noqa: E402

PROVIDER = "uni"
ADMIN_EVERY = 50
HUBS = ("hubext", "peer")
#: The event-loop monitor's timer period.
LAG_PERIOD = 0.010

#: Appended to each hub's configuration: a 10 ms timer on the hub's event
#: loop; each firing's lateness (wall-clock time, ms) is buffered and written
#: to ``path`` once a second.
LAG_MONITOR = """
import asyncio as _asyncio, time as _time
_loop, _last, _lags = _asyncio.get_running_loop(), [_time.perf_counter()], []
def _tick():
    now = _time.perf_counter()
    _lags.append(f"{{_time.time():.3f}} {{(now - _last[0] - {period}) * 1000:.2f}}")
    _last[0] = now
    if len(_lags) >= 100:
        with open({path!r}, "a") as f:
            f.write("\\n".join(_lags) + "\\n")
        _lags.clear()
    _loop.call_later({period}, _tick)
_loop.call_later({period}, _tick)
"""


def community_slug(k: int) -> str:
    return f"community-{k:04d}"


def communities_config(n: int) -> dict:
    return {
        community_slug(k): {
            "display_name": f"Community {k}",
            "members": [{"provider": PROVIDER, "group": community_slug(k)}],
            "admins": [{"provider": PROVIDER, "group": f"{community_slug(k)}-admins"}],
        }
        for k in range(n)
    }


def profile_list(n: int) -> list[dict]:
    """A small profile list; some profiles and choices for some communities."""

    def env(**variables):
        return {"environment": variables}

    return [
        {
            "display_name": "Standard environment",
            "slug": "standard",
            "default": True,
            "profile_options": {
                "threads": {
                    "display_name": "Threads",
                    "choices": {
                        "1": {
                            "display_name": "1 thread",
                            "kubespawner_override": env(OMP_NUM_THREADS="1"),
                        },
                        "4": {
                            "display_name": "4 threads",
                            "kubespawner_override": env(OMP_NUM_THREADS="4"),
                        },
                        "8": {
                            "display_name": "8 threads",
                            "allowed_groups": [
                                community_slug(k) for k in range(0, n, 10)
                            ],
                            "kubespawner_override": env(OMP_NUM_THREADS="8"),
                        },
                    },
                },
            },
        },
        {
            "display_name": "Large memory",
            "slug": "large",
            "allowed_groups": [community_slug(k) for k in range(0, n, 4)],
            "kubespawner_override": {"mem_guarantee": "8G"},
        },
        {
            "display_name": "Course image",
            "slug": "course",
            "allowed_groups": [community_slug(k) for k in range(min(n, 20))],
            "kubespawner_override": env(COURSE="1"),
        },
    ]


def accounts_for_round(rnd: int, people: int, n: int) -> dict:
    """The provider's accounts of one round: claims by account id (``sub``)."""
    rng = random.Random(rnd * 100_003 + people)
    accounts = {}
    for i in range(people):
        name = f"r{rnd}p{i:04d}"
        groups = [community_slug(k) for k in rng.sample(range(n), rng.randint(1, 3))]
        if i % ADMIN_EVERY == 0:
            groups.append(f"{groups[0]}-admins")
        accounts[name] = {
            "preferred_username": name,
            "name": f"Person {rnd}-{i}",
            "email": f"{name}@dept{i % 4}.uni.example.edu",
            "email_verified": True,
            "groups": groups,
        }
    return accounts


def hub_config(
    kind: str, env: DemoEnvironment, n: int, lags: Path, extra="", timeout=None
) -> str:
    idp = "os.environ['HUBEXT_DEMO_IDP_URL']"
    # hubext's own provider setting (the peer has no such trait)
    timeout_line = (
        f"\n    request_timeout={timeout!r}," if timeout and kind == "hubext" else ""
    )
    oauth = f"""dict(
    client_id="hubext-demo",
    client_secret=os.environ["HUBEXT_DEMO_CLIENT_SECRET"],
    authorize_url={idp} + "/auth",
    token_url={idp} + "/token",
    userdata_url={idp} + "/me",
    username_claim="preferred_username",
    scope=["openid", "email", "profile", "groups"],{timeout_line}
)"""
    common = f"""
import json, os
c = get_config()
c.JupyterHub.bind_url = "{env.hub_url}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{env.hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{env.proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{str(REPO / "node_modules" / ".bin" / "configurable-http-proxy")!r}]
c.JupyterHub.db_url = "sqlite:///{env.data_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{env.data_dir}/cookie_secret"
c.JupyterHub.log_level = "INFO"
c.Communities.communities = json.loads(open("{env.data_dir}/communities.json").read())
c.JupyterHub.spawner_class = "hubext-local"
c.LocalCommunitySpawner.home_root = "{env.data_dir}/homes"
c.LocalCommunitySpawner.profile_list = json.loads(open("{env.data_dir}/profiles.json").read())
"""
    if kind == "hubext":
        auth = f"""
c.JupyterHub.authenticator_class = "hubext"
c.CommunityAuthenticator.providers = {{
    {PROVIDER!r}: {{"kind": "oidc", "username_template": "{{username}}", "config": {oauth}}},
}}
"""
    else:
        auth = f"""
c.JupyterHub.authenticator_class = "generic-oauth"
for _key, _value in {oauth}.items():
    setattr(c.GenericOAuthenticator, _key, _value)
c.GenericOAuthenticator.enable_auth_state = True
c.GenericOAuthenticator.manage_groups = True
c.GenericOAuthenticator.auth_state_groups_key = "oauth_user.groups"
c.GenericOAuthenticator.allowed_groups = set(c.Communities.communities)
"""
    monitor = LAG_MONITOR.format(period=LAG_PERIOD, path=str(lags))
    return common + auth + textwrap.dedent(monitor) + extra


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(proc.name))
    return found


class Hub:
    def __init__(self, kind: str, workdir: Path, client_secret: str, args):
        self.kind = kind
        self.env = DemoEnvironment.with_free_ports(workdir / kind)
        self.env.client_secret = client_secret
        self.lags = workdir / f"{kind}-lags.txt"
        self.log = workdir / f"{kind}-hub.log"
        data = self.env.data_dir
        data.mkdir(parents=True)
        n = args.communities
        (data / "communities.json").write_text(json.dumps(communities_config(n)))
        (data / "profiles.json").write_text(json.dumps(profile_list(n)))
        extra = Path(args.extra_config).read_text() if args.extra_config else ""
        self.config = data / "jupyterhub_config.py"
        self.config.write_text(
            hub_config(kind, self.env, n, self.lags, extra, args.request_timeout)
        )
        self.process = None

    @property
    def url(self) -> str:
        return self.env.hub_url

    @property
    def redirect_uri(self) -> str:
        path = (
            f"/hub/{PROVIDER}/oauth_callback"
            if self.kind == "hubext"
            else "/hub/oauth_callback"
        )
        return self.url + path

    @property
    def login_path(self) -> str:
        return (
            f"/hub/{PROVIDER}/oauth_login"
            if self.kind == "hubext"
            else "/hub/oauth_login"
        )

    def start(self, idp_url: str) -> None:
        self.env.idp_port = int(idp_url.rsplit(":", 1)[1])
        with open(self.log, "ab") as log:
            self.process = self.env.start_hub(self.config, stdout=log)

    def pids(self) -> list[int]:
        return [self.process.pid, *children(self.process.pid)]

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=30)

    def lag_samples(self, since: float, until: float) -> list[float]:
        if not self.lags.exists():
            return []
        found = []
        for line in self.lags.read_text().splitlines():
            t, ms = line.split()
            if since <= float(t) <= until:
                found.append(max(0.0, float(ms)))
        return found


@dataclass
class Person:
    account: str
    scheduled: float
    started: float = 0.0
    seconds: float = math.nan
    login_seconds: float = math.nan
    error: str = ""
    form: str = ""


@dataclass
class Storm:
    hub: str
    round: int
    people: list[Person]
    wall: float
    window: tuple[float, float]
    load: tuple[tuple[float, ...], tuple[float, ...]]
    cpu: dict[str, float]
    lags: list[float]
    rest_lags: list[float] = field(default_factory=list)

    def ok(self) -> list[float]:
        return [p.seconds for p in self.people if not p.error]

    def times(self) -> list[float]:
        """Every person's time to the form, a failed sign-in as infinite (so
        a percentile that falls on one reads "failed")."""
        return [math.inf if p.error else p.seconds for p in self.people]

    def errors(self) -> list[str]:
        return [f"{p.account}: {p.error}" for p in self.people if p.error]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


FORM_MARKER = 'name="profile"'


def options_form(page: str) -> str:
    """The page's options form (from its ``<form`` to its ``</form>``)."""
    start = page.find("<form")
    form = page[start : page.find("</form>", start) + len("</form>")]
    return re.sub(r"_xsrf=[^\"&]*", "_xsrf=", form)


def sign_in(hub: Hub, person: Person) -> None:
    session = HubSession(hub.url)
    person.started = time.time()
    t0 = time.perf_counter()
    try:
        r = session.login(PROVIDER, person.account, login_path=hub.login_path)
        person.login_seconds = time.perf_counter() - t0
        if r.status_code != 302 or "refused" in r.headers.get("Location", ""):
            person.error = (
                f"sign-in answered {r.status_code} {r.headers.get('Location', '')}"
            )
            return
        form = session.spawn_form()
        if form.status_code != 200 or FORM_MARKER not in form.text:
            person.error = f"spawn page answered {form.status_code}"
            return
        person.seconds = time.perf_counter() - t0
        person.form = options_form(form.text)
    except Exception as e:  # a failed person is counted, not fatal
        person.error = f"{type(e).__name__}: {e}"
    finally:
        session.session.close()


def run_storm(hub: Hub, rnd: int, accounts: list[str], args, idp_pid: int) -> Storm:
    rest_start = time.time()
    time.sleep(args.rest)
    rest_lags = hub.lag_samples(rest_start, time.time())
    # the same arrival rate in the warm-up
    interval = 0 if args.burst else args.seconds / args.people
    cpu_pids = {
        "hub": [hub.process.pid],
        "proxy": children(hub.process.pid),
        "idp": [idp_pid],
    }
    cpu0 = {k: sum(cpu_seconds(p) for p in v) for k, v in cpu_pids.items()}
    cpu0["client"] = sum(os.times()[:2])
    load0 = os.getloadavg()
    profiler = None
    if args.profile:
        # py-spy (pip install py-spy) samples the hub during the storm:
        # collapsed stacks, one file per storm, for finding where time goes.
        out = Path(args.profile) / f"{hub.kind}-r{rnd}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        profiler = subprocess.Popen(
            [
                shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--format",
                "raw",
                "--rate",
                "200",
                "--nonblocking",
                "-o",
                str(out),
                "--pid",
                str(hub.process.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
    people = []
    start_wall, t0 = time.time(), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        futures = []
        for i, account in enumerate(accounts):
            at = t0 + i * interval
            delay = at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            person = Person(account, scheduled=start_wall + i * interval)
            people.append(person)
            futures.append(pool.submit(sign_in, hub, person))
        concurrent.futures.wait(futures)
    wall = time.perf_counter() - t0
    end_wall = time.time()
    cpu = {k: sum(cpu_seconds(p) for p in v) - cpu0[k] for k, v in cpu_pids.items()}
    cpu["client"] = sum(os.times()[:2]) - cpu0["client"]
    load1 = os.getloadavg()
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(30)
    time.sleep(1.5)  # the monitor writes once a second
    return Storm(
        hub=hub.kind,
        round=rnd,
        people=people,
        wall=wall,
        window=(start_wall, end_wall),
        load=(load0, load1),
        cpu=cpu,
        lags=hub.lag_samples(start_wall, end_wall),
        rest_lags=rest_lags,
    )


def fmt_seconds(value: float) -> str:
    return "failed" if value == math.inf else f"{value:.2f}"


def fmt_times(values: list[float]) -> str:
    return "/".join(fmt_seconds(percentile(values, q)) for q in (50, 95, 99)) + (
        f"/{fmt_seconds(max(values))}" if values else ""
    )


def fmt_lags(values: list[float]) -> str:
    return "/".join(f"{percentile(values, q):.0f}" for q in (50, 99)) + (
        f"/{max(values):.0f}" if values else ""
    )


def report(storms: list[Storm], args) -> None:
    print(
        f"\n{args.people} people in {'a burst' if args.burst else f'{args.seconds:g} s'}, "
        f"{args.communities} communities; times in s (p50/p95/p99/max), "
        "event-loop lag in ms (p50/p99/max)"
    )
    header = (
        f"{'storm':<12} {'ok':>5} {'wall s':>7} {'time to the form s':>24} "
        f"{'sign-in part p95':>16} {'loop lag ms':>14} {'lag at rest':>12} "
        f"{'CPU s hub/proxy/idp/client':>28} {'loop busy s':>11} "
        f"{'load start -> end':>22}"
    )
    print(header)
    for s in storms:
        ok = s.ok()
        times = s.times()
        logins = [p.login_seconds for p in s.people if not p.error]
        cpu = "/".join(f"{s.cpu[k]:.1f}" for k in ("hub", "proxy", "idp", "client"))
        load = f"{s.load[0][0]:.2f} -> {s.load[1][0]:.2f}"
        print(
            f"{s.hub + ' r' + str(s.round):<12} {len(ok):>5} {s.wall:>7.1f} "
            f"{fmt_times(times):>24} {percentile(logins, 95):>16.2f} "
            f"{fmt_lags(s.lags):>14} {fmt_lags(s.rest_lags):>12} {cpu:>28} "
            f"{sum(s.lags) / 1000:>11.1f} {load:>22}"
        )
    pooled = {
        kind: [t for s in storms if s.hub == kind for t in s.times()] for kind in HUBS
    }
    lags = {kind: [v for s in storms if s.hub == kind for v in s.lags] for kind in HUBS}
    print("\nall rounds pooled:")
    for kind in HUBS:
        print(
            f"  {kind:<7} people {len(pooled[kind])}, failed "
            f"{sum(t == math.inf for t in pooled[kind])}, time to the form "
            f"p50/p95/p99/max {fmt_times(pooled[kind])} s, "
            f"loop lag p50/p99/max {fmt_lags(lags[kind])} ms"
        )
    cpu = {
        kind: sum(s.cpu["hub"] for s in storms if s.hub == kind)
        / max(1, sum(len(s.people) for s in storms if s.hub == kind))
        for kind in HUBS
    }
    print(
        f"  hub CPU a person: hubext {cpu['hubext'] * 1000:.1f} ms, peer "
        f"{cpu['peer'] * 1000:.1f} ms, ratio {cpu['hubext'] / cpu['peer']:.3f}"
    )
    # The loop's lateness added up: the time it was busy (its own CPU, and
    # waiting inside a callback: SQLite's fsync, the CPU it did not get).
    busy = {
        kind: sum(sum(s.lags) for s in storms if s.hub == kind)
        / 1000
        / max(1, sum(len(s.people) for s in storms if s.hub == kind))
        for kind in HUBS
    }
    print(
        f"  event loop busy a person: hubext {busy['hubext'] * 1000:.1f} ms, peer "
        f"{busy['peer'] * 1000:.1f} ms, ratio {busy['hubext'] / busy['peer']:.3f}"
    )
    ratios = ", ".join(
        f"p{q} {percentile(pooled['hubext'], q) / percentile(pooled['peer'], q):.3f}"
        for q in (50, 95, 99)
    )
    print(f"  ratio hubext/peer, time to the form: {ratios}")
    lag_ratio = ", ".join(
        f"p{q} {percentile(lags['hubext'], q) / max(percentile(lags['peer'], q), 0.01):.2f}"
        for q in (50, 99)
    )
    print(f"  ratio hubext/peer, event-loop lag: {lag_ratio}")
    same = differ = 0
    example = None
    for rnd in sorted({s.round for s in storms}):
        hubext, peer = (
            next(s for s in storms if s.round == rnd and s.hub == kind) for kind in HUBS
        )
        for a, b in zip(hubext.people, peer.people, strict=True):
            if a.form and b.form:
                if a.form == b.form:
                    same += 1
                else:
                    differ += 1
                    example = example or (a.form, b.form)
    print(
        f"  the same options form on both hubs: {same} people, a different one: {differ}"
    )
    if example:
        diff = difflib.unified_diff(
            example[0].splitlines(),
            example[1].splitlines(),
            "hubext",
            "peer",
            lineterm="",
        )
        print("\n".join(list(diff)[:40]))
    for s in storms:
        errors = s.errors()
        if errors:
            print(f"{s.hub} r{s.round}: {len(errors)} failed, e.g. {errors[:3]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--communities", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--warmup",
        type=int,
        default=30,
        help="people signing in to each hub before the rounds, not counted",
    )
    parser.add_argument(
        "--burst", action="store_true", help="everyone at once, not a steady rate"
    )
    parser.add_argument(
        "--workers", type=int, default=256, help="client threads (people in flight)"
    )
    parser.add_argument(
        "--rest",
        type=float,
        default=5,
        help="seconds of lag measured at rest before each storm",
    )
    parser.add_argument(
        "--profile",
        help="sample each hub with py-spy during its storms; collapsed stacks here "
        "(the sampling slows the hub: figures of such a run are not comparable)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        help="hubext's provider request_timeout (default: hubext's, 5 s; the "
        "peer keeps Tornado's 20 s)",
    )
    parser.add_argument(
        "--extra-config", help="a file of hub configuration appended to both hubs'"
    )
    parser.add_argument("--keep", help="keep the hubs' directories and logs here")
    args = parser.parse_args()

    load_start = os.getloadavg()
    print(f"load average at the start: {' '.join(f'{v:.2f}' for v in load_start)}")
    storms: list[Storm] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        idp_env = DemoEnvironment.with_free_ports(workdir / "idp")
        hubs = {kind: Hub(kind, workdir, idp_env.client_secret, args) for kind in HUBS}
        idp = None
        try:
            for hub in hubs.values():
                t = time.perf_counter()
                hub.start(idp_env.idp_url)
                print(
                    f"{hub.kind} hub up in {time.perf_counter() - t:.1f} s", flush=True
                )
            # round 0: the warm-up (first sign-ins after a start compile and
            # fill caches, on both hubs), not counted
            for rnd in range(0 if args.warmup else 1, args.rounds + 1):
                people = args.people if rnd else args.warmup
                accounts = accounts_for_round(rnd, people, args.communities)
                accounts_file = workdir / f"accounts-{rnd}.json"
                accounts_file.write_text(json.dumps(accounts))
                order = HUBS if rnd % 2 else HUBS[::-1]
                for kind in order:
                    # A fresh provider for each storm, its state in memory:
                    # both hubs meet the same provider.
                    with open(workdir / f"idp-{rnd}-{kind}.log", "ab") as idp_log:
                        idp = idp_env.start_idp(
                            accounts_file,
                            stdout=idp_log,
                            redirect_uris=tuple(h.redirect_uri for h in hubs.values()),
                            keep_state=False,
                        )
                    storm = run_storm(hubs[kind], rnd, list(accounts), args, idp.pid)
                    stop_process(idp, timeout=5)
                    idp = None
                    if rnd == 0:
                        print(
                            f"warm-up {kind}: {len(storm.ok())}/{people} signed in",
                            flush=True,
                        )
                        continue
                    storms.append(storm)
                    if args.keep:  # each person's figures, for a closer look
                        (workdir / f"people-{rnd}-{kind}.json").write_text(
                            json.dumps(
                                [
                                    {
                                        "account": p.account,
                                        "started": p.started,
                                        "seconds": p.seconds,
                                        "login_seconds": p.login_seconds,
                                        "error": p.error,
                                    }
                                    for p in storm.people
                                ]
                            )
                        )
                    ok = storm.ok()
                    print(
                        f"round {rnd} {kind:<7} {len(ok)}/{len(storm.people)} ok in "
                        f"{storm.wall:.1f} s; time to the form p50/p95/p99/max "
                        f"{fmt_times(storm.times())} s; loop lag p50/p99/max {fmt_lags(storm.lags)} ms; "
                        f"hub CPU {storm.cpu['hub'] / len(storm.people) * 1000:.0f} ms a person; "
                        f"load {storm.load[0][0]:.2f} -> {storm.load[1][0]:.2f}",
                        flush=True,
                    )
        finally:
            if idp is not None:
                stop_process(idp, timeout=5)
            for hub in hubs.values():
                hub.stop()
    report(storms, args)
    load_end = os.getloadavg()
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in load_end)}")


if __name__ == "__main__":
    main()
