"""The ledger's writer: a queue of events and the thread that writes them.

One thread writes the events in order, one transaction per batch (every
event queued when the batch is taken). When the database cannot be reached
it keeps the events and retries with exponential back-off; the outage is
reported once when it starts and once when it ends (the URL's password is
never logged). An event the database refuses (a constraint) is logged and
dropped, and holds no other back.

Queue policy: heartbeats are merged per session (only the latest moment is
kept), so they take one slot per running server however long an outage
lasts. Starts, ends and start-up closes are kept in order, up to
``max_pending`` of them; past that a new event is refused (never an older
one), counted in :attr:`ThreadWriter.dropped` and logged as an error once per
outage.

Every write is idempotent (a start already in the table is skipped, an end
or a close touches only open sessions, a heartbeat only moves forward), so
events may be written again after a writer process died before saying they
were written (:mod:`hubext.usage.writer_process`).

The writer runs in the hub (``c.UsageLedger.writer_process = False``) or in
the ledger's writer process; :class:`~hubext.usage.ledger.Ledger` is the
API the spawners call.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Engine, and_, bindparam, case, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, StatementError

from .._validation import plural
from .model import EndReason, UTCDateTime, sessions
from .store import make_engine, password_of, redact, upgrade_to_head

_t = sessions.c
_AT = UTCDateTime()

#: An end: only a session still open, never before its start.
_END = (
    update(sessions)
    .where(and_(_t.id == bindparam("key"), _t.stopped_at.is_(None)))
    .values(
        stopped_at=case(
            (_t.started_at > bindparam("at", type_=_AT), _t.started_at),
            else_=bindparam("at", type_=_AT),
        ),
        last_seen_at=case(
            (_t.last_seen_at < bindparam("at", type_=_AT), bindparam("at", type_=_AT)),
            else_=_t.last_seen_at,
        ),
        end_reason=bindparam("reason"),
    )
)

#: A heartbeat: only a session still open, only forward.
_BEAT = (
    update(sessions)
    .where(
        and_(
            _t.id == bindparam("key"),
            _t.stopped_at.is_(None),
            _t.last_seen_at < bindparam("at", type_=_AT),
        )
    )
    .values(last_seen_at=bindparam("at", type_=_AT))
)

#: The sessions a previous hub left open, closed at their last heartbeat.
_CLOSE_OPEN = (
    update(sessions)
    .where(
        and_(
            _t.stopped_at.is_(None),
            _t.started_at <= bindparam("at_most", type_=_AT),
        )
    )
    .values(stopped_at=_t.last_seen_at, end_reason=EndReason.HUB_RESTART.value)
)


@dataclass
class Start:
    """A session began: its row."""

    row: dict[str, Any]


@dataclass
class End:
    """A session ended (only its first end counts)."""

    key: str
    at: datetime
    reason: str


@dataclass
class CloseOpen:
    """Close the sessions a previous hub left open (the number closed: ``future``)."""

    at_most: datetime
    future: concurrent.futures.Future


Op = Start | End | CloseOpen


def is_outage(error: Exception) -> bool:
    """Whether ``error`` means the database cannot be used now (retry later)."""
    return isinstance(error, DBAPIError) and (
        error.connection_invalidated
        or type(error).__name__ in ("OperationalError", "InterfaceError")
    )


def scrub(text: str, secret: str | None) -> str:
    """The first line of ``text`` with ``secret`` (a password) replaced by ``***``."""
    text = text.splitlines()[0] if text else ""
    return text.replace(secret, "***") if secret else text


def outage_message(url: str, cause: str, waiting: int, retry_max: float) -> str:
    """The log line when the database becomes unreachable."""
    return (
        f"usage ledger: cannot write to {redact(url)} ({cause}); {waiting} "
        f"{plural(waiting, 'event')} kept, retrying with back-off up to {retry_max:g} s"
    )


def recovered_message(url: str, seconds: float, written: int, refused: int) -> str:
    """The log line when the database is reachable again."""
    return (
        f"usage ledger: {redact(url)} is reachable again after {seconds:.0f} s; "
        f"{written} pending {plural(written, 'event')} written"
        + (f", {refused} refused (queue full)" if refused else "")
    )


def queue_full_message(url: str, waiting: int) -> str:
    """The log line (an error) when a first event is refused during an outage."""
    return (
        f"usage ledger: {waiting} {plural(waiting, 'event')} waiting for "
        f"{redact(url)}; refusing new "
        "ones until it is back (their sessions will be missing from reports)"
    )


class ThreadWriter:
    """Writes events to the ledger's database from one thread, in order.

    :param db_url: the ledger's SQLAlchemy URL (see :mod:`hubext.usage.store`).
    :param log: where outages and refused events are reported.
    :param max_pending: most starts/ends/closes kept while the database is
        unreachable (heartbeats are merged and not counted).
    :param retry_initial, retry_max: back-off between attempts, in seconds,
        doubling from the first to the second.
    :param engine: an engine to use instead of one made from ``db_url``.

    Each event may carry a sequence number (``seq``, increasing); after a
    batch is written, :meth:`written` is called with the largest number it
    held (the writer process tells the hub with it what is safe to forget).
    """

    def __init__(
        self,
        db_url: str,
        *,
        log: logging.Logger,
        max_pending: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 60.0,
        engine: Engine | None = None,
    ):
        self.db_url = db_url
        self._engine = engine
        self.log = log
        self.max_pending = max_pending
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._secret = password_of(db_url)
        self._lock = threading.Condition()
        self._ops: deque[Op] = deque()
        self._beats: dict[str, datetime] = {}
        self._in_flight = 0
        self._seq = 0
        self._stopping = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._migrated = False
        #: events refused because ``max_pending`` were waiting (for metrics)
        self.dropped = 0
        self._dropped_this_outage = 0
        #: ``time.monotonic()`` when the current outage began, or None
        self.outage_since: float | None = None

    # -- queueing (any thread) -------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (which first migrates the schema)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="hubext-usage-ledger", daemon=True
            )
            self._thread.start()

    def put(self, op: Op, seq: int | None = None) -> None:
        """Queue a start, end or close; refuse it when ``max_pending`` wait."""
        with self._lock:
            if len(self._ops) >= self.max_pending:
                self._refuse(op)
                return
            self._seq = self._seq + 1 if seq is None else max(self._seq, seq)
            self._ops.append(op)
            self._lock.notify_all()

    def beat(self, keys, at: datetime, seq: int | None = None) -> None:
        """Queue heartbeats: these sessions' servers were running at ``at``."""
        with self._lock:
            self._seq = self._seq + 1 if seq is None else max(self._seq, seq)
            for key in keys:
                previous = self._beats.get(key)
                if previous is None or previous < at:
                    self._beats[key] = at
            self._lock.notify_all()

    def _refuse(self, op: Op) -> None:
        self.dropped += 1
        self._dropped_this_outage += 1
        if self._dropped_this_outage == 1:
            self.log.error(queue_full_message(self.db_url, len(self._ops)))
        if isinstance(op, CloseOpen):
            op.future.set_exception(RuntimeError("usage ledger queue full"))

    # -- waiting and stopping --------------------------------------------------

    @property
    def pending(self) -> int:
        """Events not yet written (heartbeats counted once per session)."""
        with self._lock:
            return len(self._ops) + len(self._beats) + self._in_flight

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every event so far is written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._ops or self._beats or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def close(self, timeout: float = 10) -> None:
        """Write what is pending (for up to ``timeout`` s) and stop the thread."""
        if self._thread is not None:
            self.wait_idle(timeout)
            with self._lock:
                self._stopping = True
                self._lock.notify_all()
            self._wake.set()
            self._thread.join(timeout=max(1.0, timeout))
            left = self.pending
            if left:
                self.log.error(
                    "usage ledger: stopped with %d %s not written to %s; "
                    "their open sessions are closed at the next start-up",
                    left,
                    plural(left, "event"),
                    redact(self.db_url),
                )
            self._thread = None
        if self._engine is not None:
            self._engine.dispose()

    # -- what the writer process overrides ---------------------------------------

    def written(self, upto: int) -> None:
        """Every event numbered up to ``upto`` is in the database (or refused)."""

    def report_outage(self, cause: str, waiting: int) -> None:
        self.log.warning(outage_message(self.db_url, cause, waiting, self.retry_max))

    def report_recovered(self, seconds: float, written: int, refused: int) -> None:
        self.log.warning(recovered_message(self.db_url, seconds, written, refused))

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        delay = self.retry_initial
        while True:
            with self._lock:
                while not (self._ops or self._beats or self._stopping):
                    self._lock.wait()
                if self._stopping and not (self._ops or self._beats):
                    return
                ops = list(self._ops)
                beats, self._beats = self._beats, {}
                self._in_flight = len(beats)
                upto = self._seq
            try:
                if self._engine is None:
                    self._engine = make_engine(self.db_url)
                if not self._migrated:
                    upgrade_to_head(self._engine)
                    self._migrated = True
                try:
                    results = self._write(ops, beats)
                except StatementError as e:
                    if is_outage(e):
                        raise
                    # one bad event must not hold the others back forever
                    self._write_singly(ops, beats)
                    ops, results = [], []
            except Exception as e:
                with self._lock:
                    for key, at in beats.items():
                        if key not in self._beats or self._beats[key] < at:
                            self._beats[key] = at
                    self._in_flight = 0
                    stopping = self._stopping
                self._failed(e, len(ops) + len(beats))
                if stopping:
                    return
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(delay * 2, self.retry_max)
                continue
            delay = self.retry_initial
            self._recovered(len(ops) + len(beats))
            self._done(ops, results)
            self.written(upto)

    def _done(self, ops: list, results: list, finished: bool = True) -> None:
        with self._lock:
            for _ in ops:
                self._ops.popleft()
            if finished:
                self._in_flight = 0
            self._lock.notify_all()
        for op, result in zip(ops, results, strict=True):
            if isinstance(op, CloseOpen) and not op.future.done():
                op.future.set_result(result)

    def _write_singly(self, ops: list, beats: dict[str, datetime]) -> None:
        """Write each event in its own transaction, dropping those refused."""
        for op in ops:
            try:
                results = self._write([op], {})
            except StatementError as e:
                if is_outage(e):
                    raise
                self.log.error(
                    "usage ledger: %s refused by the database, dropped: %s",
                    type(op).__name__.lower(),
                    scrub(str(getattr(e, "orig", None) or e), self._secret),
                )
                if isinstance(op, CloseOpen):
                    op.future.set_exception(e)
                results = [None]
            self._done([op], results, finished=False)
        self._write([], beats)

    def _insert(self):
        """An insert that skips a session already written (a replayed start)."""
        dialect = self._engine.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(sessions).on_conflict_do_nothing(
                index_elements=["id"]
            )
        if dialect == "sqlite":
            return sqlite.insert(sessions).on_conflict_do_nothing(index_elements=["id"])
        return sessions.insert()

    def _write(self, ops: list, beats: dict[str, datetime]) -> list:
        """Write a batch in one transaction, each run of starts or ends in one
        statement executed for many rows (in order), the heartbeats after."""
        results = []
        with self._engine.begin() as connection:
            for kind, run in groupby(ops, key=type):
                run = list(run)
                if kind is Start:
                    connection.execute(self._insert(), [op.row for op in run])
                    results += [None] * len(run)
                elif kind is End:
                    connection.execute(
                        _END,
                        [{"key": o.key, "at": o.at, "reason": o.reason} for o in run],
                    )
                    results += [None] * len(run)
                else:
                    for op in run:
                        result = connection.execute(
                            _CLOSE_OPEN, {"at_most": op.at_most}
                        )
                        results.append(result.rowcount)
            if beats:
                connection.execute(
                    _BEAT, [{"key": key, "at": at} for key, at in beats.items()]
                )
        return results

    # -- outage reporting ------------------------------------------------------

    def _failed(self, error: Exception, waiting: int) -> None:
        if self.outage_since is not None:
            return
        self.outage_since = time.monotonic()
        cause = getattr(error, "orig", None) or error
        self.report_outage(
            f"{type(cause).__name__}: {scrub(str(cause), self._secret)}", waiting
        )

    def _recovered(self, written: int) -> None:
        with self._lock:
            refused, self._dropped_this_outage = self._dropped_this_outage, 0
        if self.outage_since is None and not refused:
            return
        since = self.outage_since or time.monotonic()
        self.report_recovered(time.monotonic() - since, written, refused)
        self.outage_since = None
