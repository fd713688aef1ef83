"""Start the demo's processes: the local OpenID Connect provider and the hub.

Used by ``demo/run.py`` (``make demo``) and by the test suite's fixtures, so
the tests run the demo exactly as a person does.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from demo.processes import die_with_parent

REPO = Path(__file__).resolve().parent.parent
IDP_SCRIPT = REPO / "demo" / "idp.mjs"
DEMO_CONFIG = REPO / "jupyterhub_config.py"


def _ephemeral_ports() -> tuple[int, int]:
    """The range the kernel picks outgoing connections' ports from."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(n) for n in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


#: ``LOW-HIGH``: the ports :func:`free_port` gives out (the test suite gives
#: each of its parallel workers a range of its own).
PORT_RANGE_ENV = "HUBEXT_PORT_RANGE"


def port_range() -> tuple[int, int]:
    """Where :func:`free_port` looks: ``$HUBEXT_PORT_RANGE``, or from 10000
    up to the kernel's ephemeral range."""
    configured = os.environ.get(PORT_RANGE_ENV)
    if configured:
        low, high = (int(n) for n in configured.split("-"))
        return low, high
    return 10000, _ephemeral_ports()[0]


def free_port() -> int:
    """A free loopback port, outside the kernel's ephemeral range.

    A port from ``bind(0)`` comes from the ephemeral range, where any
    outgoing connection (the hub's, a test's) may take it before the server
    that is meant to listen there starts; below that range only listeners
    can collide, and a port is checked free before it is given out. In
    :func:`port_range`, so that processes given ranges apart never pick
    the same port.
    """
    low, high = port_range()
    if high - low > 1000:
        for _ in range(100):
            port = random.randrange(low, high)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60, process=None) -> None:
    """Wait until ``url`` answers with a non-error status.

    Fails early if ``process`` exits.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before {url} answered"
            )
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM a process group, then SIGKILL what is left after ``timeout``."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        # Also kills children (the proxy) the leader left behind.
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _die_with_parent() -> None:
    die_with_parent(signal.SIGTERM)


@dataclass
class DemoEnvironment:
    """Ports, paths and the client secret shared by the provider and the hub."""

    data_dir: Path
    port: int = 8000
    hub_port: int = 8081
    proxy_api_port: int = 8001
    idp_port: int = 8090
    client_secret: str = field(default_factory=lambda: os.urandom(24).hex(), repr=False)
    #: The usage page's port (the demo's 40-usage.py reads it).
    usage_port: int = 10101
    #: JUPYTERHUB_CRYPT_KEY, which encrypts auth_state (tokens) in the database.
    crypt_key: str = field(default_factory=lambda: os.urandom(32).hex(), repr=False)
    #: CONFIGPROXY_AUTH_TOKEN: the hub and its proxy use it; the demo reads
    #: the proxy's routes with it, to know when the hub can be reached.
    proxy_auth_token: str = field(
        default_factory=lambda: os.urandom(32).hex(), repr=False
    )

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def idp_url(self) -> str:
        return f"http://127.0.0.1:{self.idp_port}"

    @classmethod
    def with_free_ports(cls, data_dir: Path) -> DemoEnvironment:
        ports: set[int] = set()
        while len(ports) < 5:
            ports.add(free_port())
        port, hub_port, proxy_api_port, idp_port, usage_port = ports
        return cls(
            data_dir=data_dir,
            port=port,
            hub_port=hub_port,
            proxy_api_port=proxy_api_port,
            idp_port=idp_port,
            usage_port=usage_port,
        )

    def hub_is_routed(self) -> bool:
        """True once a request through the proxy reaches this hub.

        The hub answers on its own port (``/hub/health``, logged at debug
        level only) and the proxy has its route. Until then, asking the
        proxy would only fill its log with errors (``404 GET /hub/login``,
        ``Failed to get custom error page``) that mean nothing.
        """
        try:
            urllib.request.urlopen(
                f"http://127.0.0.1:{self.hub_port}/hub/health", timeout=2
            )
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.proxy_api_port}/api/routes",
                headers={"Authorization": f"token {self.proxy_auth_token}"},
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                routes = json.load(response)
        except (OSError, ValueError):
            return False
        return "/" in routes

    def wait_until_routed(self, timeout: float = 90, process=None) -> None:
        """Wait for :meth:`hub_is_routed`; fail early if ``process`` exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"the hub exited with {process.returncode} before it was reachable"
                )
            if self.hub_is_routed():
                return
            time.sleep(0.1)
        raise TimeoutError(f"the hub was not reachable within {timeout} s")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HUBEXT_DEMO_DIR=str(self.data_dir),
            HUBEXT_DEMO_PORT=str(self.port),
            HUBEXT_DEMO_HUB_PORT=str(self.hub_port),
            HUBEXT_DEMO_PROXY_API_PORT=str(self.proxy_api_port),
            HUBEXT_DEMO_IDP_URL=self.idp_url,
            HUBEXT_DEMO_USAGE_PORT=str(self.usage_port),
            HUBEXT_DEMO_CLIENT_SECRET=self.client_secret,
            HUBEXT_IDP_CLIENT_SECRET=self.client_secret,
            JUPYTERHUB_CRYPT_KEY=self.crypt_key,
            CONFIGPROXY_AUTH_TOKEN=self.proxy_auth_token,
        )
        return env

    def start_idp(
        self,
        accounts: Path | None = None,
        stdout=None,
        wait: bool = True,
        die_with_parent: bool = False,
        redirect_uris: tuple[str, ...] = (),
        keep_state: bool = True,
    ) -> subprocess.Popen:
        """Start the provider, with this hub's redirect URIs and ``redirect_uris``
        (other hubs that sign in through it, e.g. a benchmark's peer).

        ``keep_state``: its sessions, tokens and keys in ``data_dir/idp``,
        kept across restarts (the file is rewritten at every change, fine for
        a demo's handful of people); False: in memory only.
        """
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH; install Node.js 20 or newer")
        cmd = [
            node,
            str(IDP_SCRIPT),
            "--port",
            str(self.idp_port),
            "--redirect-uri",
            f"{self.hub_url}/hub/demo/oauth_callback",
            *(arg for uri in redirect_uris for arg in ("--redirect-uri", uri)),
            # where the provider may send a person back after signing out
            # (OpenID Connect RP-initiated logout)
            "--post-logout-redirect-uri",
            f"{self.hub_url}/hub/login",
            "--post-logout-redirect-uri",
            f"{self.hub_url}/hub/logout",
            "--post-logout-redirect-uri",
            f"{self.hub_url}/",
        ]
        if keep_state:
            # its sessions, tokens and keys, kept across restarts
            cmd += ["--state-dir", str(self.data_dir / "idp")]
        if accounts is not None:
            cmd += ["--accounts", str(accounts)]
        process = subprocess.Popen(
            cmd,
            env=self.env(),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
        if wait:
            wait_for_http(
                f"{self.idp_url}/.well-known/openid-configuration", 30, process
            )
        return process

    def start_hub(
        self,
        config: Path = DEMO_CONFIG,
        stdout=None,
        wait=True,
        die_with_parent: bool = False,
    ) -> subprocess.Popen:
        """Start JupyterHub in ``data_dir``.

        ``die_with_parent``: the hub gets SIGTERM (and stops its servers and
        proxy) when the process that started it dies, even by SIGKILL (Linux).
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=self.data_dir,
            env=self.env(),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
        if wait:
            self.wait_until_routed(90, process)
        return process
