"""The usage page's query string, validated (pure: no I/O).

``?from=YYYY-MM-DD&to=YYYY-MM-DD&step=day|week&by=community|user|profile
&community=<slug>``, every one optional (an empty value is the default).
``from`` and ``to`` are days (UTC), both included, from :data:`FIRST_DAY` to
:data:`LAST_DAY`: the page shows what ``hubext usage report --from FROM --to
TO+1`` shows. Any other query is a :class:`BadRequest` whose message names
the parameter and the value, for a 400: whatever the strings, parsing either
gives a :class:`PageQuery` whose window, buckets and command can be computed,
or raises :class:`BadRequest`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ..slugs import community_slug_problem
from .charts import STEPS
from .model import HUB_ACCOUNT
from .report import GROUPINGS

#: Days shown when the query gives no ``from`` (up to ``to``, included).
DEFAULT_DAYS = 30
#: Longest window the page draws by day (longer: by week).
MAX_DAILY_DAYS = 92
#: Longest window the page shows at all (the report command has no limit).
MAX_DAYS = 731

#: The first and last days the page takes: the Unix epoch (no hub recorded
#: anything before it), and the last day whose end (midnight after it) is
#: still a date.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date.max - timedelta(days=1)

PARAMETERS = ("from", "to", "step", "by", "community")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class BadRequest(ValueError):
    """A query string the page refuses (answered with 400 and this message)."""


@dataclass(frozen=True)
class PageQuery:
    first: date
    last: date
    step: str
    by: str
    community: str | None

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The window's end, excluded: midnight after ``last``."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)

    def as_query(self) -> dict[str, str]:
        query = {
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "step": self.step,
            "by": self.by,
        }
        if self.community:
            query["community"] = self.community
        return query

    def command(self, priced: bool) -> str:
        """The ``hubext usage report`` command line that gives the same table."""
        line = (
            "hubext usage report --db-url URL "
            f"--from {self.first.isoformat()} --to {self.last + timedelta(days=1)} "
            f"--by {self.by} --format csv"
        )
        return line + (" --prices PRICES.yaml" if priced else "")


def _day(value: str, name: str) -> date:
    try:
        if not _DAY.fullmatch(value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"{name}: not a date: {value[:40]!r} (use YYYY-MM-DD, e.g. 2026-03-01)"
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadRequest(
            f"{name}: {value} is out of range: the page shows the days from "
            f"{FIRST_DAY} to {LAST_DAY}"
        )
    return day


def _choice(value: str, name: str, choices) -> str:
    if value not in choices:
        raise BadRequest(f"{name}: {value[:40]!r} is not one of {', '.join(choices)}")
    return value


def parse_query(args: Mapping[str, str], today: date) -> PageQuery:
    """The page's query from its arguments (one value each); ``today`` is
    the default last day."""
    unknown = sorted(set(args) - set(PARAMETERS))
    if unknown:
        raise BadRequest(
            f"unknown parameter {unknown[0][:40]!r}; the page takes "
            + ", ".join(PARAMETERS)
        )
    if args.get("to"):
        last = _day(args["to"], "to")
    else:
        last = min(max(today, FIRST_DAY), LAST_DAY)
    if args.get("from"):
        first = _day(args["from"], "from")
    else:
        first = max(last - timedelta(days=DEFAULT_DAYS - 1), FIRST_DAY)
    if first > last:
        raise BadRequest(f"from {first} is after to {last}")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise BadRequest(
            f"from {first} to {last} is {days} days; the page shows at most "
            f"{MAX_DAYS} (use hubext usage report for longer windows)"
        )
    step = args.get("step") or ("day" if days <= MAX_DAILY_DAYS else "week")
    step = _choice(step, "step", STEPS)
    if step == "day" and days > MAX_DAILY_DAYS:
        raise BadRequest(
            f"step: by day shows at most {MAX_DAILY_DAYS} days, not {days}; "
            "use step=week"
        )
    by = _choice(args.get("by") or "community", "by", GROUPINGS)
    community = args.get("community") or None
    if community is not None and community != HUB_ACCOUNT:
        problem = community_slug_problem(community)
        if problem:
            raise BadRequest(f"community: {problem}: {community[:40]!r}")
    return PageQuery(first=first, last=last, step=step, by=by, community=community)
