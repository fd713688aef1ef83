"""A real JupyterHub for tests: hub, configurable-http-proxy, OIDC provider, servers.

``RunningHub`` starts the demo configuration (``jupyterhub_config.py`` and
``jupyterhub_config.d/*.py``) on free loopback ports, with any extra
configuration a test adds, plus a service token with the scopes the test asks
for. Stopping it is bounded in time and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import textwrap
import time
from pathlib import Path

import requests

from demo.services import DEMO_CONFIG, DemoEnvironment, stop_process

from .hubclient import HubAPI, HubSession

#: Scopes of the test suite's own service token (an admin's view of the hub).
TEST_SERVICE_SCOPES = [
    "admin:users",
    "admin:servers",
    "admin:groups",
    "read:roles",
    "tokens",
]

#: Hub configuration defining ``outage_clock``, a clock for the providers'
#: back-off (``providers[...]["config"]["outage_clock"] = outage_clock``)
#: that a test moves forward with :meth:`RunningHub.move_outage_clock`
#: instead of waiting a back-off out: real time plus the seconds moved.
OUTAGE_CLOCK = """
import pathlib as _pathlib, time as _time

def outage_clock():
    moved = _pathlib.Path(os.environ["HUBEXT_DEMO_DIR"]).parent / "outage-clock"
    return _time.monotonic() + (float(moved.read_text()) if moved.exists() else 0.0)
"""


@contextlib.contextmanager
def running_hub(tmp_path_factory, name: str, extra_config: str = "", accounts=None):
    """A started RunningHub in a new directory, with its own sample accounts."""
    workdir = tmp_path_factory.mktemp(name)
    accounts_file = None
    if accounts is not None:
        accounts_file = workdir / "accounts.json"
        accounts_file.write_text(json.dumps(accounts))
    hub = RunningHub(workdir, extra_config, accounts=accounts_file).start()
    try:
        yield hub
    finally:
        hub.stop()


class RunningHub:
    def __init__(
        self,
        workdir: Path,
        extra_config: str = "",
        accounts: Path | None = None,
        service_scopes: list[str] | None = None,
    ):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = DemoEnvironment.with_free_ports(workdir / "hub")
        self.log_path = workdir / "hub.log"
        self.idp_log_path = workdir / "idp.log"
        self.token = secrets.token_hex(32)
        config = workdir / "jupyterhub_config.py"
        config.write_text(
            textwrap.dedent(
                f"""\
                import os
                load_subconfig({str(DEMO_CONFIG)!r})
                c = get_config()
                c.JupyterHub.services.append(
                    {{"name": "hubext-test", "api_token": os.environ["HUBEXT_TEST_TOKEN"]}}
                )
                c.JupyterHub.load_roles.append(
                    {{"name": "hubext-test", "scopes": {service_scopes or TEST_SERVICE_SCOPES!r},
                      "services": ["hubext-test"]}}
                )
                c.JupyterHub.log_level = "DEBUG"
                """
            )
            + textwrap.dedent(extra_config)
        )
        self._config = config
        self._base_config = config.read_text()
        self._accounts = accounts
        self.idp = self.hub = None
        self.starts = 0

    def ledger_rows(self, url: str | None = None) -> list[dict]:
        """The usage ledger's sessions (at ``url``, by default SQLite beside
        the hub's database), oldest start first; none before the ledger's
        file exists."""
        from sqlalchemy import create_engine, text

        if url is None:
            files = list(Path(self.env.data_dir).rglob("hubext-usage.sqlite"))
            if not files:
                return []
            url = f"sqlite:///{files[0]}"
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                result = conn.execute(
                    text("SELECT * FROM hubext_usage_sessions ORDER BY started_at")
                )
                return [dict(row._mapping) for row in result]
        finally:
            engine.dispose()

    def start(self) -> RunningHub:
        os.environ["HUBEXT_TEST_TOKEN"] = self.token
        with open(self.idp_log_path, "wb") as idp_log:
            self.idp = self.env.start_idp(self._accounts, stdout=idp_log)
        try:
            self._start_hub()
        except Exception:
            self.stop()
            raise
        self.api = HubAPI(self.url, self.token)
        return self

    def _start_hub(self) -> None:
        self.starts += 1
        # Each hub process appends to the same log, after a marker line.
        hub_log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        hub_log.write(f"\n===== hub start {self.starts} =====\n".encode())
        hub_log.flush()
        self._hub_log = hub_log
        self.hub = self.env.start_hub(self._config, stdout=hub_log)

    def reconfigure(self, extra_config: str) -> None:
        """Replace the test's extra configuration (applies at the next start)."""
        self._config.write_text(self._base_config + textwrap.dedent(extra_config))

    def stop_hub(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Stop the hub process only, with ``sig`` (its data directory stays).

        SIGTERM is a clean stop (JupyterHub stops what it manages, as
        configured); SIGKILL is a crash: the proxy and the servers it
        started are left running, as after a real crash.
        """
        self.hub.send_signal(sig)
        self.hub.wait(timeout)
        self._hub_log.close()

    def restart_hub(self) -> None:
        """Start the hub again after :meth:`stop_hub`, on the same database."""
        self._start_hub()

    def restart(self, sig: int = signal.SIGTERM, extra_config: str | None = None):
        """Stop the hub with ``sig`` and start it again on the same database."""
        self.stop_hub(sig)
        if extra_config is not None:
            self.reconfigure(extra_config)
        self._start_hub()
        return self

    @property
    def url(self) -> str:
        return self.env.hub_url

    def session(self) -> HubSession:
        return HubSession(self.url)

    def signed_in(self, account: str, provider: str = "demo") -> HubSession:
        """A browser session signed in as ``account`` (asserts the sign-in worked)."""
        person = self.session()
        r = person.login(provider, account)
        assert r.status_code == 302, (provider, account, r.status_code, r.text[:400])
        return person

    def idp_control(self, method: str, path: str, **kwargs):
        """Call the test identity provider's control API (demo/idp.mjs)."""
        r = requests.request(
            method, f"{self.env.idp_url}/_control/{path}", timeout=10, **kwargs
        )
        r.raise_for_status()
        return r

    def token_for(self, username: str, scopes: list[str] | None = None) -> str:
        """A new API token of ``username`` (all of their permissions by default)."""
        body = {"note": "hubext test"}
        if scopes is not None:
            body["scopes"] = scopes
        r = self.api.request("POST", f"/users/{username}/tokens", json=body)
        r.raise_for_status()
        return r.json()["token"]

    def move_outage_clock(self, seconds: float) -> None:
        """Move the :data:`OUTAGE_CLOCK` of this hub ``seconds`` forward."""
        moved = self.workdir / "outage-clock"
        before = float(moved.read_text()) if moved.exists() else 0.0
        moved.write_text(str(before + seconds))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.hub is not None:
            # JupyterHub stops the single-user servers and the proxy on SIGTERM.
            stop_process(self.hub, timeout=20)
        if self.idp is not None:
            stop_process(self.idp, timeout=5)
        _kill_processes_under(self.env.data_dir)
        if getattr(self, "_hub_log", None):
            self._hub_log.close()


def _kill_processes_under(directory: Path) -> None:
    """Kill leftover processes (servers) whose working directory is in ``directory``."""
    directory = str(directory.resolve())
    deadline = time.monotonic() + 5
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd == directory or cwd.startswith(directory + os.sep):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)
        if time.monotonic() > deadline:
            break
