"""``make demo`` as a person runs it: real processes, every way of stopping it.

Each test starts demo/run.py (directly or through ``make demo``) with its
state in a temporary directory and free ports, then stops it the way a
person does: Ctrl-C (SIGINT to the terminal's process group), ``kill``
(SIGTERM), closing the terminal (SIGHUP to the group), and ``make`` itself
killed. Nothing the demo started may survive: provider, hub, proxy, culler,
servers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from demo import processes
from demo.services import REPO, free_port

from .hubclient import HubSession, wait_until

pytestmark = pytest.mark.e2e

#: What a running demo consists of, by a piece of each process's command line.
PARTS = {
    "provider": "demo/idp.mjs",
    "hub": "-m jupyterhub -f",
    "proxy": "configurable-http-proxy",
    "culler": "-m hubext.culler",
}
SERVER = "-m jupyterhub.singleuser"


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


class Demo:
    """One started demo: its leader process (run.py or make) and its state."""

    def __init__(self, tmp_path: Path, state: Path, via_make: bool, args=()):
        self.state = state
        self.output = tmp_path / f"demo-{time.monotonic_ns()}.log"
        args = ["--state-dir", str(state), *(args or ["--free-ports"])]
        if via_make:
            # -o install: run the demo target as it is, without reinstalling
            cmd = ["make", "-s", "-o", "install", "demo", f"DEMO_ARGS={' '.join(args)}"]
        else:
            cmd = [sys.executable, "demo/run.py", *args]
        with open(self.output, "wb") as out:
            # its own session, like a terminal's: a signal to the group
            # reaches exactly what the terminal would reach
            self.leader = subprocess.Popen(
                cmd,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    @property
    def url(self) -> str:
        return json.loads((self.state / "demo.lock").read_text())["url"]

    def started(self, timeout: float = 120) -> Demo:
        """Wait for the line a person waits for: where to open the demo."""

        def up():
            assert self.leader.poll() is None, self.log()
            return "hubext demo: open " in self.log()

        assert wait_until(up, timeout), self.log()
        assert wait_until(lambda: self.missing_parts() == [], 30), self.missing_parts()
        return self

    def processes(self) -> dict[int, int]:
        return processes.descendants(self.leader.pid)

    def missing_parts(self) -> list[str]:
        lines = [command_line(pid) for pid in self.processes()]
        return [p for p, text in PARTS.items() if not any(text in c for c in lines)]

    def start_server(self, account: str = "alice") -> None:
        person = HubSession(self.url)
        assert person.login("demo", account).status_code == 302
        r = person.submit_spawn_form({"profile": "standard"})
        assert r.status_code == 302, r.text[:500]

        def running():
            r = person.api("GET", "/user")
            return r.ok and r.json()["servers"].get("", {}).get("ready")

        assert wait_until(running, 60), self.log()
        assert any(SERVER in command_line(pid) for pid in self.processes())

    def wait_stopped(self, everything: dict[int, int], timeout: float = 60) -> None:
        """Wait until the leader and every process recorded in ``everything`` end."""

        def gone():
            self.leader.poll()
            return not [p for p, t in everything.items() if processes.alive(p, t)]

        wait_until(gone, timeout)
        left = {command_line(p) for p, t in everything.items() if processes.alive(p, t)}
        assert not left, (left, self.log())
        assert self.leader.wait(10) is not None

    def kill(self) -> None:
        """Clean up after a failed test: everything this demo started."""
        everything = self.processes()
        everything[self.leader.pid] = 0
        for pid in everything:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.leader.wait()


@pytest.fixture
def demos(tmp_path):
    started: list[Demo] = []

    def start(state=None, via_make=False, args=()) -> Demo:
        demo = Demo(tmp_path, state or tmp_path / "state", via_make, args)
        started.append(demo)
        return demo

    yield start
    for demo in started:
        if demo.leader.poll() is None:
            demo.kill()


@pytest.mark.parametrize(
    ("via_make", "sig", "to_group", "with_server"),
    [
        pytest.param(False, signal.SIGINT, True, False, id="ctrl-c"),
        pytest.param(False, signal.SIGTERM, False, False, id="kill"),
        pytest.param(False, signal.SIGHUP, True, True, id="terminal-closed"),
        pytest.param(True, signal.SIGINT, True, False, id="make-ctrl-c"),
        pytest.param(True, signal.SIGHUP, True, True, id="make-terminal-closed"),
        pytest.param(True, signal.SIGTERM, False, False, id="make-killed"),
        pytest.param(True, signal.SIGKILL, False, True, id="make-killed-hard"),
    ],
)
def test_every_way_of_stopping_stops_everything(
    demos, via_make, sig, to_group, with_server
):
    demo = demos(via_make=via_make).started()
    if with_server:
        demo.start_server()
    everything = demo.processes()
    if to_group:
        os.killpg(demo.leader.pid, sig)
    else:
        os.kill(demo.leader.pid, sig)
    demo.wait_stopped(everything)
    if sig != signal.SIGKILL:
        assert "hubext demo: stopped." in demo.log()


def test_a_second_start_says_where_the_first_runs(demos, tmp_path):
    first = demos().started()
    before = first.processes()
    url = first.url

    # the same state directory: already running, and where
    second = demos()
    assert second.leader.wait(30) == 1
    assert f"already running at {url} (pid {first.leader.pid}" in second.log()

    # another state directory on the same port: the port is taken
    port = url.rsplit(":", 1)[1]
    ports = ["--hub-port", "--proxy-api-port", "--idp-port", "--usage-port"]
    args = ["--port", port, *(f"{o}={free_port()}" for o in ports)]
    third = demos(state=tmp_path / "other", args=args)
    assert third.leader.wait(30) == 1
    assert f"port {port} (--port) is in use" in third.log()

    # the first demo is untouched: the same processes, and it answers
    time.sleep(2)
    assert all(processes.alive(p, t) for p, t in before.items())
    assert requests.get(f"{url}/hub/login", timeout=10).status_code == 200
    assert "Found proxy pid file" not in first.log()
    assert "Traceback" not in first.log() + second.log() + third.log()


def test_the_demo_keeps_its_state_across_restarts(demos, tmp_path):
    options = ["--port", "--hub-port", "--proxy-api-port", "--idp-port", "--usage-port"]
    args = [f"{option}={free_port()}" for option in options]
    state = tmp_path / "state"
    first = demos(state=state, args=args).started()
    alice = HubSession(first.url)
    assert alice.login("demo", "alice").status_code == 302
    options = {"profile": "ocean-model", "profile-option-ocean-model--dataset": "argo"}
    assert alice.submit_spawn_form(options).status_code == 302
    assert wait_until(
        lambda: alice.api("GET", "/user").json()["servers"].get("", {}).get("ready"),
        60,
    )
    (state / "homes" / "alice" / "notes.txt").write_text("kept")
    # a community admin (ocean-lab-admins) and hub admin signs in too
    carol = HubSession(first.url)
    assert carol.login("demo", "carol").status_code == 302
    database = (state / "jupyterhub.sqlite").stat().st_ino

    everything = first.processes()
    os.kill(first.leader.pid, signal.SIGTERM)
    first.wait_stopped(everything)

    second = demos(state=state, args=args).started()
    assert "Traceback" not in second.log()
    assert (state / "jupyterhub.sqlite").stat().st_ino == database
    # the same people, still signed in (same cookie secret and database)
    me = alice.api("GET", "/user")
    assert me.status_code == 200, me.text
    assert me.json()["groups"] == ["ocean-lab"]
    assert carol.api("GET", "/user").json()["admin"] is True
    # her last server options are remembered, and her home kept
    form = alice.spawn_form().text
    assert '"profile": "ocean-model", "dataset": "argo"' in form
    assert (state / "homes" / "alice" / "notes.txt").read_text() == "kept"
    # and she starts her server again; a new sign-in works too
    assert alice.submit_spawn_form(options).status_code == 302
    assert wait_until(
        lambda: alice.api("GET", "/user").json()["servers"].get("", {}).get("ready"),
        60,
    )
    assert HubSession(second.url).login("demo", "bob").status_code == 302


def test_the_demo_logs_nothing_to_act_on_at_start_and_sign_in(demos):
    from .test_demo_e2e import NOISE

    demo = demos().started()
    for account in ("carol", "alice"):
        assert HubSession(demo.url).login("demo", account).status_code == 302
    lines = demo.log().splitlines()
    assert [line for line in lines if any(n in line for n in NOISE)] == []
    assert [line for line in lines if "[ConfigProxy]" in line and "error" in line] == []
