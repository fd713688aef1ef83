"""The ledger's writer in a process of its own, so the hub's event loop never waits for it.

A writer thread in the hub shares the hub's global interpreter lock: while
it runs SQLAlchemy's Python code, a start on the event loop can wait for the
lock for up to a switch interval (5 ms), and longer when the machine is busy
(``benchmarks/bench_usage_overhead.py``). Here the hub only numbers each
event, pickles it and writes it to a pipe (once per turn of the event loop,
for all the events of that turn); a child process (``python -P -c "from
hubext.usage.writer_child import main; main()"``, :mod:`.writer_child`)
runs the :class:`~hubext.usage.writer.ThreadWriter` and answers on a second
pipe.

What this keeps:

- **Order**: one pipe, events numbered in the order they were recorded,
  written by one thread in that order.
- **Nothing the hub recorded is lost when the writer process dies**: the hub
  keeps every event until the child says it is in the database (heartbeats
  merged per session, starts and stops bounded by ``max_pending`` as in the
  thread). When the child exits or is killed, the hub starts another (at once
  if the last one ran 30 s or more, else after a back-off from
  ``retry_initial`` to ``retry_max``) and sends it every event not yet
  confirmed. Some may be in the database already: every write is idempotent
  (a start already there is skipped, an end or a heartbeat changes an open
  session only), so nothing is counted twice.
- **The child dies with the hub**: it exits at once, writing nothing more,
  when its input pipe closes without a ``close`` message (the hub exited or
  was killed). A hub killed with SIGKILL loses the events not yet written,
  as with a writer thread, and the next hub closes its sessions at their
  last heartbeat. It runs in a session of its own, so a Ctrl-C or a signal
  to the hub's process group does not stop it before the hub's exit writes
  what is pending.
- **Exit**: :meth:`ProcessWriter.close` (the hub's ``atexit``) sends
  ``close``: the child writes what is pending and exits.
- **No secret on a command line**: the database URL goes through the pipe;
  the child's log lines, scrubbed as the thread's are, are logged by the hub.

Who reads the child's answers: the event loop the writer was started on
(``add_reader``; no thread in the hub), or a thread of the writer's own when
it was started outside an event loop (tests, scripts).

Messages are length-prefixed pickles of tuples (both ends are hubext's:
:mod:`.writer_child` defines the framing; moments in microseconds since the
epoch). Hub to child: ``("config",
settings)``, then ``("start", seq, values, started_at, last_seen_at)``,
``("end", seq, key, at, reason)``, ``("close_open", seq, at_most)``,
``("beat", seq, keys, at)``, ``("close", timeout)``. Child to hub: ``("written", upto)``,
``("closed", seq, count, error)``, ``("outage", since, cause, waiting)``,
``("recovered", seconds, written)``, ``("log", level, text)``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import datetime

from .._validation import plural
from .store import redact
from .writer import (
    CloseOpen,
    End,
    Op,
    Start,
    outage_message,
    queue_full_message,
    recovered_message,
)
from .writer_child import frame, micros, row_values, unframe

#: The child's command (``-P``: nothing imported from the working directory).
_CHILD = "from hubext.usage.writer_child import main; main()"

#: A child that ran this long before it exited is restarted at once.
_STEADY_SECONDS = 30.0

#: Bytes kept for a child that reads nothing: past this it is killed and
#: another one gets the events not yet written (merged, bounded).
OUT_LIMIT = 32 * 2**20


def _child_environment() -> dict[str, str]:
    """The hub's environment, with its ``sys.path`` first: the child imports
    the same hubext as the hub, wherever the hub found it."""
    paths = [os.path.abspath(p) for p in sys.path if isinstance(p, str) and p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class ProcessWriter:
    """The hub's end of a writer process: same calls as :class:`ThreadWriter`.

    Call it from one event loop's thread (the hub's), or from any threads
    when it was started outside an event loop.
    """

    def __init__(
        self,
        db_url: str,
        *,
        log: logging.Logger,
        max_pending: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 60.0,
    ):
        self.db_url = db_url
        self.log = log
        self.max_pending = max_pending
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._lock = threading.RLock()
        self._seq = 0
        #: starts, ends and closes not yet written: (seq, message, future)
        self._ops: deque[tuple[int, bytes, concurrent.futures.Future | None]] = deque()
        #: heartbeats not yet written, the latest per session, in seq order
        self._beats: dict[str, tuple[int, datetime]] = {}
        self._out = bytearray()
        self._in = bytearray()
        self._proc: subprocess.Popen | None = None
        self._to_child: int | None = None
        self._from_child: int | None = None
        self._spawned_at = 0.0
        self._respawn_at = 0.0
        self._backoff = retry_initial
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_soon = False
        self._waiting_to_write = False
        self._reader: threading.Thread | None = None
        self._started = False
        self._closing = False
        self.dropped = 0
        self._dropped_this_outage = 0
        self._db_outage_since: float | None = None
        self._down_since: float | None = None

    # -- recording (the hub's event loop) ----------------------------------------

    def start(self) -> None:
        """Start the writer process; read its answers on this thread's event loop."""
        with self._lock:
            if self._started:
                return
            self._started = True
            loop = _running_loop()
            if loop is not None:
                self._attach(loop)
            else:
                self._reader = threading.Thread(
                    target=self._read_forever, name="hubext-usage-ledger", daemon=True
                )
                self._reader.start()
            self._spawn()

    def put(self, op: Op) -> None:
        """Send a start, end or close; refuse it when ``max_pending`` wait."""
        with self._lock:
            if len(self._ops) >= self.max_pending:
                self._refuse(op)
                return
            self._seq += 1
            future = None
            if isinstance(op, Start):
                row = op.row
                data = frame(
                    (
                        "start",
                        self._seq,
                        row_values(row),
                        micros(row["started_at"]),
                        micros(row["last_seen_at"]),
                    )
                )
            elif isinstance(op, End):
                data = frame(("end", self._seq, op.key, micros(op.at), op.reason))
            else:
                data = frame(("close_open", self._seq, micros(op.at_most)))
                future = op.future
            self._ops.append((self._seq, data, future))
            self._send(data)

    def beat(self, keys, at: datetime) -> None:
        """Send heartbeats (a beat older than one not yet written is dropped)."""
        with self._lock:
            fresh = [k for k in keys if k not in self._beats or self._beats[k][1] < at]
            if not fresh:
                return
            self._seq += 1
            for key in fresh:
                # moved to the end: the dict stays in seq order
                self._beats.pop(key, None)
                self._beats[key] = (self._seq, at)
            self._send(frame(("beat", self._seq, fresh, micros(at))))

    def _refuse(self, op: Op) -> None:
        self.dropped += 1
        self._dropped_this_outage += 1
        if self._dropped_this_outage == 1:
            self.log.error(queue_full_message(self.db_url, len(self._ops)))
        if isinstance(op, CloseOpen):
            op.future.set_exception(RuntimeError("usage ledger queue full"))

    def _send(self, data: bytes) -> None:
        if self._proc is None:
            # kept in _ops/_beats, sent to the next child
            self._respawn_when_due()
            return
        self._out += data
        loop = _running_loop()
        if loop is None:
            self._flush()
            return
        if loop is not self._loop:
            self._attach(loop)
        if not self._flush_soon:
            # one write per turn of the loop, for all its events
            self._flush_soon = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        with self._lock:
            self._flush_soon = False
            while self._out and self._to_child is not None:
                try:
                    written = os.write(self._to_child, self._out)
                except BlockingIOError:
                    if len(self._out) > OUT_LIMIT:
                        self._kill_stuck_child()
                    elif self._on_my_loop() and not self._waiting_to_write:
                        # else a later event, the reader thread or wait_idle writes
                        self._waiting_to_write = True
                        self._loop.add_writer(self._to_child, self._flush)
                    return
                except OSError:
                    self._child_died()
                    return
                del self._out[:written]
            if self._waiting_to_write and self._to_child is not None:
                self._waiting_to_write = False
                self._loop.remove_writer(self._to_child)

    def _on_my_loop(self) -> bool:
        """Called from the running event loop that reads the child's answers."""
        return self._loop is not None and _running_loop() is self._loop

    # -- the child's answers ---------------------------------------------------

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the child's answers on ``loop`` (from now on)."""
        self._detach()
        self._loop = loop
        if self._from_child is not None:
            loop.add_reader(self._from_child, self._readable)

    def _detach(self) -> None:
        loop, self._loop = self._loop, None
        # a callback of a closed loop never runs
        self._waiting_to_write = self._flush_soon = False
        if loop is None or loop.is_closed():
            return
        for fd in (self._from_child, self._to_child):
            if fd is not None:
                loop.remove_reader(fd)
                loop.remove_writer(fd)

    def _readable(self) -> None:
        with self._lock:
            self._drain()
            self._flush()

    def _read_forever(self) -> None:
        """Started outside an event loop: read the answers in this thread."""
        while not self._closing:
            fd = self._from_child
            try:
                if fd is not None:
                    select.select([fd], [], [], 0.2)
                else:
                    time.sleep(0.05)
            except (OSError, ValueError):
                pass  # the child was replaced meanwhile
            with self._lock:
                if self._closing:
                    return
                self._respawn_when_due()
                self._drain()
                self._flush()

    def _drain(self) -> None:
        """Read and handle what the child sent (never blocks)."""
        while self._from_child is not None:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._handle_all()
                self._child_died()
                return
            self._in += chunk
        self._handle_all()

    def _handle_all(self) -> None:
        for message in unframe(self._in):
            getattr(self, f"_on_{message[0]}")(*message[1:])

    def _on_written(self, upto: int) -> None:
        while self._ops and self._ops[0][0] <= upto:
            self._ops.popleft()
        while self._beats:
            key = next(iter(self._beats))
            if self._beats[key][0] > upto:
                break
            del self._beats[key]
        if self._down_since is not None:
            self._writer_back()

    def _on_closed(self, seq: int, count: int | None, error: str | None) -> None:
        for op_seq, _, future in self._ops:
            if op_seq == seq and future is not None and not future.done():
                if error is None:
                    future.set_result(count)
                else:
                    future.set_exception(RuntimeError(error))

    def _on_outage(self, since: float, cause: str, waiting: int) -> None:
        self._db_outage_since = since
        self.log.warning(outage_message(self.db_url, cause, waiting, self.retry_max))

    def _on_recovered(self, seconds: float, written: int) -> None:
        refused, self._dropped_this_outage = self._dropped_this_outage, 0
        self._db_outage_since = None
        self.log.warning(recovered_message(self.db_url, seconds, written, refused))

    def _on_log(self, level: int, text: str) -> None:
        self.log.log(level, "%s", text)

    # -- the child process -----------------------------------------------------

    def _spawn(self) -> None:
        """Start a child and queue for it every event not yet written, in order."""
        to_child_r, to_child = os.pipe()
        from_child, from_child_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-P", "-c", _CHILD],
                stdin=to_child_r,
                stdout=from_child_w,
                start_new_session=True,
                env=_child_environment(),
            )
        except OSError as e:
            for fd in (to_child, from_child):
                os.close(fd)
            self._respawn_later(
                f"could not start the writer process ({e})", self._next_backoff()
            )
            return
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        os.set_blocking(to_child, False)
        os.set_blocking(from_child, False)
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(to_child, fcntl.F_SETPIPE_SZ, 1 << 20)
        self._proc, self._to_child, self._from_child = proc, to_child, from_child
        self._spawned_at = time.monotonic()
        settings = {
            "db_url": self.db_url,
            "retry_initial": self.retry_initial,
            "retry_max": self.retry_max,
            "log_level": self.log.getEffectiveLevel(),
        }
        self._out = bytearray(frame(("config", settings)))
        beats = iter(self._beats.items())
        beat = next(beats, None)
        for seq, data, _ in self._ops:
            while beat is not None and beat[1][0] < seq:
                self._out += frame(("beat", beat[1][0], [beat[0]], micros(beat[1][1])))
                beat = next(beats, None)
            self._out += data
        while beat is not None:
            self._out += frame(("beat", beat[1][0], [beat[0]], micros(beat[1][1])))
            beat = next(beats, None)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.add_reader(from_child, self._readable)
        if self._down_since is not None and not (self._ops or self._beats):
            self._writer_back()  # nothing to write: it is back now
        self._flush()

    def _child_died(self) -> None:
        proc = self._proc
        if proc is None:
            return
        loop = self._loop
        self._detach()
        for fd in (self._to_child, self._from_child):
            if fd is not None:
                os.close(fd)
        self._proc = self._to_child = self._from_child = None
        self._loop = loop
        self._out.clear()
        self._in.clear()
        try:
            status = proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
        if self._closing:
            return
        if time.monotonic() - self._spawned_at >= _STEADY_SECONDS:
            self._backoff = self.retry_initial
            delay = 0.0
        else:
            delay = self._next_backoff()
        self._respawn_later(
            f"the writer process (pid {proc.pid}) exited with status {status}",
            delay,
        )

    def _next_backoff(self) -> float:
        delay, self._backoff = self._backoff, min(2 * self._backoff, self.retry_max)
        return delay

    def _kill_stuck_child(self) -> None:
        self.log.error(
            "usage ledger: the writer process (pid %d) read nothing while %d "
            "bytes of events waited; killing it",
            self._proc.pid,
            len(self._out),
        )
        self._proc.kill()
        self._child_died()

    def _respawn_later(self, why: str, delay: float) -> None:
        self._down_since = self._down_since or time.monotonic()
        self.log.error(
            "usage ledger: %s; %d %s not yet written to %s go to a new one%s",
            why,
            len(self._ops) + len(self._beats),
            plural(len(self._ops) + len(self._beats), "event"),
            redact(self.db_url),
            f" in {delay:g} s" if delay else "",
        )
        self._respawn_at = time.monotonic() + delay
        if not delay:
            self._spawn()
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_later(delay, self._respawn_when_due)
        # else the reader thread, the next event or wait_idle starts it

    def _respawn_when_due(self) -> None:
        with self._lock:
            if (
                self._proc is None
                and self._started
                and not self._closing
                and time.monotonic() >= self._respawn_at
            ):
                self._spawn()

    def _writer_back(self) -> None:
        refused, self._dropped_this_outage = self._dropped_this_outage, 0
        since, self._down_since = self._down_since, None
        self.log.warning(
            "usage ledger: a new writer process (pid %d) is writing to %s after "
            "%.0f s%s",
            self._proc.pid,
            redact(self.db_url),
            time.monotonic() - since,
            f", {refused} events refused (queue full)" if refused else "",
        )

    # -- state, waiting and stopping -------------------------------------------

    @property
    def pending(self) -> int:
        """Events not yet written (heartbeats counted once per session)."""
        with self._lock:
            self._drain()
            return len(self._ops) + len(self._beats)

    @property
    def outage_since(self) -> float | None:
        """``time.monotonic()`` when the database or the writer went away, or None."""
        with self._lock:
            self._drain()
            times = [t for t in (self._db_outage_since, self._down_since) if t]
            return min(times) if times else None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every event so far is written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._respawn_when_due()
                self._flush()
                self._drain()
                if not (self._ops or self._beats):
                    return True
                readable = [self._from_child] if self._from_child is not None else []
                writable = [self._to_child] if self._out and self._to_child else []
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                return False
            # OSError, ValueError: the child was replaced meanwhile
            with contextlib.suppress(OSError, ValueError):
                select.select(readable, writable, [], left)

    def close(self, timeout: float = 10) -> None:
        """Write what is pending (for up to ``timeout`` s) and stop the child."""
        with self._lock:
            if not self._started or self._closing:
                return
            self._respawn_at = 0.0  # a child backing off is started now
        deadline = time.monotonic() + timeout
        self.wait_idle(timeout)
        with self._lock:
            self._closing = True
            proc = self._proc
            if proc is not None:
                self._out += frame(("close", max(0.0, deadline - time.monotonic())))
        # the child writes what it has (or logs what it could not), then exits
        while proc is not None and proc.poll() is None:
            left = deadline + 2 - time.monotonic()
            if left <= 0:
                proc.kill()
                break
            with self._lock:
                self._flush()
                self._drain()
                readable = [self._from_child] if self._from_child is not None else []
            with contextlib.suppress(OSError, ValueError):
                select.select(readable, [], [], min(left, 0.05))
        with self._lock:
            self._drain()
            left = len(self._ops) + len(self._beats)
            self._child_died()
            # a child that exited by itself logged what it could not write
            if left and (proc is None or proc.returncode != 0):
                self.log.error(
                    "usage ledger: stopped with %d %s not written to %s; "
                    "their open sessions are closed at the next start-up",
                    left,
                    plural(left, "event"),
                    redact(self.db_url),
                )
        if self._reader is not None:
            self._reader.join(timeout=1)
