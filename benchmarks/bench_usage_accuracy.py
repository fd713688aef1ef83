"""Accuracy of the usage ledger: a simulated timeline, by time travel.

A discrete-event simulation of one hub and its users' servers over weeks, in
seconds of real time (nothing sleeps). hubext's real hooks record it:
:class:`~hubext.spawners.usage.UsageRecordingMixin` on a spawner whose
servers are the simulation's (``start()`` takes the server's start-up time
on the simulated clock, ``poll()`` says whether it still runs), with the
simulated clock as its ``usage_now()``; the hub's ledger is made by
:func:`~hubext.spawners.usage.hub_ledger` and writes from its own thread to a
real SQLite file; the numbers compared are those of ``hubext usage report
--format json`` on that file (the command's own ``main``, in-process).

The simulation drives the spawner the way JupyterHub does: ``start()`` then
``get_state()`` saved in the hub's database; ``poll()`` every
``poll_interval`` with JupyterHub's default 10 % jitter (Tornado's
``PeriodicCallback``); ``stop()`` then ``clear_state()``. Sessions end:

- stopped by their user, by an admin, or culled (through the hub; the end
  reason is given with :data:`~hubext.usage.model.stop_reason`, as the
  simulation has no HTTP request for the hooks to read it from);
- the server dies on its own, and the next poll finds it;
- the start fails after its start-up time;
- the hub goes away: a **crash** or a **restart** that keeps the servers
  running (zero-to-jupyterhub's ``cleanup_servers = False``): the spawner
  objects and the ledger are thrown away (the ledger's writer had written
  everything: events still queued at the instant of a crash would be lost,
  which is not simulated), and after some downtime a new hub makes new
  spawners from the saved state (``load_state()``) and polls them; its new
  ledger closes the previous hub's open sessions at their last heartbeat
  and a surviving server gets a new session from that poll. The downtime
  itself is not counted, by design: nobody saw the servers then;
- a hub shutdown that stops every server (``cleanup_servers = True``).

Ground truth is the simulation's own: a server run lasts from the start
request to the moment its server is gone (stopped, dead, failed). The
simulation also works out, from the polls it made, what the ledger should
hold (every session's start and end under the rules above); the report must
equal that to the microsecond, and the differences from the truth must stay
in their bounds: none for what is stopped through the hub, at most one poll
period (interval x 1.05, the jitter) for a death, a crash cuts a session at
most one poll period (or its start-up time plus the first poll period, for a
server not polled yet) before the crash.

Side by side, for the same timeline:

- JupyterHub's own ``server-action`` events: a ``start`` when a server is
  up, a ``stop`` when a request through the hub stopped it (a server that
  dies, a hub shutdown or a crash emits none; a resumed server no
  ``start``): starts paired with the next stop, an unpaired start dropped.
  Given the charged community for free (the events carry none).
- 2i2c's attribution: each user's true server time (as if measured
  exactly) joined with ``jupyterhub_user_group_info``: a user in several
  groups counts in each of them (the exporter's ``double_count``) and in
  ``multiple``.

    .venv/bin/python benchmarks/bench_usage_accuracy.py [--sessions 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import io
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from jupyterhub.spawner import Spawner
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from traitlets.config import Config

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hubext import cli  # noqa: E402
from hubext.spawners import usage as usage_hooks  # noqa: E402
from hubext.spawners.usage import UsageRecordingMixin  # noqa: E402
from hubext.usage.model import HUB_ACCOUNT, EndReason, sessions, stop_reason  # noqa: E402
from hubext.usage.store import make_engine  # noqa: E402
from tests.spawner_objects import HUB, hub_user  # noqa: E402

#: The simulation starts here (in the past: a new hub's ledger closes the
#: sessions started before its real "now").
EPOCH = datetime(2025, 3, 3, tzinfo=UTC)
SECOND = 1_000_000  # the simulation counts microseconds
HOUR = 3600 * SECOND

THROUGH_HUB = {
    "stopped_by_user": EndReason.STOPPED_BY_USER,
    "stopped_by_admin": EndReason.STOPPED_BY_ADMIN,
    "culled": EndReason.CULLED,
}
#: how a successfully started server's run ends, and how likely
OUTCOMES = {"stopped_by_user": 45, "culled": 25, "stopped_by_admin": 5, "died": 25}


def moment(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass
class Params:
    sessions: int = 10_000
    users: int = 400
    communities: int = 12
    admins: int = 4
    #: share of users in two or three communities
    several: float = 0.3
    days: float = 20.0
    poll_interval: float = 30.0  # seconds, JupyterHub's default
    poll_jitter: float = 0.1  # JupyterHub's default
    mean_minutes: float = 40.0
    failed_starts: float = 0.04
    crashes: int = 8
    restarts: int = 8
    cleanups: int = 2
    seed: int = 2026

    @property
    def max_gap(self) -> int:
        """The longest time between two polls (with JupyterHub's jitter)."""
        return int(self.poll_interval * (1 + self.poll_jitter / 2) * SECOND)


@dataclass
class Run:
    """One true run of one server: the ground truth."""

    user: str
    community: str  # charged (HUB_ACCOUNT: an admin's profile of no community)
    requested: int
    latency: int
    fails: bool
    outcome: str  # planned end, see OUTCOMES
    length: int
    up: int | None = None
    ended: int | None = None
    how: str = ""  # how it really ended
    #: the ledger sessions expected: [start, end] (end None while open)
    expected: list = field(default_factory=list)
    last_seen: int = 0
    polled: bool = False
    #: differences from the truth, by cause (microseconds)
    detection: int = 0
    cut: int = 0
    downtime: int = 0
    cut_gaps: list = field(default_factory=list)  # (gap, polled yet)
    crossed_hub: bool = False


class Sleep:
    """Awaited by a simulated spawner: resume at ``until`` (simulated)."""

    def __init__(self, until: int):
        self.until = until

    def __await__(self):
        yield self


class StartFailed(Exception):
    pass


class SimulatedServers(Spawner):
    """A spawner whose servers are the simulation's."""

    sim: Simulation
    hub_life: int

    async def start(self):
        run = self.sim.runs_by_user[self.user.name]
        await Sleep(run.requested + run.latency)
        if run.fails:
            raise StartFailed(f"{self.user.name}'s server did not start")
        self.sim.alive[self.user.name] = True
        return f"http://127.0.0.1:1/user/{self.user.name}/"

    async def poll(self):
        return None if self.sim.alive.get(self.user.name) else 1

    async def stop(self, now=False):
        self.sim.alive[self.user.name] = False


class SimulatedSpawner(UsageRecordingMixin, SimulatedServers):
    """The simulated spawner with hubext's usage hooks."""

    @property
    def communities(self):
        return self.sim.communities

    def usage_now(self) -> datetime:
        return moment(self.sim.now)

    def _gone(self) -> bool:
        # a hub that crashed or shut down runs no more code
        return self.hub_life != self.sim.hub_life

    def usage_ledger(self):
        return None if self._gone() else super().usage_ledger()

    def usage_metrics(self):
        return None if self._gone() else super().usage_metrics()


class Simulation:
    def __init__(self, params: Params, db_url: str, hub_db_url: str):
        self.p = params
        self.rng = random.Random(params.seed)
        self.db_url = db_url
        self.config = Config()
        self.config.UsageLedger.db_url = db_url
        self.config.Spawner.poll_interval = int(params.poll_interval)
        self.now = 0
        self.end = int(params.days * 86400 * SECOND)
        self._queue: list = []
        self._seq = 0
        self.community_slugs = [f"community-{i:02d}" for i in range(params.communities)]
        # what CommunityOptionsMixin gives the hooks: the hub's communities
        self.communities = [SimpleNamespace(slug=s) for s in self.community_slugs]
        # the hub's own database session (JupyterHub's ``user.db``)
        self.hub_db_engine = create_engine(hub_db_url)
        self.hub_db_session = Session(self.hub_db_engine)
        self.groups: dict[str, list[str]] = {}
        self.admins: set[str] = set()
        for i in range(params.users):
            name = f"user{i:04d}"
            k = 1
            if self.rng.random() < params.several:
                k = self.rng.choice([2, 2, 3])
            self.groups[name] = self.rng.sample(self.community_slugs, k)
            if i < params.admins:
                self.admins.add(name)
        self.runs: list[Run] = []
        self.runs_by_user: dict[str, Run] = {}  # the user's current run
        self.alive: dict[str, bool] = {}  # the world: is the server up
        self.hub_life = 0
        self.hub_up = True
        self.hub_down_at = 0
        self.spawners: dict[str, SimulatedSpawner] = {}
        self.hub_db: dict[str, dict] = {}  # spawner state of running servers
        self.postponed: list = []  # what users asked while the hub was down
        self.suspended: list = []  # coroutines of a hub that went away
        self.server_actions: list[tuple[int, str, str, str]] = []
        self.hub_events: list[tuple[str, int, int]] = []

    # -- the scheduler ---------------------------------------------------------

    def at(self, when: int, action, *args) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, action, args))

    def drive(self, coro, done=None, failed=None, life=None) -> None:
        """Run a spawner coroutine, resuming it on the simulated clock."""
        life = self.hub_life if life is None else life
        if life != self.hub_life:
            self.suspended.append(coro)  # its hub is gone: never resumed
            return
        try:
            awaited = coro.send(None)
        except StopIteration as result:
            if done:
                done(result.value)
            return
        except Exception as e:
            if failed is None:
                raise
            failed(e)
            return
        assert isinstance(awaited, Sleep), awaited
        self.at(awaited.until, self.drive, coro, done, failed, life)

    def run(self) -> None:
        self._plan_hub_events()
        for user in self.groups:
            self.at(self._gap(first=True), self.request, user)
        while self._queue:
            when, _, action, args = heapq.heappop(self._queue)
            self.now = when
            action(*args)

    def _gap(self, first=False) -> int:
        p = self.p
        per_user = p.sessions / p.users
        cycle = p.days * 86400 / per_user
        mean = max(cycle - p.mean_minutes * 60, 60)
        seconds = (
            self.rng.uniform(0, cycle) if first else self.rng.expovariate(1 / mean)
        )
        return self.now + int(seconds * SECOND)

    def _plan_hub_events(self) -> None:
        kinds = (
            ["crash"] * self.p.crashes
            + ["restart"] * self.p.restarts
            + ["cleanup"] * self.p.cleanups
        )
        taken: list[int] = []
        # apart enough for the downtimes (10 min at most) not to overlap
        apart = min(2 * HOUR, int(0.9 * self.end / (3 * max(len(kinds), 1))))
        for kind in kinds:
            while True:
                when = int(self.rng.uniform(0.05, 0.95) * self.end)
                if all(abs(when - t) > apart for t in taken):
                    break
            taken.append(when)
            minutes = self.rng.uniform(0.5, 10 if kind == "crash" else 3)
            self.at(when, self.hub_down, kind, int(minutes * 60 * SECOND))

    # -- the hub ---------------------------------------------------------------

    def spawner(self, user: str) -> SimulatedSpawner:
        spawner = self.spawners.get(user)
        if spawner is None:
            hub_user_ = hub_user(user, self.groups[user])
            hub_user_.db = self.hub_db_session
            spawner = SimulatedSpawner(config=self.config, user=hub_user_, hub=HUB)
            spawner.sim = self
            spawner.hub_life = self.hub_life
            self.spawners[user] = spawner
        return spawner

    def request(self, user: str) -> None:
        """The user asks for a server."""
        if len(self.runs) >= self.p.sessions:
            return
        if not self.hub_up:
            self.postponed.append((self.request, user))
            return
        rng = self.rng
        if user in self.admins and rng.random() < 0.5:
            community, options = HUB_ACCOUNT, {"profile": "admin"}
        else:
            community = rng.choice(self.groups[user])
            options = {"profile": "small", "community": community, "image": "scipy"}
        run = Run(
            user=user,
            community=community,
            requested=self.now,
            latency=int(rng.uniform(2, 20) * SECOND),
            fails=rng.random() < self.p.failed_starts,
            outcome=rng.choices(list(OUTCOMES), weights=OUTCOMES.values())[0],
            length=int(
                min(rng.expovariate(1 / (self.p.mean_minutes * 60)), 12 * 3600) * SECOND
            )
            + 60 * SECOND,
        )
        run.last_seen = self.now
        run.expected.append([self.now, None])
        self.runs.append(run)
        self.runs_by_user[user] = run
        spawner = self.spawner(user)
        spawner.user_options = options
        self.drive(
            spawner.start(),
            done=lambda url: self._started(run, spawner),
            failed=lambda e: self._start_failed(run, spawner),
        )

    def _started(self, run: Run, spawner) -> None:
        run.up = self.now
        # start() returning is a sighting: the hooks record a heartbeat then
        run.last_seen = self.now
        self.hub_db[run.user] = spawner.get_state()
        self.server_actions.append((self.now, run.user, "start", run.community))
        self._start_polling(run, self.now)
        if run.outcome == "died":
            self.at(self.now + run.length, self.die, run)
        else:
            self.at(self.now + run.length, self.stop_through_hub, run, run.outcome)

    def _start_failed(self, run: Run, spawner) -> None:
        self._ended(run, "failed_to_start")
        # JupyterHub stops a spawner whose start failed
        self.drive(spawner.stop())
        spawner.clear_state()

    def _ended(self, run: Run, how: str, *, recorded: bool = True) -> None:
        run.ended, run.how = self.now, how
        if recorded:
            run.expected[-1][1] = self.now
        if self.runs_by_user.get(run.user) is run:
            self.at(self._gap(), self.request, run.user)

    def _start_polling(self, run: Run, since: int) -> None:
        self.at(self._next_poll(since), self.poll, run, self.hub_life)

    def _next_poll(self, since: int) -> int:
        factor = 1 + self.p.poll_jitter * (self.rng.random() - 0.5)
        return since + int(self.p.poll_interval * factor * SECOND)

    def poll(self, run: Run, life: int) -> None:
        if life != self.hub_life or (run.ended is not None and run.how != "died"):
            return
        if run.expected[-1][1] is not None:  # already closed (found dead)
            return
        spawner = self.spawners[run.user]
        status = []
        self.drive(spawner.poll(), done=status.append)
        if status[0] is None:
            run.last_seen, run.polled = self.now, True
            self.at(self._next_poll(self.now), self.poll, run, life)
            return
        # found dead: the ledger closes the session now
        run.expected[-1][1] = self.now
        run.detection += self.now - run.ended
        self._hub_forgets(run, spawner)

    def _hub_forgets(self, run: Run, spawner) -> None:
        """JupyterHub's poll callback: stop the spawner, forget its state."""
        self.drive(spawner.stop())
        spawner.clear_state()
        self.hub_db.pop(run.user, None)
        self.at(self._gap(), self.request, run.user)

    def die(self, run: Run) -> None:
        """The server dies on its own (the hub is not told)."""
        if run.ended is not None:
            return
        self.alive[run.user] = False
        run.ended, run.how = self.now, "died"

    def stop_through_hub(self, run: Run, how: str) -> None:
        """A user, an admin or the culler stops the server (REST)."""
        if run.ended is not None:
            return
        if not self.hub_up:
            self.postponed.append((self.stop_through_hub, run, how))
            return
        spawner = self.spawners[run.user]
        token = stop_reason.set(THROUGH_HUB[how])
        try:
            self.drive(spawner.stop())
        finally:
            stop_reason.reset(token)
        spawner.clear_state()
        self.hub_db.pop(run.user, None)
        if run.up is not None:
            self.server_actions.append((self.now, run.user, "stop", run.community))
        self._ended(run, how if run.up is not None else "failed_to_start")

    def hub_down(self, kind: str, downtime: int) -> None:
        self.hub_events.append((kind, self.now, downtime))
        active = [
            r for r in self.runs_by_user.values() if r.ended is None or r.how == "died"
        ]
        active = [r for r in active if r.expected and r.expected[-1][1] is None]
        if kind == "cleanup":
            # the hub stops every server it runs (no request: "hub_restart")
            for run in active:
                spawner = self.spawners[run.user]
                self.drive(spawner.stop())
                spawner.clear_state()
                self.hub_db.pop(run.user, None)
                run.expected[-1][1] = self.now
                if run.ended is not None:  # died, not found yet
                    run.detection += self.now - run.ended
                    continue
                run.ended, run.how = (
                    self.now,
                    ("hub_cleanup" if run.up is not None else "failed_to_start"),
                )
            self.postponed.extend((self.request, r.user) for r in active)
        else:
            for run in active:
                run.crossed_hub = True
                run.expected[-1][1] = run.last_seen
                lost_until = self.now if run.ended is None else run.ended
                run.cut += lost_until - run.last_seen
                run.cut_gaps.append((self.now - run.last_seen, run.polled))
                if run.up is None:  # a start in progress is abandoned
                    run.ended, run.how = self.now, "start_cut_by_hub"
                    self.postponed.append((self.request, run.user))
        # the hub's process is gone: its spawners, its ledger (written up to now)
        ledger = usage_hooks._ledgers.pop(self.db_url, None)
        if ledger is not None:
            ledger.wait_idle(60)
            ledger.close()
        self.hub_life += 1
        self.hub_up = False
        self.hub_down_at = self.now
        self.spawners = {}
        self.at(self.now + downtime, self.hub_back)

    def hub_back(self) -> None:
        """A new hub: spawners from the saved state, each polled once."""
        self.hub_up = True
        down_at = self.hub_down_at
        for user, state in list(self.hub_db.items()):
            run = self.runs_by_user[user]
            spawner = self.spawner(user)
            spawner.load_state(state)
            status = []
            self.drive(spawner.poll(), done=status.append)
            if run.ended is None or run.ended > down_at:
                lost_until = self.now if run.ended is None else run.ended
                run.downtime += lost_until - down_at
            if status[0] is None:
                run.expected.append([self.now, None])
                run.last_seen, run.polled = self.now, True
                self._start_polling(run, self.now)
            else:  # died while no hub was there: nothing recorded
                self._hub_forgets(run, spawner)
        postponed, self.postponed = self.postponed, []
        for action, *args in postponed:
            self.at(self.now + int(self.rng.uniform(1, 120) * SECOND), action, *args)

    def finish(self) -> None:
        """At the end, an admin stops every server still running."""
        self.now = max(self.now, self.end)
        for run in list(self.runs_by_user.values()):
            if run.expected[-1][1] is None:
                if run.how == "died":
                    self.poll(run, self.hub_life)
                else:
                    self.stop_through_hub(run, "stopped_by_admin")
        ledger = usage_hooks._ledgers.pop(self.db_url, None)
        if ledger is not None:
            ledger.wait_idle(120)
            ledger.close()
        self.hub_db_session.close()
        self.hub_db_engine.dispose()


# -- what each way counts --------------------------------------------------------


def truth_by_community(runs: list[Run]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for run in runs:
        totals[run.community] += run.ended - run.requested
    return totals


def expected_by_community(runs: list[Run]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for run in runs:
        for start, end in run.expected:
            totals[run.community] += end - start
    return totals


def server_action_by_community(events) -> tuple[dict[str, int], int]:
    """Starts paired with the next stop of the same server; unpaired dropped."""
    totals: dict[str, int] = defaultdict(int)
    unpaired = 0
    open_starts: dict[str, tuple[int, str]] = {}
    for when, user, action, community in sorted(events):
        if action == "start":
            if user in open_starts:
                unpaired += 1
            open_starts[user] = (when, community)
        elif user in open_starts:
            started, charged = open_starts.pop(user)
            totals[charged] += when - started
    return totals, unpaired + len(open_starts)


def user_group_info_by_group(runs: list[Run], groups) -> dict[str, int]:
    """2i2c: true per-user time joined with jupyterhub_user_group_info."""
    per_user: dict[str, int] = defaultdict(int)
    for run in runs:
        per_user[run.user] += run.ended - run.requested
    totals: dict[str, int] = defaultdict(int)
    for user, us in per_user.items():
        names = groups[user]
        for name in names:
            totals[name] += us
        if len(names) > 1:
            totals["multiple"] += us
    return totals


def report_by_community(db_url: str, start: datetime, end: datetime) -> dict:
    """``hubext usage report --by community --format json`` on the ledger."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(
            [
                "usage",
                "report",
                "--db-url",
                db_url,
                "--from",
                start.isoformat(),
                "--to",
                end.isoformat(),
                "--now",
                end.isoformat(),
                "--by",
                "community",
                "--format",
                "json",
            ]
        )
    if status != 0:
        raise RuntimeError(f"hubext usage report exited with {status}")
    report = json.loads(out.getvalue())
    rows = {
        row["community"]: round(row["server_seconds"] * SECOND)
        for row in report["rows"]
    }
    return {"rows": rows, "total": round(report["total"]["server_seconds"] * SECOND)}


def ledger_rows(db_url: str) -> list:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(sessions)))
    finally:
        engine.dispose()


# -- checks ------------------------------------------------------------------------


@dataclass
class Outcome:
    sim: Simulation
    report: dict
    rows: list
    seconds: float
    problems: list[str] = field(default_factory=list)


def simulate(params: Params, workdir: Path) -> Outcome:
    db_url = f"sqlite:///{workdir / 'hubext-usage.sqlite'}"
    t = time.perf_counter()
    sim = Simulation(params, db_url, f"sqlite:///{workdir / 'jupyterhub.sqlite'}")
    sim.run()
    sim.finish()
    seconds = time.perf_counter() - t
    report = report_by_community(db_url, EPOCH, moment(sim.now) + timedelta(days=1))
    outcome = Outcome(sim, report, ledger_rows(db_url), seconds)
    outcome.problems = check(outcome)
    return outcome


def check(outcome: Outcome) -> list[str]:
    """Every property the ledger promises, as a list of violations (none: ok)."""
    sim, p = outcome.sim, outcome.sim.p
    problems = []
    expected = expected_by_community(sim.runs)
    got = outcome.report["rows"]
    for community in sorted(set(expected) | set(got)):
        if expected.get(community, 0) != got.get(community, 0):
            problems.append(
                f"{community}: report {got.get(community, 0)} µs, expected "
                f"{expected.get(community, 0)} µs"
            )
    if sum(got.values()) != outcome.report["total"]:
        problems.append("the communities' rows do not add up to the total")
    # session by session: every expected session is in the ledger, as expected
    by_start = {(r.username, r.started_at): r for r in outcome.rows}
    wanted = {
        (run.user, moment(start)): (run, start, end)
        for run in sim.runs
        for start, end in run.expected
    }
    if len(by_start) != len(outcome.rows) or set(by_start) != set(wanted):
        problems.append(
            f"{len(outcome.rows)} sessions in the ledger, {len(wanted)} expected"
        )
    for key, (run, _, end) in wanted.items():
        row = by_start.get(key)
        if row is None:
            continue
        if row.stopped_at != moment(end):
            problems.append(f"{key}: ended {row.stopped_at}, expected {moment(end)}")
        if row.community != run.community:
            problems.append(f"{key}: charged to {row.community}, not {run.community}")
    for run in sim.runs:
        recorded = sum(end - start for start, end in run.expected)
        exact = not run.crossed_hub and run.how != "died"
        if exact and recorded != run.ended - run.requested:
            problems.append(f"{run.user} at {run.requested}: not exact")
        if run.detection < 0 or run.detection > p.max_gap:
            problems.append(f"{run.user} at {run.requested}: death found late")
        for gap, polled in run.cut_gaps:
            bound = p.max_gap if polled else run.latency + p.max_gap
            if not 0 <= gap <= bound:
                problems.append(f"{run.user} at {run.requested}: cut {gap} µs early")
        if (
            recorded
            != run.ended - run.requested + run.detection - run.cut - run.downtime
        ):
            problems.append(f"{run.user} at {run.requested}: error not explained")
    return problems


# -- the tables --------------------------------------------------------------------


def hours(us: int) -> str:
    return f"{us / HOUR:,.2f}"


def pct(value: int, truth: int) -> str:
    return f"{(value - truth) / truth:+.2%}" if truth else "-"


def print_tables(outcome: Outcome) -> None:
    sim, p = outcome.sim, outcome.sim.p
    runs = sim.runs
    how = defaultdict(int)
    for run in runs:
        how[run.how] += 1
    kinds = defaultdict(int)
    for kind, _, _ in sim.hub_events:
        kinds[kind] += 1
    downtime = sum(d for _, _, d in sim.hub_events)
    print(
        f"{len(runs):,} server runs of {p.users} users in {p.communities} communities "
        f"over {p.days:g} days, poll_interval {p.poll_interval:g} s (jitter "
        f"{p.poll_jitter:g}); {len(outcome.rows):,} ledger sessions; simulated in "
        f"{outcome.seconds:.1f} s"
    )
    print(
        "runs ended: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(how.items()))
        + f"; hub: {kinds['crash']} crashes, {kinds['restart']} restarts keeping "
        f"the servers, {kinds['cleanup']} shutdowns stopping them "
        f"({downtime / SECOND / 60:.0f} min down in all)"
    )
    truth = truth_by_community(runs)
    got = outcome.report["rows"]
    per = defaultdict(lambda: defaultdict(int))
    for run in runs:
        c = per[run.community]
        c["runs"] += 1
        c["detection"] += run.detection
        c["cut"] += run.cut
        c["downtime"] += run.downtime
    expected = expected_by_community(runs)

    print("\nThe ledger (hubext usage report) against the truth, per community")
    header = (
        f"{'community':14} {'runs':>6} {'truth h':>10} {'report h':>10} "
        f"{'report-truth s':>15} {'deaths +s':>10} {'crash cut -s':>13} "
        f"{'downtime -s':>12} {'unexplained':>12}"
    )
    print(header)
    print("-" * len(header))
    totals = defaultdict(int)
    for community in sorted(truth):
        c = per[community]
        row = {
            "runs": c["runs"],
            "truth": truth[community],
            "report": got.get(community, 0),
            "detection": c["detection"],
            "cut": c["cut"],
            "downtime": c["downtime"],
        }
        row["unexplained"] = row["report"] - (
            row["truth"] + row["detection"] - row["cut"] - row["downtime"]
        )
        for k, v in row.items():
            totals[k] += v
        _ledger_line(community, row)
    print("-" * len(header))
    _ledger_line("total", totals)
    assert sum(expected.values()) == totals["truth"] + totals["detection"] - (
        totals["cut"] + totals["downtime"]
    )

    exact = [r for r in runs if not r.crossed_hub and r.how != "died"]
    died = [r for r in runs if r.how == "died" and r.detection]
    gaps = [(g, polled) for r in runs for g, polled in r.cut_gaps]
    print(
        f"\nended through the hub, no hub crash in between: {len(exact):,} runs, "
        f"ledger - truth = 0 µs for "
        f"{sum(sum(e - s for s, e in r.expected) == r.ended - r.requested for r in exact):,}"
    )
    if died:
        delays = sorted(r.detection for r in died)
        print(
            f"died, found by a poll: {len(died):,} runs, counted "
            f"{delays[len(delays) // 2] / SECOND:.1f} s (median) / "
            f"{delays[-1] / SECOND:.1f} s (max) too long; one poll period is at most "
            f"{p.max_gap / SECOND:.1f} s"
        )
    polled_gaps = sorted(g for g, polled in gaps if polled)
    unpolled = sorted(g for g, polled in gaps if not polled)
    if polled_gaps:
        print(
            f"cut by a hub crash or restart: {len(gaps):,} sessions; polled at least "
            f"once: closed {polled_gaps[len(polled_gaps) // 2] / SECOND:.1f} s "
            f"(median) / {polled_gaps[-1] / SECOND:.1f} s (max) before the hub went away"
        )
    if unpolled:
        print(
            f"  not polled yet ({len(unpolled)}): closed at their start request, "
            f"{unpolled[-1] / SECOND:.1f} s (max) before (start-up time + first poll)"
        )
    print(
        "downtime: servers that ran while no hub was there are not counted, by "
        f"design: {totals['downtime'] / HOUR:.2f} server-hours"
    )
    print(
        "checks: "
        + (
            "all passed (report = expected to the µs for every community and session)"
            if not outcome.problems
            else f"{len(outcome.problems)} FAILED: " + "; ".join(outcome.problems[:5])
        )
    )

    actions, unpaired = server_action_by_community(sim.server_actions)
    user_group = user_group_info_by_group(runs, sim.groups)
    print("\nSide by side: server-hours per community, and the error against the truth")
    header = (
        f"{'community':14} {'truth h':>10} {'hubext h':>10} {'err':>8} "
        f"{'server-action h':>16} {'err':>8} {'2i2c per group h':>17} {'err':>8}"
    )
    print(header)
    print("-" * len(header))
    sums = defaultdict(int)
    for community in sorted(set(truth) | set(user_group)):
        if community == "multiple":
            continue
        t = truth.get(community, 0)
        values = (got.get(community, 0), actions.get(community, 0))
        g = user_group.get(community, 0)
        sums["t"] += t
        sums["h"] += values[0]
        sums["a"] += values[1]
        sums["g"] += g
        print(
            f"{community:14} {hours(t):>10} {hours(values[0]):>10} {pct(values[0], t):>8} "
            f"{hours(values[1]):>16} {pct(values[1], t):>8} {hours(g):>17} "
            f"{pct(g, t) if community != HUB_ACCOUNT else '':>8}"
        )
    print(
        f"{'multiple':14} {'':>10} {'':>10} {'':>8} {'':>16} {'':>8} "
        f"{hours(user_group.get('multiple', 0)):>17}"
    )
    print("-" * len(header))
    print(
        f"{'sum of rows':14} {hours(sums['t']):>10} {hours(sums['h']):>10} "
        f"{pct(sums['h'], sums['t']):>8} {hours(sums['a']):>16} "
        f"{pct(sums['a'], sums['t']):>8} {hours(sums['g']):>17} "
        f"{pct(sums['g'], sums['t']):>8}"
    )
    several = sum(len(g) > 1 for g in sim.groups.values())
    print(
        f"\nserver-action: {unpaired:,} starts without a stop dropped (deaths, hub "
        "shutdowns and crashes emit no stop; a resumed server no start); the rest "
        "counted from the server being up, not from the start request. 2i2c: "
        f"{several} of {p.users} users are in several communities: their time is in "
        "each of their groups and in 'multiple'; the hub-wide account "
        f"({HUB_ACCOUNT}) has no group, admins' time lands in their groups."
    )


def _ledger_line(label: str, row: dict) -> None:
    print(
        f"{label:14} {row['runs']:>6,} {hours(row['truth']):>10} "
        f"{hours(row['report']):>10} "
        f"{(row['report'] - row['truth']) / SECOND:>15,.1f} "
        f"{row['detection'] / SECOND:>10,.1f} {row['cut'] / SECOND:>13,.1f} "
        f"{row['downtime'] / SECOND:>12,.1f} {row['unexplained']:>9} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Params()
    for name in ("sessions", "users", "days", "poll_interval", "seed"):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(getattr(defaults, name)),
            default=getattr(defaults, name),
        )
    args = parser.parse_args()
    params = Params(
        sessions=args.sessions,
        users=args.users,
        days=args.days,
        poll_interval=args.poll_interval,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory() as tmp:
        outcome = simulate(params, Path(tmp))
        print_tables(outcome)
    sys.exit(1 if outcome.problems else 0)


if __name__ == "__main__":
    main()
