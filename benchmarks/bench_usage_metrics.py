"""``jupyterhub_user_group_info``: hubext's collector vs jupyterhub-groups-exporter.

One real JupyterHub (SQLite, configurable-http-proxy, dummy authenticator)
with ``--users`` users (5,000), each in ``--per-user`` (3) of ``--groups``
(30) groups, made through the REST API. Both sides compute the same gauge
from the same hub:

- hubext: :class:`~hubext.usage.metrics.UserGroupInfoCollector` registered in
  the hub (as ``c.UsageLedger.user_group_info_metric = True`` does), read
  from the hub's database at each scrape of ``/hub/metrics``. Measured: the
  scrape's wall time and the hub's CPU time per scrape (its event loop is
  blocked that long), against the same hub without the collector.
- jupyterhub-groups-exporter (2i2c, a separate service; not on PyPI: pass a
  checkout of its source with ``--exporter``, and ``python-backoff``, its
  only dependency missing from hubext's environment, on ``PYTHONPATH``): its
  own ``update_user_group_info`` (paginated ``GET /hub/api/users`` and
  ``/hub/api/groups``, then the gauge rebuilt, logging at its default INFO
  level to a file) and a scrape of its registry. Measured: wall time and
  the hub's CPU time per update, the exporter's own CPU time, its requests.

    pip install --target /tmp/peer-site python-backoff
    PYTHONPATH=/tmp/peer-site python benchmarks/bench_usage_metrics.py \\
        --exporter /path/to/jupyterhub-groups-exporter [--users 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo.services import free_port, stop_process, wait_for_http  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

HUB_CONFIG = """
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{workdir}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.log_level = "WARN"
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "bench",
    "scopes": ["admin:users", "admin:groups", "read:metrics"],
    "services": ["bench"],
}}]

from jupyterhub.auth import DummyAuthenticator

class Authenticator(DummyAuthenticator):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if {group_info!r}:
            from hubext.usage.metrics import hub_usage_metrics
            hub_usage_metrics((), db=kwargs["parent"].db, user_group_info=True)

c.JupyterHub.authenticator_class = Authenticator
c.Authenticator.allow_all = True
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Hub:
    def __init__(self, workdir: Path, group_info: bool):
        self.workdir = workdir
        self.token = secrets.token_hex(32)
        port, hub_port, api_port = free_port(), free_port(), free_port()
        config = workdir / f"jupyterhub_config_{int(group_info)}.py"
        config.write_text(
            HUB_CONFIG.format(
                port=port,
                hub_port=hub_port,
                api_port=api_port,
                chp=str(REPO / "node_modules" / ".bin" / "configurable-http-proxy"),
                workdir=workdir,
                token=self.token,
                group_info=group_info,
            )
        )
        self.hub = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=open(workdir / "hub.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{self.url}/hub/api/", 120, self.hub)
        except RuntimeError:
            print((workdir / "hub.log").read_text()[-3000:], file=sys.stderr)
            raise
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"

    def api(self, method, path, **kwargs):
        r = self.http.request(
            method, f"{self.url}/hub/api{path}", timeout=300, **kwargs
        )
        r.raise_for_status()
        return r

    def populate(self, users: int, groups: int, per_user: int) -> None:
        names = [f"user-{i:05d}" for i in range(users)]
        for i in range(0, users, 500):
            self.api("POST", "/users", json={"usernames": names[i : i + 500]})
        for g in range(groups):
            members = [n for i, n in enumerate(names) if (i - g) % groups < per_user]
            self.api("POST", f"/groups/group-{g:02d}", json={"users": members})

    def cpu(self) -> float:
        return cpu_seconds(self.hub.pid)

    def close(self):
        stop_process(self.hub, timeout=30)


def summary(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


def measure_scrapes(hub: Hub, repeat: int) -> dict:
    walls, cpus, size, series = [], [], 0, 0
    for _ in range(repeat):
        cpu, t = hub.cpu(), time.perf_counter()
        r = hub.http.get(f"{hub.url}/hub/metrics", timeout=300)
        walls.append(time.perf_counter() - t)
        cpus.append(hub.cpu() - cpu)
        r.raise_for_status()
        size = len(r.content)
        series = r.text.count("\njupyterhub_user_group_info{")
    return {"wall": walls, "hub_cpu": cpus, "bytes": size, "series": series}


def measure_exporter(hub: Hub, source: Path, repeat: int) -> dict:
    sys.path.insert(0, str(source))
    import aiohttp
    from jupyterhub_groups_exporter.groups_exporter import update_user_group_info
    from prometheus_client import REGISTRY, generate_latest
    from yarl import URL

    # its default: INFO, one line per user and group (to a file here)
    logging.basicConfig(
        filename=hub.workdir / "exporter.log",
        level=logging.INFO,
        format="%(asctime)s [jupyterhub-groups-exporter] %(levelname)s: %(message)s",
    )
    requests_made = 0

    async def count_request(session, context, params):
        nonlocal requests_made
        requests_made += 1

    async def run() -> dict:
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(count_request)
        headers = {
            "Accept": "application/jupyterhub-pagination+json",
            "Authorization": f"token {hub.token}",
        }
        walls, hub_cpus, own_cpus, scrapes = [], [], [], []
        async with aiohttp.ClientSession(
            headers=headers, trace_configs=[trace]
        ) as session:
            app = {
                "session": session,
                "hub_url": URL(hub.url),
                "allowed_groups": [],
                "double_count": True,
                "namespace": "",
            }
            for _ in range(repeat):
                cpu, own, t = hub.cpu(), time.process_time(), time.perf_counter()
                await update_user_group_info(app)
                walls.append(time.perf_counter() - t)
                hub_cpus.append(hub.cpu() - cpu)
                own_cpus.append(time.process_time() - own)
                t = time.perf_counter()
                body = generate_latest(REGISTRY)
                scrapes.append(time.perf_counter() - t)
        return {
            "wall": walls,
            "hub_cpu": hub_cpus,
            "own_cpu": own_cpus,
            "scrape": scrapes,
            "requests": requests_made / repeat,
            "series": body.count(b"\njupyterhub_user_group_info{"),
        }

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--per-user", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--exporter", type=Path, help="a checkout of jupyterhub-groups-exporter"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-usage-metrics-") as tmp:
        workdir = Path(tmp)
        print(
            f"{args.users} users, each in {args.per_user} of {args.groups} groups; "
            f"{args.repeat} runs each"
        )
        hub = Hub(workdir, group_info=False)
        try:
            hub.populate(args.users, args.groups, args.per_user)
            base = measure_scrapes(hub, args.repeat)
            print(
                f"/hub/metrics without the gauge: {summary(base['wall'])}; hub CPU "
                f"{summary(base['hub_cpu'])}; {base['bytes'] / 1e3:.0f} kB"
            )
            if args.exporter:
                peer = measure_exporter(hub, args.exporter, args.repeat)
                print(
                    f"jupyterhub-groups-exporter update: {summary(peer['wall'])}; "
                    f"hub CPU {summary(peer['hub_cpu'])}; exporter CPU "
                    f"{summary(peer['own_cpu'])}; {peer['requests']:.0f} hub API "
                    f"requests; its scrape {summary(peer['scrape'])}; "
                    f"{peer['series']} series"
                )
        finally:
            hub.close()
        hub = Hub(workdir, group_info=True)
        try:
            ours = measure_scrapes(hub, args.repeat)
            print(
                f"/hub/metrics with hubext's gauge: {summary(ours['wall'])}; hub CPU "
                f"{summary(ours['hub_cpu'])}; {ours['bytes'] / 1e3:.0f} kB; "
                f"{ours['series']} series"
            )
        finally:
            hub.close()


if __name__ == "__main__":
    main()
