"""Culling at scale: hubext.culler vs jupyterhub-idle-culler 2.0, on one real hub.

A real JupyterHub (SQLite, configurable-http-proxy) with the cheap spawner of
benchmarks/cheap_spawner.py (every server is one tiny HTTP server of this
process; a stop takes ``--stop-latency`` seconds). Both cullers run in this
process, one after the other, against the same hub, with least-privilege
scopes and the same settings. Two scenarios:

``--scenario stops`` (the default): one culling pass with servers to stop.
``--users`` (5,000) users, ``--running`` (1,000) running servers,
``--idle`` (500) of them idle (left 75 s without activity while the others
get fresh activity through the REST API), stop latency 0.5 s, idle timeout
60 s, concurrency 10. First a dry run of hubext's (nothing stopped) times
its listing, for the floor: ``idle x stop latency / concurrency`` (every
stop slot busy from the first second) plus that listing. Between two
passes, the culled servers are started and made idle again.

``--scenario listing``: passes with nothing to cull (list and decide), at
each number of running servers of ``--running`` (e.g. 1000,5000,20000),
with ``--users`` users in all (default: the largest point). The servers are
started once, growing from one point to the next; at each point every
culler runs ``--repeat`` passes, the cullers taking turns.

Each hubext variant is one ``--hubext`` option, ``trait=value`` pairs of
:class:`hubext.culler.app.Culler` separated by commas (none: the defaults),
e.g. ``--hubext "" --hubext page_size=200,page_time=0``. The peer runs with
each ``--peer-page-size`` (0: its default, the hub's default page size of 50).

Reported per pass: wall time; hub API requests (counted in the hub's own
log); for hubext its pages and largest page; the hub's CPU time and this
process's (the cullers'); the p50, p99 and max latency of ``GET /hub/api/``,
probed every 100 ms by another process (so that no culler's work in this
process delays a probe); and the machine's load average (1 minute) at the
start and end of each pass. ``--diagnose`` (stops) also runs an event-loop
lag monitor inside the hub and splits each pass at the end of its listing.

    python benchmarks/bench_culler.py [--scenario stops] [--users 5000
        --running 1000 --idle 500] [--hubext ...] [--diagnose]
    python benchmarks/bench_culler.py --scenario listing
        --running 1000,5000,20000 [--repeat 3] [--peer-page-size 0,200]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo.services import free_port, stop_process, wait_for_http  # noqa: E402
from hubext.culler import CULLER_SCOPES  # noqa: E402
from hubext.culler.app import Culler  # noqa: E402
from hubext.services.client import HubAPI  # noqa: E402

#: The culling timeout, and how long the idle servers are left idle before a pass.
TIMEOUT = 60
IDLE_FOR = 75
#: The timeout of a listing pass: nothing is culled.
NEVER = 365 * 86400
PEER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


class Target(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


#: Appended to the hub's configuration with --diagnose: records each time the
#: hub's event loop runs a 5 ms timer 8 ms or more late (epoch, lateness ms).
LAG_MONITOR = """
import asyncio as _asyncio, time as _time
_loop, _last = _asyncio.get_running_loop(), [_time.perf_counter()]
def _tick():
    now = _time.perf_counter()
    late = now - _last[0] - 0.005
    if late >= 0.008:
        with open({path!r}, "a") as f:
            f.write(f"{{_time.time():.3f}} {{late * 1000:.1f}}\\n")
    _last[0] = now
    _loop.call_later(0.005, _tick)
_loop.call_later(0.005, _tick)
"""

#: The prober, a process of its own: ``GET url`` every 100 ms, one line per
#: probe (its start, epoch seconds; its latency, seconds) until SIGTERM.
PROBER = """
import signal, sys, time, urllib.request
url, out = sys.argv[1], sys.argv[2]
running = [True]
signal.signal(signal.SIGTERM, lambda *a: running.__setitem__(0, False))
with open(out, "w") as f:
    while running[0]:
        t, s = time.time(), time.perf_counter()
        try:
            urllib.request.urlopen(url, timeout=60).read()
        except OSError:
            pass
        f.write(f"{t:.3f} {time.perf_counter() - s:.6f}\\n")
        f.flush()
        time.sleep(0.1)
"""


def hub_config(port, hub_port, api_port, target, events, tokens, workdir, args) -> str:
    return f"""
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(REPO / "node_modules" / ".bin" / "configurable-http-proxy")!r}]
c.JupyterHub.db_url = "sqlite:///{workdir}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.spawner_class = "benchmarks.cheap_spawner.CheapSpawner"
c.CheapSpawner.target_url = {target!r}
c.CheapSpawner.events_file = {events!r}
c.CheapSpawner.stop_latency = {args.stop_latency!r}
# The services' tokens are checked as the hub checks the tokens it generates
# for the services it manages (hashed once), not as a person's own token
# (16,384 rounds, about 3 ms per request)
c.JupyterHub.trust_user_provided_tokens = True
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.concurrent_spawn_limit = 500
c.JupyterHub.last_activity_interval = 3600
c.JupyterHub.log_level = "INFO"
c.JupyterHub.services = [
    {{"name": "bench", "api_token": {tokens["bench"]!r}}},
    {{"name": "hubext-culler", "api_token": {tokens["hubext"]!r}}},
    {{"name": "idle-culler", "api_token": {tokens["peer"]!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "bench", "scopes": ["admin:users", "admin:servers", "users:activity"], "services": ["bench"]}},
    {{"name": "hubext-culler", "scopes": {CULLER_SCOPES!r}, "services": ["hubext-culler"]}},
    {{"name": "idle-culler", "scopes": {PEER_SCOPES!r}, "services": ["idle-culler"]}},
]
"""


def load() -> float:
    """The machine's load average over the last minute."""
    return os.getloadavg()[0]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p99(samples):
    if not samples:
        return float("nan")
    return sorted(samples)[max(0, int(len(samples) * 0.99) - 1)] * 1000


def ms(samples, q):
    if not samples:
        return float("nan")
    if q == "p50":
        return statistics.median(samples) * 1000
    if q == "p99":
        return p99(samples)
    return max(samples) * 1000


class Bench:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.tokens = {k: secrets.token_hex(32) for k in ("bench", "hubext", "peer")}
        self.port, hub_port, api_port = free_port(), free_port(), free_port()
        self.target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
        threading.Thread(target=self.target.serve_forever, daemon=True).start()
        self.events = workdir / "stops.txt"
        self.events.touch()
        self.lags = workdir / "lags.txt" if args.diagnose else None
        config = workdir / "jupyterhub_config.py"
        config.write_text(
            hub_config(
                self.port,
                hub_port,
                api_port,
                f"http://127.0.0.1:{self.target.server_address[1]}",
                str(self.events),
                self.tokens,
                workdir,
                args,
            )
            + (LAG_MONITOR.format(path=str(self.lags)) if self.lags else "")
        )
        self.log = workdir / "hub.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.hub = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=workdir,
            env=env,
            stdout=open(self.log, "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}/hub/api"
        wait_for_http(f"{self.url}/", 120, self.hub)
        self.http = requests.Session()
        # as many pooled connections as the set-up's threads
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
        self.http.mount("http://", adapter)
        self.http.headers["Authorization"] = f"token {self.tokens['bench']}"
        self.probes = workdir / "probes.txt"
        self.prober = subprocess.Popen(
            [sys.executable, "-c", PROBER, f"{self.url}/", str(self.probes)]
        )
        self.running = 0

    def api(self, method, path, **kwargs):
        r = self.http.request(method, self.url + path, timeout=120, **kwargs)
        r.raise_for_status()
        return r

    def close(self):
        self.prober.terminate()
        self.prober.wait(10)
        stop_process(self.hub, timeout=30)
        self.target.shutdown()

    # -- setup -------------------------------------------------------------------------

    def create_users(self, count: int):
        names = [f"user-{i:05d}" for i in range(count)]
        for i in range(0, len(names), 500):
            self.api("POST", "/users", json={"usernames": names[i : i + 500]})
        return names

    def start_servers(self, names):
        def start(name):
            r = self.http.post(f"{self.url}/users/{name}/server", timeout=300)
            if r.status_code not in (201, 202, 400):  # 400: already running
                r.raise_for_status()

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            list(pool.map(start, names))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.count_ready() >= len(names):
                return
            time.sleep(1)
        raise TimeoutError("servers did not start")

    def count_ready(self) -> int:
        r = self.api(
            "GET",
            "/users?state=ready&limit=1",
            headers={"Accept": "application/jupyterhub-pagination+json"},
        )
        return r.json()["_pagination"]["total"]

    def make_idle(self, running, idle, idle_for: float):
        """Let ``idle_for`` seconds pass, then record fresh activity for the others.

        The hub only moves ``last_activity`` forward, so idleness is made by
        waiting, not by back-dating.
        """
        time.sleep(idle_for)
        now = datetime.now(UTC).isoformat()

        def post(name):
            self.http.post(
                f"{self.url}/users/{name}/activity",
                json={"last_activity": now, "servers": {"": {"last_activity": now}}},
                timeout=60,
            ).raise_for_status()

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(post, [n for n in running if n not in idle]))

    # -- the cullers -------------------------------------------------------------------

    def hubext(self, traits: dict, **overrides) -> Culler:
        culler = Culler(
            url=self.url,
            api_token=self.tokens["hubext"],
            concurrency=self.args.concurrency,
            log=logging.getLogger("hubext.culler.bench"),
            **{**traits, **overrides},
        )
        culler.policies, culler.default = {}, culler.default_policy()
        return culler

    async def hubext_pass(self, traits: dict, **overrides):
        culler = self.hubext(traits, **overrides)
        api = HubAPI(self.url, self.tokens["hubext"])
        try:
            return await culler.cull_pass(api)
        finally:
            api.close()

    async def peer_pass(self, timeout: float, page_size: int):
        from jupyterhub_idle_culler import cull_idle

        await cull_idle(
            url=self.url,
            api_token=self.tokens["peer"],
            inactive_limit=timeout,
            logger=logging.getLogger("idle-culler.bench"),
            concurrency=self.args.concurrency,
            api_page_size=page_size,
        )

    # -- measuring ------------------------------------------------------------------------

    def log_lines(self):
        return self.log.read_text(errors="replace").splitlines()

    def log_requests(self, service: str) -> int:
        return sum(
            1
            for line in self.log_lines()
            if f"({service}@" in line and "/hub/api/" in line
        )

    def probes_between(self, since: float, until: float):
        """(start, latency) of the probes started between ``since`` and ``until``."""
        samples = []
        for line in self.probes.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                t, latency = float(parts[0]), float(parts[1])
                if since <= t <= until:
                    samples.append((t, latency))
        return samples

    def stop_seconds(self, service: str, since: float) -> list[float]:
        """How long the hub took to answer each of the service's stops
        (``DELETE .../server``) logged since ``since`` (epoch)."""
        seconds = []
        for line in self.log_lines():
            if f"({service}@" not in line or " DELETE /hub/api/users/" not in line:
                continue
            stamp, took = LOG_TIME.match(line), LOG_TOOK.search(line)
            if stamp and took and "/server" in line:
                t = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S.%f")
                if t.timestamp() >= since:
                    seconds.append(float(took.group(1)) / 1000)
        return seconds

    def listing_end(self, service: str, since: float) -> float:
        """When the service's last ``GET /hub/api/users`` since ``since`` ended."""
        end = since
        for line in self.log_lines():
            if f"({service}@" in line and "GET /hub/api/users" in line:
                stamp = LOG_TIME.match(line)
                if stamp:
                    t = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S.%f")
                    end = max(end, t.timestamp())  # the hub logs local time
        return end

    def diagnose(self, service, since, until, probes) -> str:
        split = self.listing_end(service, since)
        lags = []
        if self.lags.exists():
            for line in self.lags.read_text().splitlines():
                t, lag = map(float, line.split())
                if since <= t <= until:
                    lags.append((t, lag))
        parts = []
        for phase, inside in (
            ("listing", lambda t: t <= split),
            ("stopping", lambda t: t > split),
        ):
            latencies = [d for t, d in probes if inside(t)]
            blocks = sorted(lag for t, lag in lags if inside(t))
            length = min(split, until) - since if phase == "listing" else until - split
            parts.append(
                f"{phase} {length:.1f} s: probes {len(latencies)}, p99 "
                f"{p99(latencies):.1f} ms, max {ms(latencies, 'max'):.1f} ms; "
                f"hub blocks >= 8 ms {len(blocks)}, median "
                f"{statistics.median(blocks) if blocks else float('nan'):.1f} ms, "
                f"max {max(blocks, default=float('nan')):.1f} ms, "
                f"{sum(blocks) / 1000:.1f} s in all"
            )
        return "; ".join(parts)

    def peak_overlap(self, since: float) -> int:
        events = []
        for line in self.events.read_text().splitlines():
            start, end = map(float, line.split())
            if start >= since:
                events += [(start, 1), (end, -1)]
        peak = current = 0
        for _, delta in sorted(events):
            current += delta
            peak = max(peak, current)
        return peak

    async def measure(self, name, service, run_pass) -> dict:
        """Run one pass (``run_pass``, a coroutine function) and measure it."""
        before_requests = self.log_requests(service)
        since = time.monotonic()
        load_start = load()
        hub_cpu, own_cpu = cpu_seconds(self.hub.pid), time.process_time()
        start, started = time.perf_counter(), time.time()
        outcome = await run_pass()
        wall = time.perf_counter() - start
        hub_cpu = cpu_seconds(self.hub.pid) - hub_cpu
        own_cpu = time.process_time() - own_cpu
        load_end = load()
        time.sleep(1)  # let the hub flush its log, the prober its last probe
        probes = self.probes_between(started, started + wall)
        latencies = [latency for _, latency in probes]
        diagnosis = ""
        if self.lags:
            diagnosis = self.diagnose(service, started, started + wall, probes)
        return {
            "name": name,
            "outcome": outcome,
            "wall": wall,
            "requests": self.log_requests(service) - before_requests,
            "stops": self.stop_seconds(service, started),
            "peak": self.peak_overlap(since),
            "latencies": latencies,
            "hub_cpu": hub_cpu,
            "own_cpu": own_cpu,
            "load": (load_start, load_end),
            "diagnosis": diagnosis,
            "listing": (
                outcome.listing_seconds
                if hasattr(outcome, "listing_seconds")
                else self.listing_end(service, started) - started
            ),
        }


LOG_TIME = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")
LOG_TOOK = re.compile(r" ([\d.]+)ms$")


def parse_traits(text: str) -> dict:
    """``"page_size=200,page_time=0"`` -> Culler traits (numbers, or None)."""
    traits = {}
    for pair in filter(None, text.split(",")):
        key, _, value = pair.partition("=")
        if value == "None":
            traits[key] = None
        else:
            try:
                traits[key] = int(value)
            except ValueError:
                traits[key] = float(value)
    return traits


def variant_name(text: str) -> str:
    return f"hubext.culler ({text})" if text else "hubext.culler"


def peer_name(size: int) -> str:
    return f"idle-culler 2.0 (pages of {size})" if size else "idle-culler 2.0"


def hubext_pages(r) -> str:
    outcome = r["outcome"]
    if hasattr(outcome, "pages"):
        return f"{outcome.pages} (<= {outcome.largest_page})"
    return ""


# -- scenarios ---------------------------------------------------------------------------


async def scenario_stops(bench: Bench, args) -> None:
    names = bench.create_users(args.users)
    running = names[: args.running]
    idle = set(running[:: max(1, args.running // args.idle)][: args.idle])
    t = time.perf_counter()
    bench.start_servers(running)
    bench.make_idle(running, idle, IDLE_FOR)
    print(
        f"setup: {args.users} users, {len(running)} running, {len(idle)} idle "
        f"({time.perf_counter() - t:.0f} s)",
        flush=True,
    )
    time.sleep(10)  # the probe at rest
    baseline = [d for _, d in bench.probes_between(time.time() - 10, time.time())]

    results = []
    for i, text in enumerate(args.hubext):
        traits = parse_traits(text)
        if i:  # the same starting point again
            bench.start_servers(running)
            bench.make_idle(running, idle, IDLE_FOR)

        async def dry(traits=traits):
            return await bench.hubext_pass(traits, idle_timeout=TIMEOUT, dry_run=True)

        listing = await bench.measure("(dry run: listing)", "hubext-culler", dry)

        async def ours(traits=traits):
            result = await bench.hubext_pass(traits, idle_timeout=TIMEOUT)
            culled = len(result.culled) + len(result.stopping)
            assert culled == len(idle), result
            return result

        r = await bench.measure(variant_name(text), "hubext-culler", ours)
        r["floor"] = len(idle) * args.stop_latency / args.concurrency + listing["wall"]
        r["dry_listing"] = listing["wall"]
        results.append(r)

    for size in args.peer_page_sizes:
        bench.start_servers(running)
        bench.make_idle(running, idle, IDLE_FOR)

        async def peer(size=size):
            await bench.peer_pass(TIMEOUT, size)

        results.append(await bench.measure(peer_name(size), "idle-culler", peer))
    assert bench.count_ready() == len(running) - len(idle)

    print(f"probe GET /hub/api/ p99 at rest: {p99(baseline):.1f} ms")
    print(
        f"{'culler':<48} {'wall s':>7} {'floor s':>8} {'/floor':>7} "
        f"{'stop s':>6} {'listing s':>9} {'requests':>8} {'pages':>10} "
        f"{'peak':>5} {'probe p50/p99/max ms':>21} {'probes':>6} {'hub cpu':>8} "
        f"{'load':>10}"
    )
    for r in results:
        floor = r.get("floor", float("nan"))
        stop = statistics.mean(r["stops"]) if r["stops"] else float("nan")
        print(
            f"{r['name']:<48} {r['wall']:>7.1f} {floor:>8.1f} "
            f"{r['wall'] / floor:>7.3f} {stop:>6.3f} "
            f"{r['listing']:>9.2f} {r['requests']:>8} {hubext_pages(r):>10} "
            f"{r['peak']:>5} "
            f"{ms(r['latencies'], 'p50'):>6.1f}/{ms(r['latencies'], 'p99'):.1f}/"
            f"{ms(r['latencies'], 'max'):.1f} {len(r['latencies']):>6} "
            f"{r['hub_cpu']:>7.1f}s {r['load'][0]:>4.1f}-{r['load'][1]:.1f}"
        )
    print(
        "floor: idle servers x stop latency / concurrency + the listing of a dry "
        "run; stop s: the hub's mean time to answer a stop (its log)"
    )
    peers = [r for r in results if "floor" not in r]
    for r in results:
        if "floor" in r:
            stop = statistics.mean(r["stops"])
            bound = len(idle) * stop / args.concurrency + r["dry_listing"]
            print(
                f"{r['name']}: {r['wall'] / r['floor']:.3f} x the floor; "
                f"{r['wall'] / bound:.3f} x the floor with the hub's own stop "
                f"time ({stop:.3f} s)"
            )
            for peer in peers:
                print(
                    f"  vs {peer['name']}: speed-up {peer['wall'] / r['wall']:.1f}x, "
                    f"probe p99 {p99(r['latencies']):.1f} vs "
                    f"{p99(peer['latencies']):.1f} ms"
                )
    for r in results:
        if r["diagnosis"]:
            print(f"{r['name']}: {r['diagnosis']}")


async def scenario_listing(bench: Bench, args) -> None:
    points = sorted(args.running_points)
    names = bench.create_users(max(args.users, points[-1]))
    print(f"setup: {len(names)} users", flush=True)
    variants = [(variant_name(t), "hubext", parse_traits(t)) for t in args.hubext]
    variants += [(peer_name(s), "peer", s) for s in args.peer_page_sizes]
    header = (
        f"{'running':>7} {'culler':<48} {'wall s (min-max)':>18} {'requests':>8} "
        f"{'pages':>10} {'probe p50/p99/max ms':>21} {'probes':>6} "
        f"{'hub cpu s':>9} {'own cpu s':>9} {'load':>10}"
    )
    lines = []
    started_servers = 0
    for point in points:
        t = time.perf_counter()
        bench.start_servers(names[started_servers:point])
        started_servers = point
        print(
            f"{point} running ({time.perf_counter() - t:.0f} s to start them), "
            f"load {load():.1f}",
            flush=True,
        )
        runs = {name: [] for name, _, _ in variants}
        repeat = 0
        while (
            repeat < args.repeat
            or min(sum(len(r["latencies"]) for r in rs) for rs in runs.values())
            < args.min_probes
        ):
            # the cullers take turns, each starting first in turn
            turn = repeat % len(variants)
            for name, kind, setting in variants[turn:] + variants[:turn]:
                if kind == "hubext":

                    async def run(setting=setting, point=point):
                        result = await bench.hubext_pass(setting, idle_timeout=NEVER)
                        assert result.servers >= point and not result.culled, result
                        return result

                    runs[name].append(await bench.measure(name, "hubext-culler", run))
                else:

                    async def run(setting=setting):
                        await bench.peer_pass(NEVER, setting)

                    runs[name].append(await bench.measure(name, "idle-culler", run))
                r = runs[name][-1]
                print(
                    f"  {name}: {r['wall']:.2f} s, {r['requests']} requests, probe "
                    f"p99 {p99(r['latencies']):.1f} ms, load {r['load'][0]:.1f}-"
                    f"{r['load'][1]:.1f}",
                    flush=True,
                )
            repeat += 1
        for name, _, _ in variants:
            rs = runs[name]
            walls = [r["wall"] for r in rs]
            latencies = [d for r in rs for d in r["latencies"]]
            lines.append(
                f"{point:>7} {name:<48} "
                f"{statistics.median(walls):>6.2f} ({min(walls):.2f}-{max(walls):.2f}) "
                f"{statistics.median(r['requests'] for r in rs):>8.0f} "
                f"{hubext_pages(rs[-1]):>10} "
                f"{ms(latencies, 'p50'):>6.1f}/{ms(latencies, 'p99'):.1f}/"
                f"{ms(latencies, 'max'):.1f} {len(latencies):>6} "
                f"{statistics.median(r['hub_cpu'] for r in rs):>9.2f} "
                f"{statistics.median(r['own_cpu'] for r in rs):>9.2f} "
                f"{rs[0]['load'][0]:>4.1f}-{rs[-1]['load'][1]:.1f}"
            )
        print(header)
        print("\n".join(lines), flush=True)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["stops", "listing"], default="stops")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument(
        "--running",
        default=None,
        help="stops: running servers (1000); listing: a comma-separated list",
    )
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--stop-latency", type=float, default=0.5)
    parser.add_argument(
        "--repeat", type=int, default=3, help="listing: at least this many passes each"
    )
    parser.add_argument(
        "--min-probes",
        type=int,
        default=200,
        help="listing: more passes until each culler's passes saw this many probes",
    )
    parser.add_argument(
        "--hubext",
        action="append",
        help="a hubext variant: Culler traits, e.g. page_size=200,page_time=0 "
        "(repeat for several; default: one, with the defaults)",
    )
    parser.add_argument(
        "--peer-page-size",
        default="0",
        help="the peer's api_page_size, comma-separated for several (0: its default)",
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="stops: measure the hub's event-loop blocks; split each pass at its "
        "listing's end",
    )
    args = parser.parse_args()
    # SIGTERM: the hub, its servers and the prober are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    args.hubext = args.hubext or [""]
    args.peer_page_sizes = [int(v) for v in args.peer_page_size.split(",")]
    if args.scenario == "stops":
        args.running = int(args.running or 1000)
        args.users = args.users or 5000
    else:
        args.running_points = [int(v) for v in (args.running or "1000").split(",")]
        args.users = args.users or max(args.running_points)
    logging.basicConfig(level=logging.WARNING)

    load_start = load()
    print(f"load average (1 min) at the start: {load_start:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args, Path(tmp))
        try:
            if args.scenario == "stops":
                await scenario_stops(bench, args)
            else:
                await scenario_listing(bench, args)
        finally:
            bench.close()
    print(
        f"load average (1 min) at the start: {load_start:.2f}, at the end: {load():.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
