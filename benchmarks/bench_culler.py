"""One culling pass: hubext.culler vs jupyterhub-idle-culler 2.0, on one real hub.

A real JupyterHub (SQLite, configurable-http-proxy) with the cheap spawner of
benchmarks/cheap_spawner.py: 5,000 users, 1,000 running servers, 500 of them
idle (left 75 s without activity while the others get fresh activity through
the REST API), stop latency 0.5 s. Each culler runs one pass at the same
settings (idle timeout 60 s, concurrency 10) with least-privilege scopes;
between the two, the culled servers are started again and made idle again.
hubext runs at its default ``stop_spacing`` unless ``--stop-spacing`` lists
others (one pass each, e.g. ``--stop-spacing 0,0.05,0.1``).

Reported per pass: wall time, hub API requests (counted in the hub's own
log), peak concurrent stops (recorded by the spawner), and the p99 latency
of ``GET /hub/api/`` probed every 100 ms during the pass and during an idle
baseline.

``--diagnose`` also runs an event-loop lag monitor inside the hub (a 5 ms
timer; each time it fires 8 ms or more late is one block of the loop) and
splits each pass at the end of its listing (the culler's last ``GET
/hub/api/users`` in the hub log): probes and hub blocks while listing, and
while stopping.

    python benchmarks/bench_culler.py [--users 5000 --running 1000 --idle 500]
        [--stop-spacing 0,0.05] [--diagnose]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import re
import secrets
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


def hub_config(port, hub_port, api_port, target, events, tokens, workdir) -> str:
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
c.CheapSpawner.stop_latency = 0.5
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


class Bench:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.tokens = {k: secrets.token_hex(32) for k in ("bench", "hubext", "peer")}
        self.port, hub_port, api_port = free_port(), free_port(), free_port()
        self.target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
        threading.Thread(target=self.target.serve_forever, daemon=True).start()
        self.events = workdir / "stops.txt"
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

    def api(self, method, path, **kwargs):
        r = self.http.request(method, self.url + path, timeout=120, **kwargs)
        r.raise_for_status()
        return r

    def close(self):
        stop_process(self.hub, timeout=30)
        self.target.shutdown()

    # -- setup -------------------------------------------------------------------------

    def create_users(self):
        names = [f"user-{i:05d}" for i in range(self.args.users)]
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
            ready = self.count_ready()
            if ready >= len(names):
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

    # -- measuring ------------------------------------------------------------------------

    def log_requests(self, service: str) -> int:
        text = self.log.read_text(errors="replace")
        return sum(
            1
            for line in text.splitlines()
            if f"({service}@" in line and "/hub/api/" in line
        )

    def probe(self, stop: threading.Event, samples: list, stamps=None):
        while not stop.is_set():
            if stamps is not None:
                stamps.append(time.time())
            start = time.perf_counter()
            requests.get(f"{self.url}/", timeout=30)
            samples.append(time.perf_counter() - start)
            stop.wait(0.1)

    def listing_end(self, service: str, since: float) -> float:
        """When the service's last ``GET /hub/api/users`` since ``since`` ended."""
        end = since
        for line in self.log.read_text(errors="replace").splitlines():
            if f"({service}@" in line and "GET /hub/api/users" in line:
                stamp = LOG_TIME.match(line)
                if stamp:
                    t = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S.%f")
                    end = max(end, t.timestamp())  # the hub logs local time
        return end

    def diagnose(self, service, since, until, samples, stamps) -> str:
        split = self.listing_end(service, since)
        lags = []
        if self.lags.exists():
            for line in self.lags.read_text().splitlines():
                t, ms = map(float, line.split())
                if since <= t <= until:
                    lags.append((t, ms))
        parts = []
        for phase, inside in (
            ("listing", lambda t: t <= split),
            ("stopping", lambda t: t > split),
        ):
            probes = [d for t, d in zip(stamps, samples, strict=False) if inside(t)]
            blocks = sorted(ms for t, ms in lags if inside(t))
            parts.append(
                f"{phase} {(min(split, until) - since if phase == 'listing' else until - split):.1f} s: "
                f"probes {len(probes)}, p99 {p99(probes):.1f} ms, max "
                f"{max(probes, default=float('nan')) * 1000:.1f} ms; hub blocks >= 8 ms "
                f"{len(blocks)}, median {statistics.median(blocks) if blocks else float('nan'):.1f} ms, "
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

    async def measure(self, name, service, run_pass):
        before_requests = self.log_requests(service)
        since = time.monotonic()
        samples: list[float] = []
        stamps: list[float] = []
        stop = threading.Event()
        prober = threading.Thread(target=self.probe, args=(stop, samples, stamps))
        prober.start()
        start, started = time.perf_counter(), time.time()
        await run_pass()
        wall = time.perf_counter() - start
        stop.set()
        prober.join()
        time.sleep(1)  # let the hub flush its log
        diagnosis = ""
        if self.lags:
            diagnosis = self.diagnose(service, started, started + wall, samples, stamps)
        return {
            "diagnosis": diagnosis,
            "name": name,
            "wall": wall,
            "requests": self.log_requests(service) - before_requests,
            "peak": self.peak_overlap(since),
            "p99": p99(samples),
            "p50": statistics.median(samples) * 1000 if samples else float("nan"),
            "max": max(samples) * 1000 if samples else float("nan"),
            "probes": len(samples),
        }


LOG_TIME = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")


def p99(samples):
    return (
        sorted(samples)[max(0, int(len(samples) * 0.99) - 1)] * 1000
        if samples
        else float("nan")
    )


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--running", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="measure the hub's event-loop blocks; split each pass at its listing's end",
    )
    parser.add_argument(
        "--stop-spacing",
        default=str(Culler.stop_spacing.default_value),
        help="hubext's stop_spacing; a comma-separated list runs one pass each",
    )
    args = parser.parse_args()
    spacings = [float(v) for v in args.stop_spacing.split(",")]
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args, Path(tmp))
        try:
            names = bench.create_users()
            running = names[: args.running]
            idle = set(running[:: max(1, args.running // args.idle)][: args.idle])
            t = time.perf_counter()
            bench.start_servers(running)
            bench.make_idle(running, idle, IDLE_FOR)
            print(
                f"setup: {args.users} users, {len(running)} running, {len(idle)} idle ({time.perf_counter() - t:.0f} s)"
            )

            # idle baseline of the probe
            samples: list[float] = []
            stop = threading.Event()
            prober = threading.Thread(target=bench.probe, args=(stop, samples))
            prober.start()
            time.sleep(10)
            stop.set()
            prober.join()
            baseline = p99(samples)

            ours_results = []
            for i, spacing in enumerate(spacings):
                if i:  # the same starting point again
                    bench.start_servers(running)
                    bench.make_idle(running, idle, IDLE_FOR)
                culler = Culler(
                    url=bench.url,
                    api_token=bench.tokens["hubext"],
                    idle_timeout=TIMEOUT,
                    concurrency=args.concurrency,
                    stop_spacing=spacing,
                    log=logging.getLogger("hubext.culler.bench"),
                )
                culler.policies, culler.default = {}, culler.default_policy()
                api = HubAPI(bench.url, bench.tokens["hubext"])

                async def ours(culler=culler, api=api):
                    result = await culler.cull_pass(api)
                    assert len(result.culled) + len(result.stopping) == len(idle), (
                        result
                    )

                name = "hubext.culler"
                if len(spacings) > 1 or spacing != Culler.stop_spacing.default_value:
                    name += f" (spacing {spacing:g} s)"
                ours_results.append(await bench.measure(name, "hubext-culler", ours))
                api.close()

            # the same starting point for the peer
            bench.start_servers(running)
            bench.make_idle(running, idle, IDLE_FOR)

            from jupyterhub_idle_culler import cull_idle

            async def peer():
                await cull_idle(
                    url=bench.url,
                    api_token=bench.tokens["peer"],
                    inactive_limit=TIMEOUT,
                    logger=logging.getLogger("idle-culler.bench"),
                    concurrency=args.concurrency,
                )

            upstream = await bench.measure(
                "jupyterhub-idle-culler 2.0", "idle-culler", peer
            )
            assert bench.count_ready() == len(running) - len(idle)
        finally:
            bench.close()

    print(f"probe GET /hub/api/ p99 at rest: {baseline:.1f} ms")
    print(
        f"{'culler':<32} {'wall s':>8} {'requests':>9} {'peak stops':>11} "
        f"{'probe p50/p99/max ms':>22} {'probes':>7}"
    )
    for r in (*ours_results, upstream):
        probe = f"{r['p50']:.1f}/{r['p99']:.1f}/{r['max']:.1f}"
        print(
            f"{r['name']:<32} {r['wall']:>8.1f} {r['requests']:>9} {r['peak']:>11} "
            f"{probe:>22} {r['probes']:>7}"
        )
    for hubext in ours_results:
        print(
            f"{hubext['name']}: speed-up (upstream wall / hubext wall) "
            f"{upstream['wall'] / hubext['wall']:.1f}x, probe p99 during the pass / "
            f"at rest {hubext['p99'] / baseline:.2f}"
        )
    print(
        f"probe p99 during the upstream pass / at rest: {upstream['p99'] / baseline:.2f}"
    )
    for r in (*ours_results, upstream):
        if r["diagnosis"]:
            print(f"{r['name']}: {r['diagnosis']}")


if __name__ == "__main__":
    asyncio.run(main())
