"""The recorder the spawners call: one row per server session, off the event loop.

Every method of :class:`Ledger` returns at once and never raises: it hands
an event to the ledger's writer, which writes the events to the database in
order, one transaction per batch (:mod:`hubext.usage.writer`). The writer
is a thread of the calling process (the default of this class), or a
process of its own (``process=True``, what the hub uses:
:mod:`hubext.usage.writer_process`), so that its work never holds the hub's
event loop, not even through Python's global interpreter lock.

When the database cannot be reached the writer keeps the events and retries
with exponential back-off; the outage is logged once when it starts and once
when it ends (the URL's password is never logged), and the events are
written when the database is back. Heartbeats (:meth:`Ledger.seen_alive`)
are merged per session; starts, ends and start-up closes are kept in order,
up to ``max_pending`` of them: enough for 100,000 starts and stops during one
outage by default. Past that bound a new event is refused (never an older
one), counted in :attr:`Ledger.dropped` and logged as an error once per
outage; the caller still gets its session key and is never blocked.

Usage (what the spawners do)::

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
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from .model import HUB_ACCOUNT, EndReason, Resources, utcnow
from .writer import CloseOpen, End, Start, ThreadWriter
from .writer_process import ProcessWriter

#: Session keys: random, unique, not secret. Not uuid.uuid4(): its
#: os.urandom() releases the GIL, and a busy writer thread then holds the
#: hub's event loop for up to a switch interval (benchmarks/bench_usage_overhead.py).
_KEYS = random.Random()


class Ledger:
    """Records server sessions in the usage database, from a writer of its own.

    :param db_url: the ledger's SQLAlchemy URL (see :mod:`hubext.usage.store`).
    :param clock: returns the current aware UTC ``datetime``; used when a
        method is called without ``at``.
    :param log: where outages and refused events are reported.
    :param max_pending: most starts/ends/closes kept while the database is
        unreachable (heartbeats are merged and not counted).
    :param retry_initial, retry_max: back-off between attempts, in seconds,
        doubling from the first to the second.
    :param engine: an engine to use instead of one made from ``db_url``
        (a writer thread only).
    :param process: write from a process of its own instead of a thread
        (:class:`~hubext.usage.writer_process.ProcessWriter`).
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
        process: bool = False,
    ):
        self.db_url = db_url
        self.max_pending = max_pending
        self._clock = clock
        self.log = log or logging.getLogger("hubext.usage")
        settings = dict(
            log=self.log,
            max_pending=max_pending,
            retry_initial=retry_initial,
            retry_max=retry_max,
        )
        if process:
            if engine is not None:
                raise ValueError("a writer process makes its own engine")
            self._writer: ThreadWriter | ProcessWriter = ProcessWriter(
                db_url, **settings
            )
        else:
            self._writer = ThreadWriter(db_url, engine=engine, **settings)

    # -- the recorder's API (called from the hub's event loop) --------------

    def start(self) -> None:
        """Start the writer (which first migrates the schema)."""
        self._writer.start()

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
            self._writer.put(Start(row))
        except Exception:
            self.log.exception("usage ledger: could not record the start of %s", key)
        return key

    def seen_alive(self, keys: Iterable[str], at: datetime | None = None) -> None:
        """The hub saw these sessions' servers running at ``at`` (default now)."""
        try:
            self._writer.beat(list(keys), self._now_or(at))
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
            self._writer.put(End(key, at, reason))
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
            self._writer.put(CloseOpen(self._now_or(at_most), future))
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

    # -- the writer's state (metrics), waiting and stopping ---------------------

    @property
    def pending(self) -> int:
        """Events not yet written (heartbeats counted once per session)."""
        return self._writer.pending

    @property
    def dropped(self) -> int:
        """Events refused because ``max_pending`` were waiting."""
        return self._writer.dropped

    @property
    def outage_since(self) -> float | None:
        """``time.monotonic()`` when the current outage began, or None."""
        return self._writer.outage_since

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every event so far is written; False on timeout."""
        return self._writer.wait_idle(timeout)

    def close(self, timeout: float = 10) -> None:
        """Write what is pending (for up to ``timeout`` s) and stop the writer."""
        self._writer.close(timeout)
