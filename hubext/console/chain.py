"""The audit log's hash chain: a row's canonical text, its hash, the check. Pure.

Every row of the audit log (``hubext_audit``) carries the hash of the row
before it, so that an edited, removed, reordered or inserted row breaks the
chain where it happened:

- ``prev_hash`` is the previous row's ``hash``; the first row's is
  :data:`GENESIS`, 64 zeros;
- ``hash`` is the SHA-256, in lowercase hex, of ``prev_hash`` followed by
  the row's canonical text (:func:`row_text`), encoded as UTF-8 (the text
  is ASCII);
- the canonical text is the JSON object of the row's other fields
  (:data:`HASHED_FIELDS`: ``seq``, ``at``, ``actor``, ``actor_kind``,
  ``community``, ``action``, ``version``, ``before``, ``after``) with its
  keys sorted, no whitespace (``","`` and ``":"`` as separators), every
  character outside ASCII escaped (``\\uXXXX``), no NaN or infinity, and
  ``at`` written in UTC as ISO 8601 with microseconds
  (``2026-03-01T12:00:00.000000+00:00``, :func:`timestamp`).

:class:`ChainCheck` walks the rows in ``seq`` order and says where the chain
first breaks, and whether the communities' stored documents are the ones
their last audited change wrote. What a chain can and cannot detect is
written in ``docs/reference/audit-log.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: The ``prev_hash`` of the first row.
GENESIS = "0" * 64

#: The fields of a row its hash covers (with ``prev_hash``, before them).
HASHED_FIELDS = (
    "seq",
    "at",
    "actor",
    "actor_kind",
    "community",
    "action",
    "version",
    "before",
    "after",
)


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no whitespace, ASCII only.

    Raises ValueError for what JSON cannot hold exactly (NaN, infinity) and
    TypeError for what it cannot hold at all.
    """
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )


def timestamp(at: datetime) -> str:
    """``at`` in UTC, ISO 8601 with microseconds: ``2026-03-01T12:00:00.000000+00:00``."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: give an aware UTC datetime")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def row_text(fields: Mapping[str, Any]) -> str:
    """The canonical text of a row: its :data:`HASHED_FIELDS` as canonical JSON."""
    hashed = {name: fields[name] for name in HASHED_FIELDS}
    hashed["at"] = timestamp(hashed["at"])
    return canonical_json(hashed)


def row_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + row_text(fields))``, in lowercase hex."""
    return hashlib.sha256((prev_hash + row_text(fields)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditRow:
    """One row of the audit log."""

    #: its place in the log: 1, 2, 3 ... with no gap
    seq: int
    #: when it happened (aware, UTC)
    at: datetime
    #: a hub username, or a service's name
    actor: str
    #: ``user`` or ``service``
    actor_kind: str
    #: the community it concerns (None: none, e.g. a join code that matched
    #: no community)
    community: str | None
    #: a short dotted name: ``environment.add``, ``idle_timeout.set``
    action: str
    #: the document's version the change wrote (None: a row that changed no
    #: document, written by ``record``)
    version: int | None
    #: what was there before, and after (JSON values; None: nothing)
    before: Any
    after: Any
    prev_hash: str
    hash: str

    def fields(self) -> dict[str, Any]:
        """The fields the hash covers."""
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    def as_json(self) -> dict[str, Any]:
        """The row as plain JSON data (``at`` as :func:`timestamp` writes it)."""
        data = {**self.fields(), "prev_hash": self.prev_hash, "hash": self.hash}
        data["at"] = timestamp(self.at)
        return data


@dataclass(frozen=True)
class Break:
    """Where the audit log and the state stop holding, and why."""

    #: the first row that does not hold (None: no row, e.g. a community's
    #: stored document with no change in the log)
    seq: int | None
    reason: str
    #: the community whose stored document disagrees with the log, if that
    #: is the break
    community: str | None = None

    def __str__(self) -> str:
        where = f"row {self.seq}" if self.seq is not None else "the log"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class _Change:
    seq: int
    version: int
    after: str  # canonical JSON
    at: datetime
    actor: str


class ChainCheck:
    """The chain checked one row at a time, in ``seq`` order.

    :meth:`add` each row (it answers the first :class:`Break`, and keeps
    answering it); :meth:`state_break` then compares the stored documents
    with the last change the log holds for each community.
    """

    def __init__(self) -> None:
        self.rows = 0
        self.head: tuple[int, str] | None = None
        self.broken: Break | None = None
        self._prev_hash = GENESIS
        self._next_seq = 1
        self._changes: dict[str, _Change] = {}

    def add(self, row: AuditRow) -> Break | None:
        """Check ``row``, the next by ``seq``; the first break so far, or None."""
        if self.broken is None:
            self.broken = self._check(row)
            self.rows += 1
            self._prev_hash = row.hash
            self._next_seq = row.seq + 1
            self.head = (row.seq, row.hash)
        return self.broken

    def _check(self, row: AuditRow) -> Break | None:
        seq = row.seq
        if seq != self._next_seq:
            missing = (
                f"row {self._next_seq} is"
                if seq == self._next_seq + 1
                else f"rows {self._next_seq} to {seq - 1} are"
            )
            return Break(seq, f"{missing} missing (removed from the log)")
        try:
            computed = row_hash(row.prev_hash, row.fields())
        except (TypeError, ValueError) as e:
            return Break(seq, f"cannot be hashed ({e}): it was edited")
        if computed != row.hash:
            return Break(seq, "its content does not match its hash: the row was edited")
        if row.prev_hash != self._prev_hash:
            before = "the first row's (64 zeros)" if seq == 1 else f"row {seq - 1}'s"
            return Break(
                seq,
                f"its prev_hash is not {before} hash: a row before it was "
                "rewritten, removed or put in",
            )
        if row.version is not None:
            return self._check_change(row)
        return None

    def _check_change(self, row: AuditRow) -> Break | None:
        community = row.community or ""
        last = self._changes.get(community)
        expected = 1 if last is None else last.version + 1
        if row.version != expected:
            return Break(
                row.seq,
                f"it writes version {row.version} of {community!r}, "
                f"whose previous change wrote version {expected - 1}",
            )
        before = canonical_json(row.before) if row.before is not None else None
        if before != (last.after if last is not None else None):
            wrote = f"what row {last.seq} wrote" if last is not None else "nothing"
            return Break(row.seq, f"its 'before' is not {wrote} for {community!r}")
        self._changes[community] = _Change(
            row.seq, row.version, canonical_json(row.after), row.at, row.actor
        )
        return None

    def state_break(
        self, stored: Mapping[str, tuple[Any, int, datetime, str]]
    ) -> Break | None:
        """Whether each community's stored document is what the log says.

        ``stored``: ``{community: (document, version, updated_at,
        updated_by)}`` from the delegated state. Each must be the ``after``,
        the version, the time and the actor of its community's last change
        in the log, and every community the log changed must have one.
        """
        for community in sorted(set(stored) | set(self._changes)):
            last = self._changes.get(community)
            if community not in stored:
                return Break(
                    None,
                    f"the stored document of {community!r} is gone; row "
                    f"{last.seq} wrote its version {last.version}",
                    community,
                )
            document, version, updated_at, updated_by = stored[community]
            if last is None:
                return Break(
                    None,
                    f"the stored document of {community!r} (version {version}) "
                    "has no change in the log: it was written around it",
                    community,
                )
            if (version, canonical_json(document), updated_at, updated_by) != (
                last.version,
                last.after,
                last.at,
                last.actor,
            ):
                return Break(
                    None,
                    f"the stored document of {community!r} (version {version}) "
                    f"is not what its last change, row {last.seq} (version "
                    f"{last.version}), wrote: it was changed around the log",
                    community,
                )
        return None


def check_anchors(
    anchors: Iterable[tuple[int, str]], hashes: Mapping[int, str]
) -> Break | None:
    """Whether the log still holds rows an operator noted elsewhere.

    ``anchors``: ``(seq, hash)`` pairs kept outside the database (the head
    printed by ``hubext audit verify`` last week, the hub's log); ``hashes``:
    ``{seq: hash}`` of those rows now. A log truncated below an anchor, or
    rewritten up to it, no longer holds it.
    """
    for seq, expected in sorted(anchors):
        found = hashes.get(seq)
        if found is None:
            return Break(
                seq,
                "the log has no such row, and it was noted before: rows were "
                "removed from its end",
            )
        if found != expected:
            return Break(
                seq,
                f"its hash is {found}, not the {expected} noted before: the log "
                "was rewritten up to it",
            )
    return None
