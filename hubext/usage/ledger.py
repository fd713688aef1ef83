"""The recorder the spawners call: one row per server session, off the event loop.

Every method of :class:`Ledger` returns at once and never raises: it puts an
event on a queue that a single writer thread writes to the database, in
order, one transaction per batch. When the database cannot be reached the
writer keeps the events and retries with exponential back-off; the outage is
logged once when it starts and once when it ends (the URL's password is never
logged), and the events are written when the database is back.

Queue policy: heartbeats (:meth:`Ledger.seen_alive`) are merged per session
(only the latest moment is kept), so they take one slot per running server
however long an outage lasts. Starts, ends and start-up closes are kept in
order, up to ``max_pending`` of them: enough for 100,000 starts and stops
during one outage by default. Past that bound a new event is refused (never
an older one), counted in :attr:`Ledger.dropped` and logged as an error once
per outage; the caller still gets its session key and is never blocked.

Usage (what the spawners will do)::

    ledger = Ledger("sqlite:////srv/jupyterhub/hubext-usage.sqlite", log=log)
    ledger.start()  # at hub start-up; migrates the schema in the writer
    ledger.close_open_sessions(at_most=hub_started_at)  # sessions of a crashed hub
    key = ledger.session_started(
        user="ada", server_name="", community="ocean-lab", profile="gpu",
        choices={"image": "pytorch"},
        resources=Resources(cpu_request=2, mem_request=8 * 2**30, gpus=1),
    )
    ledger.seen_alive([key])  # each poll that finds the server running
    ledger.session_ended(key, reason=EndReason.STOPPED_BY_USER)
    ledger.close(timeout=10)  # at hub shutdown
"""

from __future__ import annotations

import concurrent.futures
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, case, update
from sqlalchemy.exc import DBAPIError, StatementError

from .._validation import plural
from .model import HUB_ACCOUNT, EndReason, Resources, sessions, utcnow
from .store import make_engine, password_of, redact, upgrade_to_head

_HEARTBEAT_CHUNK = 500


def _is_outage(error: StatementError) -> bool:
    """Whether ``error`` means the database cannot be used now (retry later)."""
    return isinstance(error, DBAPIError) and (
        error.connection_invalidated
        or type(error).__name__ in ("OperationalError", "InterfaceError")
    )


#: Session keys: random, unique, not secret. Not uuid.uuid4(): its
#: os.urandom() releases the GIL, and a busy writer thread then holds the
#: hub's event loop for up to a switch interval (benchmarks/bench_usage_overhead.py).
_KEYS = random.Random()


@dataclass
class _Start:
    row: dict[str, Any]


@dataclass
class _End:
    key: str
    at: datetime
    reason: str


@dataclass
class _CloseOpen:
    at_most: datetime
    future: concurrent.futures.Future


class Ledger:
    """Records server sessions in the usage database from a writer thread.

    :param db_url: the ledger's SQLAlchemy URL (see :mod:`hubext.usage.store`).
    :param clock: returns the current aware UTC ``datetime``; used when a
        method is called without ``at``.
    :param log: where outages and refused events are reported.
    :param max_pending: most starts/ends/closes kept while the database is
        unreachable (heartbeats are merged and not counted).
    :param retry_initial, retry_max: back-off between attempts, in seconds,
        doubling from the first to the second.
    :param engine: an engine to use instead of one made from ``db_url``.
    """

    def __init__(
        self,
        db_url: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        log: logging.Logger | None = None,
        max_pending: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 60.0,
        engine: Engine | None = None,
    ):
        self.db_url = db_url
        self._engine = engine if engine is not None else make_engine(db_url)
        self._clock = clock
        self.log = log or logging.getLogger("hubext.usage")
        self.max_pending = max_pending
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._secret = password_of(db_url)
        self._lock = threading.Condition()
        self._ops: deque[_Start | _End | _CloseOpen] = deque()
        self._beats: dict[str, datetime] = {}
        self._in_flight = 0
        self._stopping = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._migrated = False
        #: events refused because ``max_pending`` were waiting (for metrics)
        self.dropped = 0
        self._dropped_this_outage = 0
        #: ``time.monotonic()`` when the current outage began, or None
        self.outage_since: float | None = None

    # -- the recorder's API (called from the hub's event loop) --------------

    def start(self) -> None:
        """Start the writer thread (which first migrates the schema)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="hubext-usage-ledger", daemon=True
            )
            self._thread.start()

    def session_started(
        self,
        *,
        user: str,
        community: str | None,
        server_name: str = "",
        profile: str | None = None,
        choices: dict[str, Any] | None = None,
        resources: Resources | None = None,
        at: datetime | None = None,
    ) -> str:
        """Record a server's start; return the session's key at once.

        ``community`` is the community charged, or None for the hub-wide
        account (:data:`~hubext.usage.model.HUB_ACCOUNT`).
        """
        key = str(uuid.UUID(int=_KEYS.getrandbits(128), version=4))
        try:
            at = self._now_or(at)
            resources = resources or Resources()
            row = {
                "id": key,
                "username": user,
                "server_name": server_name or "",
                "community": community or HUB_ACCOUNT,
                "profile": profile,
                "choices": dict(choices) if choices is not None else None,
                "cpu_request": resources.cpu_request,
                "cpu_limit": resources.cpu_limit,
                "mem_request": resources.mem_request,
                "mem_limit": resources.mem_limit,
                "gpus": resources.gpus or 0,
                "started_at": at,
                "last_seen_at": at,
            }
            self._put(_Start(row))
        except Exception:
            self.log.exception("usage ledger: could not record the start of %s", key)
        return key

    def seen_alive(self, keys: Iterable[str], at: datetime | None = None) -> None:
        """The hub saw these sessions' servers running at ``at`` (default now)."""
        try:
            at = self._now_or(at)
            with self._lock:
                for key in keys:
                    previous = self._beats.get(key)
                    if previous is None or previous < at:
                        self._beats[key] = at
                self._lock.notify_all()
        except Exception:
            self.log.exception("usage ledger: could not record a heartbeat")

    def session_ended(
        self, key: str, at: datetime | None = None, reason: EndReason | str = ""
    ) -> None:
        """Close a session at ``at`` (default now) with an :class:`EndReason`.

        Only the first end of a session counts; a later one is ignored.
        """
        try:
            at = self._now_or(at)
            try:
                reason = EndReason(reason).value
            except ValueError:
                self.log.error(
                    "usage ledger: unknown end reason %r for session %s; recorded as is",
                    reason,
                    key,
                )
                reason = str(reason)[:32]
            self._put(_End(key, at, reason))
        except Exception:
            self.log.exception("usage ledger: could not record the end of %s", key)

    def close_open_sessions(
        self, at_most: datetime | None = None
    ) -> concurrent.futures.Future:
        """At hub start-up: close the sessions a previous hub left open.

        Each open session started at or before ``at_most`` (default now) is
        closed at its ``last_seen_at`` with reason ``hub_restart``. Returns a
        future of the number closed (``asyncio.wrap_future`` to await it).
        """
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._put(_CloseOpen(self._now_or(at_most), future))
        except Exception as e:
            self.log.exception("usage ledger: could not close open sessions")
            future.set_exception(e)
        return future

    def _now_or(self, at: datetime | None) -> datetime:
        at = at or self._clock()
        if at.tzinfo is None:
            self.log.error("usage ledger: naive datetime %s taken as UTC", at)
            at = at.replace(tzinfo=UTC)
        return at

    # -- waiting and stopping (tests, hub shutdown) ---------------------------

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
        """Write what is pending (for up to ``timeout`` s) and stop the writer."""
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
                    self._safe_url(),
                )
            self._thread = None
        self._engine.dispose()

    # -- the writer ------------------------------------------------------------

    def _put(self, op: _Start | _End | _CloseOpen) -> None:
        with self._lock:
            if len(self._ops) >= self.max_pending:
                self.dropped += 1
                self._dropped_this_outage += 1
                if self._dropped_this_outage == 1:
                    self.log.error(
                        "usage ledger: %d %s waiting for %s; refusing new "
                        "ones until it is back (their sessions will be missing "
                        "from reports)",
                        len(self._ops),
                        plural(len(self._ops), "event"),
                        self._safe_url(),
                    )
                if isinstance(op, _CloseOpen):
                    op.future.set_exception(RuntimeError("usage ledger queue full"))
                return
            self._ops.append(op)
            self._lock.notify_all()

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
            try:
                if not self._migrated:
                    upgrade_to_head(self._engine)
                    self._migrated = True
                try:
                    results = self._write(ops, beats)
                except StatementError as e:
                    if _is_outage(e):
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

    def _done(self, ops: list, results: list, finished: bool = True) -> None:
        with self._lock:
            for _ in ops:
                self._ops.popleft()
            if finished:
                self._in_flight = 0
            self._lock.notify_all()
        for op, result in zip(ops, results, strict=True):
            if isinstance(op, _CloseOpen) and not op.future.done():
                op.future.set_result(result)

    def _write_singly(self, ops: list, beats: dict[str, datetime]) -> None:
        """Write each event in its own transaction, dropping those refused."""
        for op in ops:
            try:
                results = self._write([op], {})
            except StatementError as e:
                if _is_outage(e):
                    raise
                self.log.error(
                    "usage ledger: %s refused by the database, dropped: %s",
                    type(op).__name__.strip("_").lower(),
                    self._scrub(str(getattr(e, "orig", None) or e)),
                )
                if isinstance(op, _CloseOpen):
                    op.future.set_exception(e)
                results = [None]
            self._done([op], results, finished=False)
        self._write([], beats)

    def _write(self, ops: list, beats: dict[str, datetime]) -> list:
        results = []
        t = sessions.c
        with self._engine.begin() as connection:
            for op in ops:
                if isinstance(op, _Start):
                    connection.execute(sessions.insert(), op.row)
                    results.append(None)
                elif isinstance(op, _End):
                    result = connection.execute(
                        update(sessions)
                        .where(and_(t.id == op.key, t.stopped_at.is_(None)))
                        .values(
                            stopped_at=case(
                                (t.started_at > op.at, t.started_at), else_=op.at
                            ),
                            last_seen_at=case(
                                (t.last_seen_at < op.at, op.at), else_=t.last_seen_at
                            ),
                            end_reason=op.reason,
                        )
                    )
                    results.append(result.rowcount)
                else:
                    result = connection.execute(
                        update(sessions)
                        .where(and_(t.stopped_at.is_(None), t.started_at <= op.at_most))
                        .values(
                            stopped_at=t.last_seen_at,
                            end_reason=EndReason.HUB_RESTART.value,
                        )
                    )
                    results.append(result.rowcount)
            by_moment: dict[datetime, list[str]] = {}
            for key, at in beats.items():
                by_moment.setdefault(at, []).append(key)
            for at, keys in by_moment.items():
                for i in range(0, len(keys), _HEARTBEAT_CHUNK):
                    connection.execute(
                        update(sessions)
                        .where(
                            and_(
                                t.id.in_(keys[i : i + _HEARTBEAT_CHUNK]),
                                t.stopped_at.is_(None),
                                t.last_seen_at < at,
                            )
                        )
                        .values(last_seen_at=at)
                    )
        return results

    # -- outage reporting ------------------------------------------------------

    def _safe_url(self) -> str:
        return redact(self.db_url)

    def _scrub(self, text: str) -> str:
        text = text.splitlines()[0] if text else ""
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def _failed(self, error: Exception, waiting: int) -> None:
        if self.outage_since is not None:
            return
        self.outage_since = time.monotonic()
        cause = getattr(error, "orig", None) or error
        self.log.warning(
            "usage ledger: cannot write to %s (%s: %s); %d %s kept, retrying "
            "with back-off up to %g s",
            self._safe_url(),
            type(cause).__name__,
            self._scrub(str(cause)),
            waiting,
            plural(waiting, "event"),
            self.retry_max,
        )

    def _recovered(self, written: int) -> None:
        with self._lock:
            refused, self._dropped_this_outage = self._dropped_this_outage, 0
        if self.outage_since is None and not refused:
            return
        since = self.outage_since or time.monotonic()
        self.log.warning(
            "usage ledger: %s is reachable again after %.0f s; %d pending events "
            "written%s",
            self._safe_url(),
            time.monotonic() - since,
            written,
            f", {refused} refused (queue full)" if refused else "",
        )
        self.outage_since = None
