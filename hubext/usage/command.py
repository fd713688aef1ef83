"""``hubext usage report``: the ledger's usage over a window, as a table, CSV or JSON.

Exit status (as ``hubext check-config``): 0 report printed; 1 the database
cannot be read (unreachable, no ledger in it) or the prices file is invalid;
2 usage errors (bad dates, a database URL that cannot be parsed or names no
supported database, no such prices file). Errors are one line on standard
error, never a traceback, and never show the URL's password.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, time

import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from .._validation import ConfigError, KeyPath, errors_of
from ..config_files import load_config, load_z2jh_values
from ..prices import parse_price_table
from .model import utcnow
from .query import aggregate_report
from .report import FORMATS, FORMATTERS, GROUPINGS, OPEN_UNTIL
from .store import current_revision, make_engine, password_of, redact


class UsageError(Exception):
    """A bad argument: exit status 2."""


class Failure(Exception):
    """The report could not be made: exit status 1."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``usage report`` to the ``hubext`` command's subcommands."""
    usage = commands.add_parser("usage", help="read the usage ledger")
    sub = usage.add_subparsers(dest="usage_command", required=True)
    report = sub.add_parser(
        "report",
        help="server-, CPU-, GiB- and GPU-hours per community, user or profile",
        description="Usage over [--from, --to) from the hubext usage ledger. "
        "Dates are UTC unless they carry an offset; --to is exclusive.",
    )
    report.add_argument(
        "--db-url",
        required=True,
        help="the ledger's database URL, e.g. sqlite:////srv/jupyterhub/"
        "hubext-usage.sqlite or postgresql+psycopg://user:pw@host/db",
    )
    report.add_argument("--from", dest="start", required=True, metavar="DATE")
    report.add_argument("--to", dest="end", required=True, metavar="DATE")
    report.add_argument("--by", choices=GROUPINGS, default="community")
    report.add_argument("--format", choices=FORMATS, default="table")
    priced = report.add_mutually_exclusive_group()
    priced.add_argument(
        "--prices",
        metavar="FILE",
        help="YAML or JSON file of {community: {cpu_hour, gib_hour, gpu_hour, "
        "server_hour}} (the hub-wide account is _hub): adds a cost column",
    )
    priced.add_argument(
        "--hub-config",
        metavar="FILE",
        help="the hub's jupyterhub_config.py or zero-to-jupyterhub values.yaml: "
        "adds a cost column from each community's usage: {prices: ...}",
    )
    report.add_argument(
        "--open-until",
        choices=OPEN_UNTIL,
        default="now",
        help="count open sessions up to now (default) or up to the last time "
        "the hub saw them alive",
    )
    report.add_argument(
        "--now",
        metavar="TIME",
        help="the moment taken as now (default: the current time)",
    )


def parse_moment(value: str, option: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time (UTC unless it has an offset)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option}: not a date or time: {value!r} (use YYYY-MM-DD or an "
            "ISO 8601 time such as 2026-01-31T12:00:00+00:00)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def load_prices(path: str) -> dict:
    if not os.path.isfile(path):
        raise UsageError(f"--prices: no such file: {path}")
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Failure(f"could not read prices from {path}: {first}") from None
    return parse_price_table(raw if raw is not None else {}, KeyPath("prices"))


def prices_from_hub_config(path: str) -> dict:
    """``{slug: UnitPrices}`` of the communities with prices in a hub config.

    A ``.py`` file is loaded as JupyterHub loads it (run by the admin, on the
    admin's machine); a ``.yaml`` file is read as zero-to-jupyterhub values.
    The communities are validated as at the hub's start-up.
    """
    from ..communities import configured_communities, parse_communities

    if not os.path.isfile(path):
        raise UsageError(f"--hub-config: no such file: {path}")
    try:
        if path.endswith((".yaml", ".yml")):
            config = load_z2jh_values(path)
        else:
            config = load_config(path)
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Failure(f"could not read {path}: {type(e).__name__}: {first}") from None
    registry = parse_communities(configured_communities(config))
    return {
        slug: community.prices
        for slug, community in registry.items()
        if community.prices is not None
    }


def _check_url(db_url: str):
    try:
        url = make_url(db_url)
    except ArgumentError:
        raise UsageError(
            "--db-url: not a database URL (not shown: it may hold a password); "
            "expected e.g. sqlite:////path/hubext-usage.sqlite or "
            "postgresql+psycopg://user:password@host/database"
        ) from None
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:":
            raise UsageError("--db-url: a SQLite URL needs a file path")
        if not os.path.isfile(path):
            raise Failure(f"no usage ledger at {path}: no such file")
    return url


def _engine(db_url: str):
    try:
        return make_engine(db_url, connect_timeout=5)
    except NoSuchModuleError:
        raise UsageError(
            f"--db-url: unsupported database {make_url(db_url).drivername!r}; "
            "use sqlite:///... or postgresql+psycopg://..."
        ) from None
    except ModuleNotFoundError as e:
        raise UsageError(
            f"--db-url: the driver {e.name!r} is not installed "
            "(for PostgreSQL: pip install 'hubext[postgresql]')"
        ) from None


def _scrub(text: str, secret: str | None) -> str:
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text.replace(secret, "***") if secret else text


def run(args: argparse.Namespace, *, now: datetime | None = None) -> int:
    """Run ``hubext usage report`` with parsed ``args``; return the exit status."""
    try:
        text, notes = _report(args, now)
    except UsageError as e:
        print(f"hubext: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"hubext: {e}", file=sys.stderr)
        return 1
    except ConfigError as e:
        for error in errors_of(e):
            print(f"hubext: invalid {_what(args)}: {error}", file=sys.stderr)
        return 1
    print(text)
    for note in notes:
        print(f"hubext: {note}", file=sys.stderr)
    return 0


def _what(args: argparse.Namespace) -> str:
    return "prices" if args.prices else "configuration"


def _report(args: argparse.Namespace, now: datetime | None):
    start = parse_moment(args.start, "--from")
    end = parse_moment(args.end, "--to")
    if not start < end:
        raise UsageError(f"--from {args.start} is not before --to {args.end}")
    if args.now is not None:
        now = parse_moment(args.now, "--now")
    now = now or utcnow()
    if args.prices:
        prices = load_prices(args.prices)
    elif getattr(args, "hub_config", None):
        prices = prices_from_hub_config(args.hub_config)
    else:
        prices = None
    _check_url(args.db_url)
    engine = _engine(args.db_url)
    where = redact(args.db_url)
    try:
        if current_revision(engine) is None:
            raise Failure(
                f"no usage ledger in {where} (no schema: has a hub run with it?)"
            )
        report = aggregate_report(
            engine,
            start=start,
            end=end,
            now=now,
            by=args.by,
            open_until=args.open_until,
            prices=prices,
        )
    except SQLAlchemyError as e:
        cause = getattr(e, "orig", None) or e
        raise Failure(
            f"cannot read the usage database {where}: {type(cause).__name__}: "
            + _scrub(str(cause), password_of(args.db_url))
        ) from None
    finally:
        engine.dispose()
    notes = []
    if report.unpriced:
        notes.append(
            "no prices for " + ", ".join(sorted(report.unpriced)) + ": counted at 0"
        )
    return FORMATTERS[args.format](report), notes
