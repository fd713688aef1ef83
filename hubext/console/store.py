"""The delegated state's database: each community's document, and the audit log.

What a community's admins change in the console (its environments, sizes,
idle timeout; later its invitations) is stored here, one JSON document per
community with a version, and every change is appended to the audit log in
the same transaction, chained to the row before by its hash
(:mod:`hubext.console.chain`). Blocking calls: the hub runs them in a
thread, never on its event loop; :class:`DelegatedCache` answers the spawn
form's reads from memory.

Where it is (``c.Console.db_url``, :mod:`hubext.console.config`): by
default a SQLite file of its own, ``hubext-state.sqlite``, beside the hub's
database, in WAL mode with a busy timeout; PostgreSQL
(``postgresql+psycopg://...``) is supported. Not the ledger's file: the
ledger may be turned off or moved (``UsageLedger.enabled``,
``UsageLedger.db_url``) and must not take the communities' settings with
it; on SQLite its writer process and the console would wait for each
other's write lock; and the state is configuration to back up with the
hub's database, while the ledger is history that grows with every server.
Both may still share one PostgreSQL database: each has its own tables and
its own version table.

Concurrency: a change names the version it edits (optimistic concurrency:
:class:`VersionConflict` when someone changed the document since, and
nothing is written). Appending to the log is serialized across threads and
processes (``BEGIN IMMEDIATE`` on SQLite, ``LOCK TABLE hubext_audit IN
EXCLUSIVE MODE`` on PostgreSQL, :func:`hubext.database.exclusive_write`), so
that the chain never forks and no change is lost; reads never wait.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, insert, select, update

from .. import database
from ..database import UnknownSchema, exclusive_write, make_engine, snapshot
from ..slugs import community_slug_problem
from .chain import GENESIS, AuditRow, Break, ChainCheck, canonical_json, row_hash
from .chain import check_anchors as _check_anchors
from .model import (
    ACTION_MAX_LENGTH,
    ACTOR_KINDS,
    ACTOR_MAX_LENGTH,
    AUDIT_TABLE,
    VERSION_TABLE,
    audit,
    delegated,
)

#: File name of the default SQLite database of the delegated state.
DEFAULT_FILENAME = "hubext-state.sqlite"

MIGRATIONS = Path(__file__).with_name("migrations")

#: The delegated state's schema: its migrations and its version table.
SCHEMA = database.Schema(
    name="the delegated state",
    migrations=MIGRATIONS,
    version_table=VERSION_TABLE,
    setting="Console.db_url",
)

#: Largest document a community may store (canonical JSON, bytes): a
#: backstop; the console's own bounds keep documents far smaller.
MAX_DOCUMENT_BYTES = 1_000_000

#: An action's name: dotted lowercase words, ``environment.add``.
_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")

#: How many rows a walk of the log reads at a time.
_BATCH = 1000

__all__ = [
    "DEFAULT_FILENAME",
    "AuditRow",
    "Break",
    "DelegatedCache",
    "StateStore",
    "Stored",
    "UnknownSchema",
    "VersionConflict",
    "current_revision",
    "default_db_url",
    "head_revision",
    "upgrade_to_head",
]


def utcnow() -> datetime:
    """The current time, aware, in UTC (the store's default clock)."""
    return datetime.now(UTC)


def default_db_url(hub_db_url: str) -> str:
    """The state's URL when none is configured: ``hubext-state.sqlite``
    beside the hub's SQLite file (:func:`hubext.database.default_db_url`)."""
    return database.default_db_url(hub_db_url, DEFAULT_FILENAME)


def head_revision() -> str:
    """The newest revision of the state's schema shipped with this hubext."""
    return SCHEMA.head_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision the database at ``engine`` is at (None: no state yet)."""
    return SCHEMA.current_revision(engine)


def upgrade_to_head(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the state's schema (the hub does it when it starts).

    A database written by a newer hubext raises :class:`UnknownSchema`
    naming both revisions, and is left as it is.
    """
    SCHEMA.upgrade(engine, revision)


class Stored(NamedTuple):
    """A community's stored document and its version."""

    #: a JSON object; None when nothing was ever stored (version 0)
    document: dict[str, Any] | None
    #: 0 when nothing was stored, then 1, 2, 3 ... one more per change
    version: int


#: What :meth:`StateStore.read` answers for a community with no document.
NOTHING = Stored(None, 0)


class VersionConflict(Exception):
    """A change named a version that is not the stored one: nothing was written."""

    def __init__(self, community: str, expected: int, current: int) -> None:
        self.community = community
        self.expected = expected
        self.current = current
        super().__init__(
            f"the settings of {community!r} are at version {current}, not "
            f"{expected}: someone changed them since; read them again"
        )


# -- the arguments, checked (the console validates first: these are a backstop) --


def _check_community(community: Any) -> str:
    problem = community_slug_problem(community)
    if problem is not None:
        raise ValueError(f"community: {problem}")
    return community


def _check_who(actor: Any, actor_kind: Any, action: Any) -> None:
    if not isinstance(actor, str) or not 0 < len(actor) <= ACTOR_MAX_LENGTH:
        raise ValueError(f"actor: a name of 1 to {ACTOR_MAX_LENGTH} characters")
    if actor_kind not in ACTOR_KINDS:
        raise ValueError(f"actor_kind: one of {', '.join(ACTOR_KINDS)}")
    if (
        not isinstance(action, str)
        or len(action) > ACTION_MAX_LENGTH
        or not _ACTION.fullmatch(action)
    ):
        raise ValueError(
            "action: dotted lowercase words (environment.add), "
            f"at most {ACTION_MAX_LENGTH} characters"
        )


def _check_keys(value: Any, path: str = "") -> None:
    # JSON turns other keys into strings: the stored value would not be the
    # one hashed, and 1 and "1" would become one key
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path or 'value'}: key {key!r} is not a string")
            _check_keys(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_keys(item, f"{path}[{i}]")


def _json_value(value: Any, what: str) -> Any:
    """``value`` as it is stored and read back (tuples become lists)."""
    _check_keys(value, what)
    try:
        text = canonical_json(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: not JSON ({e})") from None
    return json.loads(text)


def _document(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError("new_document: a JSON object (a dict)")
    document = _json_value(value, "new_document")
    size = len(canonical_json(document))
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(
            f"new_document: {size} bytes of JSON, more than {MAX_DOCUMENT_BYTES}"
        )
    return document


def _moment(at: Any) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ValueError("at: an aware datetime (UTC)")
    return at.astimezone(UTC)


def _row(record) -> AuditRow:
    return AuditRow(**dict(record._mapping))


class StateStore:
    """The delegated state and its audit log, in one database.

    Every method blocks (run them in a thread in the hub). ``log``: where
    each row appended to the audit log is logged, with its ``seq`` and
    ``hash`` (so that the hub's log keeps a trace of the chain outside the
    database); ``clock``: the time of a change given no ``at``.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        log: logging.Logger | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_age: float = 1.0,
    ) -> None:
        self.engine = engine
        self.log = log or logging.getLogger("hubext.console")
        self.clock = clock
        #: the hub process's cache of the documents, invalidated by every
        #: write through this store
        self.cache = DelegatedCache(self, max_age=max_age)

    @classmethod
    def open(
        cls,
        db_url: str,
        *,
        log: logging.Logger | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> StateStore:
        """The store at ``db_url``, its schema created or upgraded first.

        Raises :class:`UnknownSchema` for a database a newer hubext wrote,
        SQLAlchemy's errors when it cannot be reached.
        """
        engine = make_engine(db_url)
        try:
            upgrade_to_head(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, log=log, clock=clock)

    def close(self) -> None:
        """Close the store's connections."""
        self.engine.dispose()

    # -- the documents ----------------------------------------------------------

    def read(self, community: str) -> Stored:
        """The stored document of ``community`` and its version (:data:`NOTHING`
        when nothing was ever stored). One indexed read."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(delegated.c.document, delegated.c.version).where(
                    delegated.c.community == community
                )
            ).first()
        return Stored(found.document, found.version) if found else NOTHING

    def read_all(self) -> dict[str, Stored]:
        """Every community's stored document and version, in one query."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(delegated.c.community, delegated.c.document, delegated.c.version)
            ).all()
        return {r.community: Stored(r.document, r.version) for r in rows}

    def versions(self) -> dict[str, int]:
        """Every community's version, without the documents (one query)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(delegated.c.community, delegated.c.version)
            ).all()
        return {r.community: r.version for r in rows}

    def read_many(self, communities: Iterable[str]) -> dict[str, Stored]:
        """The stored documents of ``communities`` that have one (one query)."""
        wanted = list(communities)
        if not wanted:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    delegated.c.community, delegated.c.document, delegated.c.version
                ).where(delegated.c.community.in_(wanted))
            ).all()
        return {r.community: Stored(r.document, r.version) for r in rows}

    def change(
        self,
        community: str,
        expected_version: int,
        new_document: Mapping[str, Any],
        *,
        actor: str,
        actor_kind: str,
        action: str,
        at: datetime | None = None,
    ) -> AuditRow:
        """Store ``new_document`` for ``community`` and log it, in one transaction.

        ``expected_version`` is the version the change was made on (0: the
        community has no document yet). When the stored version is another,
        nothing is written and :class:`VersionConflict` says the current
        one. Otherwise the document is written with the next version, and
        its audit row (``before``: the previous document, ``after``: the
        new one, ``version``: the new version) is appended to the log; a
        crash before the commit leaves neither. Returns the audit row.
        Raises ValueError for arguments the store cannot hold (the console
        validates them first).
        """
        _check_community(community)
        _check_who(actor, actor_kind, action)
        if type(expected_version) is not int or expected_version < 0:
            raise ValueError("expected_version: a whole number, 0 or more")
        document = _document(new_document)
        at = _moment(self.clock() if at is None else at)
        with exclusive_write(self.engine, AUDIT_TABLE) as connection:
            found = connection.execute(
                select(delegated.c.document, delegated.c.version).where(
                    delegated.c.community == community
                )
            ).first()
            current = found.version if found else 0
            if current != expected_version:
                raise VersionConflict(community, expected_version, current)
            version = current + 1
            row = self._append(
                connection,
                at=at,
                actor=actor,
                actor_kind=actor_kind,
                community=community,
                action=action,
                version=version,
                before=found.document if found else None,
                after=document,
            )
            values = {
                "document": document,
                "version": version,
                "updated_at": at,
                "updated_by": actor,
            }
            if found:
                connection.execute(
                    update(delegated)
                    .where(delegated.c.community == community)
                    .values(**values)
                )
            else:
                connection.execute(
                    insert(delegated).values(community=community, **values)
                )
        self.cache.invalidate()
        self._logged(row)
        return row

    # -- the log ----------------------------------------------------------------

    def record(
        self,
        *,
        actor: str,
        actor_kind: str,
        action: str,
        community: str | None = None,
        before: Any = None,
        after: Any = None,
        at: datetime | None = None,
    ) -> AuditRow:
        """Append an event that changes no document (a refused attempt, an
        invitation redeemed ...) to the log, in the same chain as the changes.

        ``before`` and ``after``: any JSON values (None: nothing). Returns
        the row.
        """
        if community is not None:
            _check_community(community)
        _check_who(actor, actor_kind, action)
        before = _json_value(before, "before")
        after = _json_value(after, "after")
        at = _moment(self.clock() if at is None else at)
        with exclusive_write(self.engine, AUDIT_TABLE) as connection:
            row = self._append(
                connection,
                at=at,
                actor=actor,
                actor_kind=actor_kind,
                community=community,
                action=action,
                version=None,
                before=before,
                after=after,
            )
        self._logged(row)
        return row

    def _append(self, connection: Connection, **fields: Any) -> AuditRow:
        """The next row of the log (under the log's lock, in its transaction)."""
        last = connection.execute(
            select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
        ).first()
        seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS)
        fields["seq"] = seq
        row = AuditRow(**fields, prev_hash=prev_hash, hash=row_hash(prev_hash, fields))
        connection.execute(insert(audit).values(**vars(row)))
        return row

    def _logged(self, row: AuditRow) -> None:
        self.log.info(
            "audit log: row %d: %s by %s %s%s; hash %s",
            row.seq,
            row.action,
            row.actor_kind,
            row.actor,
            f" in {row.community}" if row.community else "",
            row.hash,
        )

    def audit(
        self,
        community: str | None = None,
        since: datetime | None = None,
        *,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[AuditRow]:
        """Rows of the log in order: of ``community`` (None: all), at or after
        ``since``, after the row ``after_seq`` (to read on from a previous
        page), at most ``limit``."""
        query = select(audit).where(audit.c.seq > after_seq).order_by(audit.c.seq)
        if community is not None:
            query = query.where(audit.c.community == community)
        if since is not None:
            query = query.where(audit.c.at >= since)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [_row(r) for r in connection.execute(query)]

    def head(self) -> tuple[int, str] | None:
        """The last row's ``(seq, hash)``, None for an empty log."""
        with self.engine.connect() as connection:
            last = connection.execute(
                select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
            ).first()
        return (last.seq, last.hash) if last else None

    def count(self, community: str | None = None) -> int:
        """How many rows the log has (of ``community``; None: all)."""
        query = select(func.count()).select_from(audit)
        if community is not None:
            query = query.where(audit.c.community == community)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def page_audit(self, community: str, limit: int) -> tuple[list[AuditRow], int]:
        """The last ``limit`` rows of ``community``, newest first, and how
        many it has, read at one moment (one transaction)."""
        latest = (
            select(audit)
            .where(audit.c.community == community)
            .order_by(audit.c.seq.desc())
            .limit(limit)
        )
        count = (
            select(func.count())
            .select_from(audit)
            .where(audit.c.community == community)
        )
        with self.engine.connect() as connection, connection.begin():
            rows = [_row(r) for r in connection.execute(latest)]
            return rows, connection.execute(count).scalar()

    def check(self, anchors: Iterable[tuple[int, str]] = ()) -> ChainCheck:
        """The whole log and state checked, at one moment (writers do not wait).

        Recomputes every row's hash in ``seq`` order, then compares each
        community's stored document with its last change in the log, then
        the ``anchors`` (``(seq, hash)`` pairs noted outside the database).
        Returns the :class:`~hubext.console.chain.ChainCheck`: its
        ``broken`` (None when everything holds), ``rows`` and ``head``.
        """
        check = ChainCheck()
        anchors = list(anchors)
        wanted = {seq for seq, _ in anchors}
        hashes: dict[int, str] = {}
        with snapshot(self.engine) as connection:
            stored = {
                r.community: (r.document, r.version, r.updated_at, r.updated_by)
                for r in connection.execute(select(delegated))
            }
            rows = connection.execution_options(yield_per=_BATCH).execute(
                select(audit).order_by(audit.c.seq)
            )
            for record in rows:
                row = _row(record)
                if row.seq in wanted:
                    hashes[row.seq] = row.hash
                if check.add(row) is not None:
                    break
            rows.close()
        if check.broken is None:
            check.broken = check.state_break(stored)
        if check.broken is None:
            check.broken = _check_anchors(anchors, hashes)
        return check

    def verify(self, anchors: Iterable[tuple[int, str]] = ()) -> Break | None:
        """The first place the log breaks, or None when it holds (:meth:`check`).

        ``Break.seq`` is the first bad row (None when the break is a stored
        document that disagrees with the log), ``Break.reason`` says why.
        """
        return self.check(anchors).broken


class DelegatedCache:
    """The stored documents as the hub process reads them, from memory.

    At most ``max_age`` seconds old: after that, the next read asks the
    database for the versions (one small query) and reads again only the
    documents whose version changed. A change through the same
    :class:`StateStore` invalidates it at once, so that the hub's next
    spawn form shows it; a change by another process shows within
    ``max_age``. A value derived from a document (a profile list) may be
    kept under the document's ``version``. Thread-safe; a read of a fresh
    cache does no I/O. When the database cannot be read, the last documents
    read are served (the error is logged once) until it can; with none, the
    error is raised.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._documents: dict[str, Stored] | None = None
        self._read_at = float("-inf")
        # one more at each invalidation: a read that began before one is
        # kept, but not taken as fresh
        self._generation = 0
        self._failing = False

    def invalidate(self) -> None:
        """Read the database again at the next read."""
        self._generation += 1
        self._read_at = float("-inf")

    def is_fresh(self) -> bool:
        """Whether a read now is answered from memory, with no I/O.

        A caller on an event loop reads a fresh cache in place and a stale
        one in a thread.
        """
        return (
            self._documents is not None and self.clock() - self._read_at < self.max_age
        )

    def _fresh(self) -> dict[str, Stored]:
        documents = self._documents
        if documents is not None and self.clock() - self._read_at < self.max_age:
            return documents
        with self._lock:
            documents = self._documents
            if documents is not None and self.clock() - self._read_at < self.max_age:
                return documents
            started, generation = self.clock(), self._generation
            try:
                documents = self._reread(documents)
            except Exception as e:
                if documents is None:
                    raise
                if not self._failing:
                    self.store.log.error(
                        "delegated state: cannot read %s (%s); using what was "
                        "read before until it can",
                        database.redact(self.store.engine.url),
                        type(e).__name__,
                    )
                    self._failing = True
                return documents
            if self._failing:
                self.store.log.info("delegated state: readable again")
                self._failing = False
            self._documents = documents
            if generation == self._generation:
                self._read_at = started
            return documents

    def _reread(self, documents: dict[str, Stored] | None) -> dict[str, Stored]:
        if documents is None:
            return self.store.read_all()
        versions = self.store.versions()
        changed = [c for c, v in versions.items() if documents.get(c, NOTHING)[1] != v]
        if not changed and len(versions) == len(documents):
            return documents
        fresh = {c: documents[c] for c in versions if c not in changed}
        fresh.update(self.store.read_many(changed))
        return fresh

    def get(self, community: str) -> Stored:
        """The stored document of ``community`` and its version (a copy)."""
        stored = self._fresh().get(community, NOTHING)
        return Stored(copy.deepcopy(stored.document), stored.version)

    def stamp(self) -> object:
        """An object that stays the same (``is``) while no document changes.

        Opaque: compare it, never read it. A value derived from the
        documents and kept with their stamp holds while the stamp is the
        same; reading it does what a read does (no I/O when fresh).
        """
        return self._fresh()

    def versions(self) -> dict[str, int]:
        """Every community's version (to key values derived from documents)."""
        return {c: s.version for c, s in self._fresh().items()}

    def all(self) -> dict[str, Stored]:
        """Every community's stored document and version (copies)."""
        return {
            c: Stored(copy.deepcopy(s.document), s.version)
            for c, s in self._fresh().items()
        }
