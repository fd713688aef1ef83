"""``hubext audit verify`` and ``hubext audit list``: the audit log, checked and read.

The database is named by ``--db-url``, or found from the hub's configuration
(``--hub-config``: a ``jupyterhub_config.py``, loaded as JupyterHub loads
it, or a zero-to-jupyterhub values file): ``c.Console.db_url``, else the
default beside the hub's database. Nothing is written, nothing is created.

Exit status: 0 the chain holds (``verify``), the rows printed (``list``);
1 the chain or the state is broken (``verify``, naming the first bad row
and why), or the database cannot be read (unreachable, no state in it, a
schema this hubext does not know), or the configuration is invalid; 2 bad
arguments. Errors are one line on standard error, never a traceback, and
never show the URL's password.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from .._validation import ConfigError, errors_of
from ..config_files import load_config, load_z2jh_values
from ..csv_cells import csv_line, csv_number, csv_text
from ..database import (
    BadDatabaseURL,
    NoDatabaseFile,
    database_error,
    engine_to_read,
    redact,
)
from ..slugs import community_slug_problem
from ..usage.command import Failure, UsageError, parse_moment
from .chain import AuditRow, Break, canonical_json, timestamp
from .config import Console, check_console_config
from .store import (
    DEFAULT_FILENAME,
    SCHEMA,
    StateStore,
    current_revision,
    default_db_url,
)

FORMATS = ("table", "csv", "json")
#: The columns of ``--format csv`` (and the keys of each row in JSON).
COLUMNS = (
    "seq",
    "at",
    "actor",
    "actor_kind",
    "community",
    "action",
    "version",
    "before",
    "after",
    "prev_hash",
    "hash",
)
#: The hub's working directory in a zero-to-jupyterhub hub pod, where its
#: SQLite database is (``hub.db.type: sqlite-pvc``).
Z2JH_HUB_DIR = "/srv/jupyterhub"
#: JupyterHub's own default ``db_url``.
HUB_DEFAULT_DB_URL = "sqlite:///jupyterhub.sqlite"
_ANCHOR = re.compile(r"([1-9][0-9]*):([0-9a-f]{64})")


def _where(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--db-url",
        help="the database's URL, e.g. sqlite:////srv/jupyterhub/"
        "hubext-state.sqlite or postgresql+psycopg://user:pw@host/db",
    )
    source.add_argument(
        "--hub-config",
        metavar="FILE",
        help="the hub's jupyterhub_config.py or zero-to-jupyterhub values.yaml: "
        "its Console.db_url, else the default beside the hub's database "
        "(a relative SQLite path is taken from the current directory, or "
        f"from {Z2JH_HUB_DIR} for a values file)",
    )


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``audit verify`` and ``audit list`` to the ``hubext`` command."""
    audit = commands.add_parser(
        "audit", help="check and read the audit log of the communities' settings"
    )
    sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser(
        "verify",
        help="recompute the audit log's hash chain",
        description="Recompute every row's hash in order, and compare each "
        "community's stored settings with the last change the log holds. "
        "Exit status 0 when everything holds, 1 naming the first bad row.",
    )
    _where(verify)
    verify.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="a row noted before (the head printed by an earlier verify): "
        "the log must still hold it, with this hash (repeatable)",
    )
    listing = sub.add_parser(
        "list",
        help="the audit log's rows, oldest first",
        description="The audit log's rows in order, as a table, CSV or JSON "
        "(with every field the hashes cover).",
    )
    _where(listing)
    listing.add_argument("--community", metavar="SLUG")
    listing.add_argument(
        "--since", metavar="DATE", help="rows at or after this date or time (UTC)"
    )
    listing.add_argument("--format", choices=FORMATS, default="table")


def run(args: argparse.Namespace) -> int:
    """Run ``hubext audit ...`` with parsed ``args``; return the exit status."""
    try:
        if args.audit_command == "verify":
            return _verify(args)
        return _list(args)
    except UsageError as e:
        print(f"hubext: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"hubext: {e}", file=sys.stderr)
        return 1
    except ConfigError as e:
        for error in errors_of(e):
            print(f"hubext: invalid configuration: {error}", file=sys.stderr)
        return 1


# -- the database ---------------------------------------------------------------


def db_url_from_hub_config(path: str) -> str:
    """The state's URL a hub configured by ``path`` uses (see the module's doc)."""
    if not os.path.isfile(path):
        raise UsageError(f"--hub-config: no such file: {path}")
    z2jh = path.endswith((".yaml", ".yml"))
    try:
        config = load_z2jh_values(path) if z2jh else load_config(path)
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Failure(f"could not read {path}: {type(e).__name__}: {first}") from None
    check_console_config(config)
    url = Console(config=config).db_url
    if not url:
        hub_db_url = config.get("JupyterHub", {}).get("db_url", HUB_DEFAULT_DB_URL)
        if not isinstance(hub_db_url, str):
            raise Failure(f"{path}: JupyterHub.db_url is not a string")
        url = default_db_url(hub_db_url)
    relative = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and not relative.startswith("/"):
        base = Z2JH_HUB_DIR if z2jh else os.getcwd()
        url = f"sqlite:///{os.path.join(base, relative)}"
    return url


def _store(args: argparse.Namespace) -> tuple[StateStore, str]:
    db_url = args.db_url
    if db_url is None:
        db_url = db_url_from_hub_config(args.hub_config)
        print(f"hubext: reading {redact(db_url)}", file=sys.stderr)
    try:
        engine = engine_to_read(
            db_url, example_file=DEFAULT_FILENAME, what="delegated state"
        )
    except BadDatabaseURL as e:
        raise UsageError(str(e)) from None
    except NoDatabaseFile as e:
        raise Failure(str(e)) from None
    where = redact(db_url)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as e:
        engine.dispose()
        raise Failure(f"cannot read {where}: {database_error(e, db_url)}") from None
    if revision is None:
        engine.dispose()
        raise Failure(
            f"no delegated state in {where} (no schema: has a hub run with it?)"
        )
    head = SCHEMA.head_revision()
    if revision != head:
        engine.dispose()
        raise Failure(
            f"the delegated state in {where} is at revision {revision!r}, and "
            f"this hubext reads {head!r}: run the hubext that the hub runs"
        )
    return StateStore(engine), db_url


# -- verify -----------------------------------------------------------------------


def _anchors(values: Iterable[str]) -> list[tuple[int, str]]:
    anchors = []
    for value in values:
        match = _ANCHOR.fullmatch(value.strip())
        if match is None:
            raise UsageError(
                f"--expect: not SEQ:HASH (a row number, a colon and 64 lowercase "
                f"hex digits): {value[:80]!r}"
            )
        anchors.append((int(match[1]), match[2]))
    return anchors


def _verify(args: argparse.Namespace) -> int:
    anchors = _anchors(args.expect)
    store, db_url = _store(args)
    try:
        check = store.check(anchors)
    except SQLAlchemyError as e:
        raise Failure(
            f"cannot read {redact(db_url)}: {database_error(e, db_url)}"
        ) from None
    finally:
        store.close()
    if check.broken is not None:
        print(f"hubext: {describe_break(check.broken)}", file=sys.stderr)
        return 1
    if check.head is None:
        print("hubext: the audit log holds: it is empty")
    else:
        seq, digest = check.head
        print(
            f"hubext: the audit log holds: {check.rows} rows, and the stored "
            f"settings are those it records; head: {seq}:{digest}"
        )
    return 0


def describe_break(broken: Break) -> str:
    """One line saying where the log or the state breaks, and why."""
    if broken.seq is None:
        return f"the delegated state does not match the audit log: {broken.reason}"
    return f"the audit log is broken at row {broken.seq}: {broken.reason}"


# -- list ---------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    if args.community is not None:
        problem = community_slug_problem(args.community)
        if problem is not None:
            raise UsageError(f"--community: {problem}")
    since = parse_moment(args.since, "--since") if args.since else None
    store, db_url = _store(args)
    try:
        rows = store.audit(args.community, since)
    except SQLAlchemyError as e:
        raise Failure(
            f"cannot read {redact(db_url)}: {database_error(e, db_url)}"
        ) from None
    finally:
        store.close()
    print(FORMATTERS[args.format](rows))
    return 0


def _json_text(value: Any) -> str:
    return "" if value is None else canonical_json(value)


def format_csv(rows: list[AuditRow]) -> str:
    """The rows as CSV, safe to open in a spreadsheet (every text cell made
    text with :func:`~hubext.csv_cells.csv_text`; ``before`` and ``after``
    as canonical JSON)."""
    lines = [csv_line(COLUMNS)]
    for row in rows:
        data = row.as_json()
        cells = []
        for column in COLUMNS:
            value = data[column]
            if column in ("seq", "version"):
                cells.append("" if value is None else csv_number(value))
            elif column in ("before", "after"):
                cells.append(csv_text(_json_text(value)))
            else:
                cells.append(csv_text("" if value is None else str(value)))
        lines.append(csv_line(cells))
    return "\n".join(lines)


def format_json(rows: list[AuditRow]) -> str:
    """The rows as JSON: ``{"rows": [...]}``, each with every field the
    hashes cover, ``prev_hash`` and ``hash`` (re-verifiable as they are)."""
    return json.dumps({"rows": [row.as_json() for row in rows]}, indent=2)


def _printable(text: str) -> str:
    # a name holding a terminal's control sequence cannot rewrite the table
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _what(row: AuditRow) -> str:
    """What a row changed, in short: the top-level keys that differ."""
    before, after = row.before, row.after
    if isinstance(before, dict | type(None)) and isinstance(after, dict):
        before = before or {}
        keys = sorted(
            k
            for k in set(before) | set(after)
            if canonical_json(before.get(k)) != canonical_json(after.get(k))
        )
        return ", ".join(keys) or "-"
    text = _json_text(after if after is not None else before)
    return text if len(text) <= 40 else text[:39] + "…"


def format_table(rows: list[AuditRow]) -> str:
    """The rows as a table: who did what, when, in which community."""
    headers = ("seq", "at (UTC)", "actor", "community", "action", "version", "what")
    lines = [
        (
            str(row.seq),
            timestamp(row.at)[:19].replace("T", " "),
            f"{row.actor} ({row.actor_kind})",
            row.community or "-",
            row.action,
            "-" if row.version is None else str(row.version),
            _what(row),
        )
        for row in rows
    ]
    lines = [tuple(_printable(cell) for cell in line) for line in lines]
    widths = [max(len(r[i]) for r in [headers, *lines]) for i in range(len(headers))]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += [
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in lines
    ]
    if not rows:
        out.append("(no rows)")
    return "\n".join(out)


FORMATTERS = {"table": format_table, "csv": format_csv, "json": format_json}
