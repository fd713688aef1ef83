"""Hub overhead of the usage ledger: event-loop time per start, poll and stop.

hubext's real hooks (:class:`~hubext.spawners.usage.UsageRecordingMixin`,
the hub's :func:`~hubext.spawners.usage.hub_ledger` and its
:class:`~hubext.usage.ledger.Ledger` writing to a real database, and the
hub's usage counters) on a spawner whose ``start()``,
``poll()`` and ``stop()`` cost nothing (``benchmarks/cheap_spawner.py``), side
by side in one run with:

- ``plain``: the same spawner without the mixin (JupyterHub's ``Spawner``,
  the upstream peer: no usage recorded);
- ``ledger off``: the mixin with ``c.UsageLedger.enabled = False``;
- ``ledger on``: the mixin writing to a SQLite file (WAL), and to PostgreSQL
  (a throwaway local server started like the tests', ``tests/usage_pg.py``)
  with ``--postgresql``; each with the writer in a thread of the hub
  (``c.UsageLedger.writer_process = False``, the peer) and in a process of
  its own (the default, :mod:`hubext.usage.writer_process`).

Each round starts 200 servers at once (200 tasks on one asyncio loop, as the
hub's spawn tasks are), polls them all ``--polls`` times (the hub's
``poll_interval`` callbacks), then stops them all at once; what the hub does
around a start and a stop with the spawner (``get_state()`` after the start,
``clear_state()`` after the stop) is included. Rounds of the spawner kinds
are interleaved, and after each round the ledger's writer is let finish
(``wait_idle``) so its work is charged to its own round.

Measured: the event loop's time inside each call, summed over the steps of
the call's coroutine (every ``send`` into it is timed, so time the loop
spends on other tasks while a call awaits is not counted). Wall time
(``perf_counter``) includes waiting for the GIL while a writer thread holds
it; the loop thread's CPU time (``thread_time``) does not. The writer's own
CPU time is measured apart (its thread's clock, or the writer process's
``/proc/<pid>/task/*/schedstat``). The writer process's hub side also runs
callbacks on the loop between the calls (one pipe write per turn of the
loop, reading the process's answers): each is timed too and reported apart.
Each call over 1 ms is put down to what the loop thread did meanwhile (its
``getrusage`` switch counts): it waited for the GIL (a voluntary switch),
or it was only preempted by the operating system (involuntary switches).

The machine's load average (``os.getloadavg()``) is printed at the start and
the end of the run. ``--load N`` adds N busy processes for the run's length,
to measure a saturated machine on a quiet one.

    .venv/bin/python benchmarks/bench_usage_overhead.py [--rounds 30] [--postgresql] [--load N]

The aim (issues 11 and 21): at most 1 ms p99 added per start and per stop,
on a loaded machine and an unloaded one.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from traitlets.config import Config

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.cheap_spawner import CheapSpawner  # noqa: E402
from hubext.spawners import usage as usage_hooks  # noqa: E402
from hubext.spawners.usage import UsageRecordingMixin  # noqa: E402
from hubext.usage.writer_process import ProcessWriter  # noqa: E402
from tests.spawner_objects import HUB, hub_user  # noqa: E402

SERVERS = 200
COMMUNITIES = [f"community-{i}" for i in range(20)]
OPS = ("start", "poll", "stop")
WRITERS = ("thread", "process")


class InstantSpawner(CheapSpawner):
    """The cheap spawner with a stop that takes no time (one yield)."""


class RecordedSpawner(UsageRecordingMixin, InstantSpawner):
    """The same spawner with hubext's usage hooks."""

    #: what CommunityOptionsMixin gives the mixin: the hub's communities (made
    #: once, as the hub's registry is)
    communities = tuple(SimpleNamespace(slug=slug) for slug in COMMUNITIES)


class Samples:
    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {op: [] for op in OPS}
        self.cpu: dict[str, list[float]] = {op: [] for op in OPS}
        #: (voluntary, involuntary) context switches of the loop thread per call
        self.switches: dict[str, list[tuple[int, int]]] = {op: [] for op in OPS}
        #: the writer process's callbacks on the loop: (name, wall, cpu) each
        self.callbacks: list[tuple[str, float, float]] = []
        self.writer_cpu = 0.0
        self.sessions = 0


#: where the writer process's loop callbacks of the running round go
_callbacks: list[tuple[ProcessWriter, str, float, float]] = []


def _timed_callback(method):
    """Time a ProcessWriter method that runs on the loop between the calls."""

    @functools.wraps(method)
    def timed(self, *args):
        w, c = time.perf_counter(), time.thread_time()
        try:
            return method(self, *args)
        finally:
            _callbacks.append(
                (self, method.__name__, time.perf_counter() - w, time.thread_time() - c)
            )

    return timed


# the pipe write of each turn of the loop, and reading the process's answers
ProcessWriter._flush = _timed_callback(ProcessWriter._flush)
ProcessWriter._drain = _timed_callback(ProcessWriter._drain)


def writer_cpu(ledger) -> float:
    """CPU seconds the ledger's writer (thread, or process) has used so far."""
    writer = ledger._writer
    if isinstance(writer, ProcessWriter):
        total = 0
        for task in Path(f"/proc/{writer._proc.pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    return time.clock_gettime(time.pthread_getcpuclockid(writer._thread.ident))


def _now() -> tuple:
    """Wall, loop thread CPU, and its voluntary and involuntary switches so far."""
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return (time.perf_counter(), time.thread_time(), r.ru_nvcsw, r.ru_nivcsw)


def _since(then: tuple, total: tuple = (0.0, 0.0, 0, 0)) -> tuple:
    return tuple(t + n - b for t, n, b in zip(total, _now(), then, strict=True))


class _Timed:
    """Await ``coro``, adding what each of its steps took (``_now``) to ``into``."""

    def __init__(self, coro, into: list[tuple]):
        self.coro, self.into = coro, into

    def __await__(self):
        steps = self.coro.__await__()
        total = (0.0, 0.0, 0, 0)
        value, error = None, None
        while True:
            then = _now()
            try:
                yielded = steps.throw(error) if error else steps.send(value)
            except StopIteration as done:
                self.into.append(_since(then, total))
                return done.value
            total = _since(then, total)
            try:
                value, error = (yield yielded), None
            except BaseException as e:  # thrown into the coroutine
                value, error = None, e


def make_spawners(cls, config: Config, kind: str) -> list:
    spawners = []
    for i in range(SERVERS):
        community = COMMUNITIES[i % len(COMMUNITIES)]
        # a member of the community charged (else each start logs a warning)
        user = hub_user(f"{kind}-user-{i}", groups=[community])
        spawner = cls(config=config, user=user, hub=HUB)
        spawner.user_options = {
            "community": community,
            "profile": "small",
            "image": "scipy",
        }
        spawners.append(spawner)
    return spawners


async def one_round(spawners, polls: int, samples: Samples, ledger) -> None:
    into = {op: [] for op in OPS}

    async def start(sp):
        steps: list = []
        await _Timed(sp.start(), steps)
        then = _now()
        sp.get_state()  # the hub saves the spawner's state after a start
        into["start"].append(_since(then, steps[0]))

    async def poll(sp):
        await _Timed(sp.poll(), into["poll"])

    async def stop(sp):
        steps: list = []
        await _Timed(sp.stop(), steps)
        then = _now()
        sp.clear_state()  # the hub forgets the spawner's state after a stop
        into["stop"].append(_since(then, steps[0]))

    before = writer_cpu(ledger) if ledger else 0.0
    _callbacks.clear()
    await asyncio.gather(*(start(sp) for sp in spawners))
    for _ in range(polls):
        await asyncio.gather(*(poll(sp) for sp in spawners))
    await asyncio.gather(*(stop(sp) for sp in spawners))
    if ledger is not None:
        # this round's events written (mostly done already, concurrently)
        ledger.wait_idle(60)
        samples.writer_cpu += writer_cpu(ledger) - before
        samples.sessions += len(spawners)
        # this round's writer's (a late answer to another one's is not)
        samples.callbacks.extend(c[1:] for c in _callbacks if c[0] is ledger._writer)
    for op in OPS:
        samples.wall[op].extend(call[0] for call in into[op])
        samples.cpu[op].extend(call[1] for call in into[op])
        samples.switches[op].extend(call[2:] for call in into[op])


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


async def bench(args) -> None:
    load = [os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-usage-overhead-"))
    kinds: dict[str, tuple[list, object]] = {}
    base = Config()
    base.CheapSpawner.target_url = "http://127.0.0.1:1/"
    base.CheapSpawner.stop_latency = 0.0
    base.JupyterHub.db_url = f"sqlite:///{tmp / 'jupyterhub.sqlite'}"

    kinds["plain"] = (make_spawners(InstantSpawner, base, "plain"), None)
    off = Config(base)
    off.UsageLedger.enabled = False
    kinds["ledger off"] = (make_spawners(RecordedSpawner, off, "off"), None)

    def ledger_on(database: str, url: str, writer: str) -> None:
        on = Config(base)
        on.UsageLedger.db_url = url
        on.UsageLedger.writer_process = writer == "process"
        kinds[f"on, {database}, {writer}"] = (
            make_spawners(RecordedSpawner, on, f"{database}-{writer}"),
            url,
        )

    for writer in WRITERS:
        ledger_on("SQLite", f"sqlite:///{tmp / f'usage-{writer}.sqlite'}", writer)
    server = None
    if args.postgresql:
        from tests.usage_pg import PostgresServer

        server = PostgresServer().start()
        for writer in WRITERS:
            ledger_on("PostgreSQL", server.url(server.create_database()), writer)
    try:
        samples = {kind: Samples() for kind in kinds}
        # warm-up: the ledgers are made (schema migrated) and code paths run once
        for spawners, url in kinds.values():
            await one_round(spawners, 1, Samples(), None)
            if url is not None:
                usage_hooks._ledgers[url].wait_idle(60)
        gc.collect()
        for _ in range(args.rounds):
            for kind, (spawners, url) in kinds.items():
                ledger = usage_hooks._ledgers.get(url) if url else None
                await one_round(spawners, args.polls, samples[kind], ledger)
        load.append(os.getloadavg())
        report(samples, args, load)
    finally:
        for ledger in list(usage_hooks._ledgers.values()):
            ledger.close()
        if server is not None:
            server.destroy()


def report(samples: dict[str, Samples], args, load: list) -> None:
    plain = samples["plain"]
    print(
        f"{args.rounds} rounds of {SERVERS} concurrent starts, {args.polls} polls "
        f"each, {SERVERS} concurrent stops; Python {sys.version.split()[0]}, "
        f"SQLite {__import__('sqlite3').sqlite_version}, GIL switch interval "
        f"{sys.getswitchinterval() * 1000:g} ms, {os.cpu_count()} CPUs, "
        f"{args.load} busy processes added; event-loop time per call in ms "
        "(wall, with GIL waits / loop thread CPU; '> 1 ms': share of calls whose "
        "wall time exceeds 1 ms)"
    )
    print(
        "load average (1, 5, 15 min) at the start "
        + " / ".join(f"{x:.2f}" for x in load[0])
        + ", at the end "
        + " / ".join(f"{x:.2f}" for x in load[1])
    )
    print()
    header = (
        f"{'spawner':26} {'op':5} {'wall p50':>9} {'wall p99':>9} {'cpu p50':>9} "
        f"{'cpu p99':>9} {'p99 added':>10} {'p99 ratio':>9} {'> 1 ms':>7}"
    )
    print(header)
    print("-" * len(header))

    def added(s: Samples, op: str) -> float:
        return pct(s.wall[op], 99) - pct(plain.wall[op], 99)

    for kind, s in samples.items():
        for op in OPS:
            wall, cpu = s.wall[op], s.cpu[op]
            ratio = pct(wall, 99) / pct(plain.wall[op], 99)
            print(
                f"{kind:26} {op:5} {fmt_ms(pct(wall, 50)):>9} {fmt_ms(pct(wall, 99)):>9} "
                f"{fmt_ms(pct(cpu, 50)):>9} {fmt_ms(pct(cpu, 99)):>9} "
                f"{fmt_ms(added(s, op)):>10} {ratio:>9.2f} "
                f"{sum(w > 0.001 for w in wall) / len(wall):>7.2%}"
            )
    print()
    for kind, s in samples.items():
        if not s.sessions:
            continue
        waits = {
            op: statistics.fmean(s.wall[op]) - statistics.fmean(s.cpu[op]) for op in OPS
        }
        base_waits = {
            op: statistics.fmean(plain.wall[op]) - statistics.fmean(plain.cpu[op])
            for op in OPS
        }
        print(
            f"{kind}: writer CPU {s.writer_cpu / s.sessions * 1e6:.0f} µs per "
            "session (start, polls, stop); "
            "mean wall-minus-CPU of the loop's calls (GIL waits and scheduling), "
            + ", ".join(
                f"{op} {waits[op] * 1e6:.1f} µs (plain {base_waits[op] * 1e6:.1f})"
                for op in OPS
            )
        )
        for name, what in (("_flush", "pipe writes"), ("_drain", "answers read")):
            calls = [(w, c) for n, w, c in s.callbacks if n == name]
            if not calls:
                continue
            walls, cpus = [w for w, _ in calls], [c for _, c in calls]
            print(
                f"  its {what} on the loop, between the calls: "
                f"{len(calls) / s.sessions:.2f} per session; wall p50 "
                f"{fmt_ms(pct(walls, 50))}, p99 {fmt_ms(pct(walls, 99))}, max "
                f"{fmt_ms(max(walls))} ms; CPU p99 {fmt_ms(pct(cpus, 99))} ms, "
                f"{sum(cpus) / s.sessions * 1e6:.1f} µs per session"
            )
    print()
    print(
        "calls over 1 ms, by what the loop thread did meanwhile: waited for the "
        "GIL (a voluntary switch: it slept on the GIL's condition), or was "
        "preempted by the OS only (involuntary switches only)"
    )
    for kind, s in samples.items():
        for op in ("start", "stop"):
            slow = [
                sw
                for w, sw in zip(s.wall[op], s.switches[op], strict=True)
                if w > 0.001
            ]
            gil = sum(1 for vol, _ in slow if vol)
            preempted = sum(1 for vol, invol in slow if not vol and invol)
            print(
                f"  {kind:26} {op:5} {len(slow):5} of {len(s.wall[op])}: GIL wait "
                f"{gil}, preempted only {preempted}, neither {len(slow) - gil - preempted}"
            )
    print()
    for database in ("SQLite", "PostgreSQL"):
        thread = samples.get(f"on, {database}, thread")
        process = samples.get(f"on, {database}, process")
        if thread is None or process is None:
            continue
        for op in ("start", "stop"):
            t, p = added(thread, op), added(process, op)
            print(
                f"{database} {op}: p99 added, writer thread {t * 1000:.3f} ms, "
                f"writer process {p * 1000:.3f} ms (thread / process: "
                f"{t / p if p > 0 else float('inf'):.1f})"
            )
    for writer in WRITERS:
        ons = [s for kind, s in samples.items() if kind.endswith(f", {writer}")]
        worst = max(added(s, op) for s in ons for op in ("start", "stop"))
        print(
            f"largest p99 added per start or stop, writer {writer}: "
            f"{worst * 1000:.3f} ms (aim: at most 1 ms) -> "
            f"{'met' if worst <= 0.001 else 'NOT met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval() for the run, in seconds (Python's default 0.005)",
    )
    parser.add_argument(
        "--load",
        type=int,
        default=0,
        help="busy processes (one core each) running beside the benchmark",
    )
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="also a ledger in a throwaway PostgreSQL server (Debian's package)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(args.load)
    ]
    try:
        asyncio.run(bench(args))
    finally:
        for process in busy:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
