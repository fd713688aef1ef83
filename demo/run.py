"""Run the hubext demo hub on http://127.0.0.1:8000 (``make demo``).

Starts the local OpenID Connect provider (demo/idp.mjs) on port 8090 and a
JupyterHub configured by jupyterhub_config.d/*.py, keeping their state (the
database, homes, shared folders, keys) in .hubext-demo/ across runs.

Every way of stopping it stops everything it started (hub, proxy, provider,
culler, servers): Ctrl-C, SIGTERM, closing the terminal (SIGHUP), and its
parent (``make``) dying. One demo runs per state directory; a second start
says where the first one runs and exits with status 1, touching nothing.

Options (``make demo DEMO_ARGS="..."``): ``--state-dir DIR`` (default
$HUBEXT_DEMO_DIR or .hubext-demo/), ``--port``, ``--hub-port``,
``--proxy-api-port``, ``--idp-port``, ``--usage-port`` (the usage page), or
``--free-ports`` for any free ones.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo import processes
from demo.services import REPO, DemoEnvironment, stop_process

#: Signals that mean "stop the demo": Ctrl-C, kill, the terminal closed.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
#: Where a running demo says who and where it is, in its state directory.
LOCK_FILE = "demo.lock"


def say(*lines: str) -> None:
    """Print, unless the terminal is gone (closed: SIGHUP, then EIO)."""
    with contextlib.suppress(OSError, ValueError):
        print(*lines, sep="\n", flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    default_dir = os.environ.get("HUBEXT_DEMO_DIR") or str(REPO / ".hubext-demo")
    parser = argparse.ArgumentParser(
        prog="make demo", description="Run the hubext demo hub."
    )
    parser.add_argument("--state-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--hub-port", type=int, default=8081)
    parser.add_argument("--proxy-api-port", type=int, default=8001)
    parser.add_argument("--idp-port", type=int, default=8090)
    parser.add_argument("--usage-port", type=int, default=10101)
    parser.add_argument(
        "--free-ports", action="store_true", help="pick free ports for all five"
    )
    return parser.parse_args(argv)


class AlreadyRunning(Exception):
    pass


def take_lock(data_dir: Path, info: dict):
    """Hold the state directory's lock for this process's lifetime.

    The kernel releases a ``flock`` when its holder dies, however it dies,
    so a stale lock file never blocks the next start.
    """
    path = data_dir / LOCK_FILE
    lock = open(path, "a+")  # noqa: SIM115 (held until exit)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        try:
            running = json.loads(lock.read())
        except ValueError:
            running = {}
        lock.close()
        raise AlreadyRunning(running) from None
    lock.truncate(0)
    lock.write(json.dumps(info))
    lock.flush()
    return lock


def busy_ports(env: DemoEnvironment) -> list[str]:
    """The demo's ports that some program already listens on."""
    busy = []
    for name, port in [
        ("--port", env.port),
        ("--hub-port", env.hub_port),
        ("--proxy-api-port", env.proxy_api_port),
        ("--idp-port", env.idp_port),
        ("--usage-port", env.usage_port),
    ]:
        with socket.socket() as s:
            # as the servers do: a port a stopped demo left in TIME_WAIT is free
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"{port} ({name})")
    return busy


def crypt_key(data_dir: Path) -> str:
    """The key that encrypts auth_state, kept across demo runs."""
    key_file = data_dir / "crypt_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex())
    return key_file.read_text().strip()


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except OSError:
        return False


class Runner:
    """Starts the provider and the hub; stops everything on any stop request."""

    def __init__(self, env: DemoEnvironment):
        self.env = env
        self.stop_reason: str | None = None
        self.parent = os.getppid()
        self.idp = self.hub = None

    def request_stop(self, signum, frame) -> None:
        self.stop_reason = signal.Signals(signum).name

    def should_stop(self) -> bool:
        if self.stop_reason is None and os.getppid() != self.parent:
            self.stop_reason = "its parent process ended"
        return self.stop_reason is not None

    def wait_for(self, ready, timeout: float) -> bool:
        """Until ``ready()`` (True), a stop request or a dead child (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.should_stop():
            for process in (self.idp, self.hub):
                if process is not None and process.poll() is not None:
                    return False
            if ready():
                return True
            time.sleep(0.2)
        return False

    def run(self, accounts: dict) -> int:
        env = self.env
        self.idp = env.start_idp(wait=False, die_with_parent=True)
        if not self.wait_for(
            lambda: answers(f"{env.idp_url}/.well-known/openid-configuration"), 30
        ):
            return self._failed("the identity provider", self.idp)
        self.hub = env.start_hub(wait=False, die_with_parent=True)
        # not through the proxy before it routes to the hub: each such
        # request is an error line in the proxy's log
        if not self.wait_for(env.hub_is_routed, 120):
            return self._failed("the hub", self.hub)
        say(
            "",
            f"hubext demo: open {env.hub_url}/ and sign in. Sample accounts:",
            *(f"  {name:8} {a.get('name', '')}" for name, a in accounts.items()),
            f"State is kept in {env.data_dir} (a restart finds it again).",
            "Stop with Ctrl-C.",
            "",
        )
        while not self.should_stop():
            if self.hub.poll() is not None:
                say(f"hubext demo: the hub exited with status {self.hub.returncode}")
                return self.hub.returncode or 1
            if self.idp.poll() is not None:
                say("hubext demo: the identity provider exited; stopping the hub")
                return self.idp.returncode or 1
            time.sleep(0.5)
        return 0

    def _failed(self, what: str, process) -> int:
        if self.should_stop():
            return 0
        if process.poll() is None:
            say(f"hubext demo: {what} did not answer in time")
            return 1
        say(f"hubext demo: {what} exited with status {process.returncode}")
        return process.returncode or 1

    def stop(self) -> None:
        """Stop the hub (it stops its servers, proxy and culler), then the rest."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C waits for this
        if self.stop_reason:
            say(f"hubext demo: stopping ({self.stop_reason})...")
        started = processes.descendants(os.getpid())
        if self.hub is not None:
            stop_process(self.hub, timeout=30)
        if self.idp is not None:
            stop_process(self.idp, timeout=5)
        # Whatever the hub left (or orphaned, if it was killed) is ours.
        started.update(processes.descendants(os.getpid()))
        processes.stop_all(started)
        say("hubext demo: stopped.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    data_dir = args.state_dir.resolve()
    if args.free_ports:
        env = DemoEnvironment.with_free_ports(data_dir)
    else:
        env = DemoEnvironment(
            data_dir=data_dir,
            port=args.port,
            hub_port=args.hub_port,
            proxy_api_port=args.proxy_api_port,
            idp_port=args.idp_port,
            usage_port=args.usage_port,
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = take_lock(data_dir, {"pid": os.getpid(), "url": env.hub_url})
    except AlreadyRunning as e:
        running = e.args[0]
        say(
            f"hubext demo: already running at {running.get('url', '?')} "
            f"(pid {running.get('pid', '?')}, state in {data_dir}).",
            "Use that one, or stop it first (Ctrl-C in its terminal, or "
            f"kill {running.get('pid', '<pid>')}).",
        )
        return 1
    busy = busy_ports(env)
    if busy:
        say(
            f"hubext demo: port {', '.join(busy)} is in use by another program.",
            "Stop it, or choose other ports: make demo DEMO_ARGS='--free-ports'.",
        )
        return 1
    env.crypt_key = crypt_key(data_dir)
    accounts = json.loads((REPO / "demo" / "accounts.json").read_text())

    runner = Runner(env)
    for sig in STOP_SIGNALS:
        signal.signal(sig, runner.request_stop)
    processes.die_with_parent(signal.SIGTERM)  # make killed hard
    processes.become_subreaper()  # servers orphaned by a killed hub
    try:
        return runner.run(accounts)
    finally:
        runner.stop()
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
