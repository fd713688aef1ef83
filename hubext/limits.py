"""Limits and budgets per community: the ``limits`` key, and the decision (pure).

A community's ``limits`` (or ``c.UsageLimits.default`` for communities
without one and for the hub-wide account)::

    "limits": {
        "max_servers": 30,              # servers running at once, charged to it
        "max_servers_per_member": 1,    # ... per member
        "max_cpu": 64,                  # sum of the CPU requests, cores
        "max_memory": "256G",           # sum of the memory requests
        "max_gpu": 4,                   # sum of the GPUs
        "budget": {                     # resource-hours, from the usage ledger
            "gpu_hours": 100,           # server_hours, cpu_hours, gib_hours, gpu_hours
            "period": "month",          # a calendar month (UTC), or {"days": 30}
            "per_member": {"gpu_hours": 10},
        },
    }

A server's CPU and memory are its requests (its limits when no request is
set, as Kubernetes does: :func:`hubext.usage.model.counted`); a budget
counts what the usage report counts, by the same rule. :func:`decide` says
whether one more server fits, and if not, why and when to try again, in
words for the person starting it: numbers as precise as the limit they are
compared with (:func:`amount_used`), words in the singular for one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ._validation import (
    ConfigError,
    KeyPath,
    check_keys,
    collecting,
    expect_mapping,
    plural,
)

#: Budget units: hours of a server, of a CPU core, of a GiB, of a GPU.
UNITS = ("server_hours", "cpu_hours", "gib_hours", "gpu_hours")
UNIT_WORDS = {
    "server_hours": "server-hours",
    "cpu_hours": "CPU-hours",
    "gib_hours": "GiB-hours",
    "gpu_hours": "GPU-hours",
}
#: The same for exactly one
UNIT_WORD = {unit: words[:-1] for unit, words in UNIT_WORDS.items()}
COUNTS = ("max_servers", "max_servers_per_member", "max_gpu")
KEYS = (*COUNTS, "max_cpu", "max_memory", "budget")
GIB = 2**30

_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?\s*", re.IGNORECASE)
_FACTORS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class Budget:
    """Resource-hours per period, for the community and optionally per member."""

    pool: Mapping[str, float] = field(default_factory=dict)
    per_member: Mapping[str, float] = field(default_factory=dict)
    #: None: the calendar month (UTC); else a rolling number of days
    days: int | None = None

    def window_start(self, now: datetime) -> datetime:
        if self.days is None:
            return now.astimezone(UTC).replace(
                day=1, hour=0, minute=0, second=0, microsecond=0
            )
        return now - timedelta(days=self.days)

    def period_words(self) -> str:
        if self.days is None:
            return "this month"
        return f"in the last {self.days} {plural(self.days, 'day')}"

    def renews(self, now: datetime) -> str:
        """When a spent budget can be used again, in words."""
        if self.days is None:
            start = self.window_start(now)
            nxt = (start + timedelta(days=32)).replace(day=1)
            return f"It renews on {nxt:%Y-%m-%d} at 00:00 UTC."
        return (
            f"Usage older than {self.days} {plural(self.days, 'day')} stops counting: try again "
            "when enough of it has aged out of the window."
        )


@dataclass(frozen=True)
class Limits:
    """One community's limits (None: no limit)."""

    max_servers: int | None = None
    max_servers_per_member: int | None = None
    max_cpu: float | None = None
    max_memory: int | None = None
    max_gpu: int | None = None
    budget: Budget | None = None

    @property
    def empty(self) -> bool:
        return self == Limits()


def parse_memory(value: Any, path: KeyPath) -> int:
    """Bytes from a number or a string like ``"256G"`` or ``"512Mi"`` (1024-based)."""
    if isinstance(value, bool):
        raise ConfigError(path, f"must be bytes or a size like '256G', got {value!r}")
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return int(value)
    match = _MEMORY.fullmatch(value) if isinstance(value, str) else None
    if match is None or float(match[1]) <= 0:
        raise ConfigError(
            path, f"must be bytes or a size like '256G' or '512Mi', got {value!r}"
        )
    unit = (match[2] or "")[:1].upper()
    return int(float(match[1]) * _FACTORS.get(unit, 1))


def _positive(value: Any, path: KeyPath, *, integer: bool) -> float | int:
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not math.isfinite(value)
        or value < 0
    ):
        what = "a whole number" if integer else "a number"
        raise ConfigError(path, f"must be {what} >= 0, got {value!r}")
    return value


def _hours(value: Any, path: KeyPath) -> dict[str, float]:
    expect_mapping(value, path)
    check_keys(value, path, UNITS)
    hours = {}
    with collecting() as errors:
        for unit, amount in value.items():
            with errors.check():
                hours[unit] = float(_positive(amount, path.attr(unit), integer=False))
    return hours


def _budget(value: Any, path: KeyPath) -> Budget:
    expect_mapping(value, path)
    with collecting() as errors:
        with errors.check():
            check_keys(value, path, (*UNITS, "period", "per_member"))
        pool: dict[str, float] = {}
        with errors.check():
            pool = _hours({u: v for u, v in value.items() if u in UNITS}, path)
        per_member: dict[str, float] = {}
        if "per_member" in value:
            with errors.check():
                per_member = _hours(value["per_member"], path.attr("per_member"))
        days = None
        period = value.get("period", "month")
        with errors.check():
            if isinstance(period, Mapping):
                check_keys(period, path.attr("period"), ("days",))
                days = period.get("days")
                if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                    raise ConfigError(
                        path.attr("period").attr("days"),
                        f"must be a whole number of days >= 1, got {days!r}",
                    )
            elif period != "month":
                raise ConfigError(
                    path.attr("period"),
                    f"must be 'month' or {{'days': N}}, got {period!r}",
                )
        if not errors.errors and not pool and not per_member:
            raise ConfigError(
                path,
                "names no resource: give at least one of "
                + ", ".join(UNITS)
                + " (for the community, or under per_member)",
            )
    return Budget(pool=pool, per_member=per_member, days=days)


def parse_limits(value: Any, path: KeyPath, slug: str = "") -> Limits:
    """A community's ``limits`` key (or the hub-wide default)."""
    expect_mapping(value, path)
    parsed: dict[str, Any] = {}
    with collecting() as errors:
        with errors.check():
            check_keys(value, path, KEYS)
        for key in COUNTS:
            if key in value:
                with errors.check():
                    parsed[key] = int(
                        _positive(value[key], path.attr(key), integer=True)
                    )
        if "max_cpu" in value:
            with errors.check():
                parsed["max_cpu"] = float(
                    _positive(value["max_cpu"], path.attr("max_cpu"), integer=False)
                )
        if "max_memory" in value:
            with errors.check():
                parsed["max_memory"] = parse_memory(
                    value["max_memory"], path.attr("max_memory")
                )
        if "budget" in value:
            with errors.check():
                parsed["budget"] = _budget(value["budget"], path.attr("budget"))
    return Limits(**parsed)


#: Where the limits of communities without their own are configured.
DEFAULT_PATH = KeyPath("UsageLimits.default")


def default_limits(value: Any, path: KeyPath = DEFAULT_PATH) -> Limits:
    """``c.UsageLimits.default`` (empty: no limit), parsed like a community's."""
    return parse_limits(value, path) if value else Limits()


def describe(limits: Limits | None) -> str:
    """A short description of ``limits`` (``hubext check-config``'s table)."""
    if limits is None or limits.empty:
        return "-"
    parts = []
    if limits.max_servers is not None:
        parts.append(_servers(limits.max_servers))
    if limits.max_servers_per_member is not None:
        parts.append(f"{limits.max_servers_per_member}/member")
    if limits.max_cpu is not None:
        parts.append(f"{_cores(limits.max_cpu)} {plural(limits.max_cpu, 'CPU')}")
    if limits.max_memory is not None:
        parts.append(_gib(limits.max_memory))
    if limits.max_gpu is not None:
        parts.append(f"{limits.max_gpu} {plural(limits.max_gpu, 'GPU')}")
    budget = limits.budget
    if budget is not None:
        period = (
            "month"
            if budget.days is None
            else f"{budget.days} {plural(budget.days, 'day')}"
        )
        for unit, amount in budget.pool.items():
            parts.append(f"{hours_of(amount, unit)}/{period}")
        for unit, amount in budget.per_member.items():
            parts.append(f"{hours_of(amount, unit)}/member/{period}")
    return ", ".join(parts)


# -- the decision ---------------------------------------------------------------------


@dataclass(frozen=True)
class Demand:
    """What one server charged to a community takes while it runs."""

    community: str
    user: str
    cpu: float = 0.0  # cores (request, or limit when no request)
    memory: int = 0  # bytes
    gpus: int = 0

    def rate(self, unit: str) -> float:
        """Units per hour this server uses."""
        return {
            "server_hours": 1.0,
            "cpu_hours": self.cpu,
            "gib_hours": self.memory / GIB,
            "gpu_hours": float(self.gpus),
        }[unit]


@dataclass
class Refusal:
    """Why a server may not start, for the person starting it."""

    message: str
    #: the limit's key path inside ``limits`` (for logs and metrics)
    key: str


#: How messages name the hub-wide account (servers of profiles no community
#: of the person offers): ``_hub`` in the ledger.
HUB_ACCOUNT_NAME = "the hub-wide account"


def limits_of(communities: Any, slug: str, default: Limits) -> Limits:
    """The limits of the account ``slug``: the community's own ``limits``, or
    ``default`` (``c.UsageLimits.default``) for a community without them and
    for the hub-wide account. ``communities`` maps slugs to communities."""
    if slug in communities and communities[slug].limits is not None:
        return communities[slug].limits
    return default


def account_name(communities: Any, slug: str) -> str:
    """How messages name the account ``slug``: the community's display name,
    or :data:`HUB_ACCOUNT_NAME` (written ``The ...`` at a sentence's start:
    :func:`sentence_start`)."""
    if slug in communities:
        return communities[slug].display_name
    return HUB_ACCOUNT_NAME


def sentence_start(name: str) -> str:
    """``name`` (from :func:`account_name`) at the start of a sentence."""
    return "The hub-wide account" if name == HUB_ACCOUNT_NAME else name


def _servers(count: int) -> str:
    return f"{count} {plural(count, 'server')}"


def _cores(value: float) -> str:
    return f"{value:g}"


def _gib(value: float) -> str:
    return f"{value / GIB:.3g} GiB"


def hours_of(amount: float, unit: str) -> str:
    """``amount`` of ``unit`` in words: ``1 server-hour``, ``0.5 GPU-hours``."""
    return f"{amount:g} {UNIT_WORD[unit] if amount == 1 else UNIT_WORDS[unit]}"


def _decimals(amount: float) -> int:
    """The decimals ``amount`` is written with (at least 1, at most 6)."""
    text = f"{amount:.6f}".rstrip("0")
    return min(6, max(1, len(text.split(".")[1])))


def amount_used(used: float, amount: float) -> str:
    """``used`` written as precisely as the ``amount`` it is compared with.

    With as many decimals as ``amount`` has (at least one), so that a
    budget of 0.01 spent never reads "used 0.0 of its 0.01", and a use
    that is not zero never reads as zero ("less than 0.1").
    """
    decimals = _decimals(amount)
    text = f"{used:.{decimals}f}"
    if used > 0 and float(text) == 0:
        return f"less than {10**-decimals:.{decimals}f}"
    return text


def decide(
    limits: Limits,
    demand: Demand,
    running: Iterable[Demand],
    *,
    name: str,
    used: Mapping[tuple[str, bool], float] | None = None,
    now: datetime | None = None,
) -> Refusal | None:
    """None if ``demand`` fits in ``limits`` next to ``running``; else a Refusal.

    ``running`` are the servers already charged to the same community
    (reservations included). ``name`` is how the community is called in
    messages. ``used[(unit, per_member)]`` is the budget's usage in its
    window, for the community (False) or for this member (True), in hours.
    """
    running = list(running)
    mine = [r for r in running if r.user == demand.user]
    if limits.max_servers is not None and len(running) + 1 > limits.max_servers:
        return Refusal(
            f"{sentence_start(name)} has {len(running)} of its "
            f"{_servers(limits.max_servers)} running (max_servers). "
            "Try again when one of them stops.",
            "max_servers",
        )
    if (
        limits.max_servers_per_member is not None
        and len(mine) + 1 > limits.max_servers_per_member
    ):
        return Refusal(
            f"You have {_servers(len(mine))} charged to {name} running, its limit "
            f"per member (max_servers_per_member) is "
            f"{limits.max_servers_per_member}. Stop one of them first.",
            "max_servers_per_member",
        )
    for key, want, total, show in (
        ("max_cpu", demand.cpu, sum(r.cpu for r in running), _cores),
        ("max_memory", demand.memory, sum(r.memory for r in running), _gib),
        ("max_gpu", demand.gpus, sum(r.gpus for r in running), _cores),
    ):
        limit = getattr(limits, key)
        if limit is None or not want or total + want <= limit:
            continue
        return Refusal(
            f"Servers charged to {name} request {show(total)} of its "
            f"{show(limit)}{_unit_word(key, limit)} ({key}) and this one requests "
            f"{show(want)}{_unit_word(key, want)}. Try again when some stop, or "
            "choose smaller options.",
            key,
        )
    budget = limits.budget
    if budget is not None and used is not None:
        now = now or datetime.now(UTC)
        for per_member, hours in ((False, budget.pool), (True, budget.per_member)):
            for unit, amount in hours.items():
                if not demand.rate(unit):
                    continue  # this server does not use it
                spent = used.get((unit, per_member), 0.0)
                if spent < amount:
                    continue
                who = "You have" if per_member else f"{sentence_start(name)} has"
                of = (
                    f"your {hours_of(amount, unit)} of {name}'s budget"
                    if per_member
                    else f"its {hours_of(amount, unit)}"
                )
                key = f"budget.per_member.{unit}" if per_member else f"budget.{unit}"
                return Refusal(
                    f"{who} used {amount_used(spent, amount)} of {of} "
                    f"{budget.period_words()} ({key}). {budget.renews(now)}",
                    key,
                )
    return None


def summary(
    limits: Limits,
    community: str,
    user: str,
    running: Iterable[Demand],
    *,
    name: str,
    used: Mapping[tuple[str, bool], float] | None = None,
) -> list[str]:
    """What is left of ``limits``, one line each, for the spawn form."""
    running = list(running)
    lines = []
    if limits.max_servers is not None:
        lines.append(
            f"{sentence_start(name)}: {len(running)} of "
            f"{_servers(limits.max_servers)} running."
        )
    if limits.max_servers_per_member is not None:
        mine = sum(1 for r in running if r.user == user)
        lines.append(
            f"You: {mine} of {_servers(limits.max_servers_per_member)} charged "
            f"to {name}."
        )
    for key, total, show in (
        ("max_cpu", sum(r.cpu for r in running), _cores),
        ("max_memory", sum(r.memory for r in running), _gib),
        ("max_gpu", sum(r.gpus for r in running), _cores),
    ):
        limit = getattr(limits, key)
        if limit is not None:
            lines.append(
                f"{sentence_start(name)}: {show(total)} of {show(limit)}"
                f"{_unit_word(key, limit)} requested by running servers."
            )
    budget = limits.budget
    if budget is not None and used is not None:
        for per_member, hours in ((False, budget.pool), (True, budget.per_member)):
            for unit, amount in hours.items():
                spent = used.get((unit, per_member), 0.0)
                who = "You" if per_member else sentence_start(name)
                lines.append(
                    f"{who}: {amount_used(spent, amount)} of {hours_of(amount, unit)} "
                    f"used {budget.period_words()}."
                )
    return lines


def _unit_word(key: str, value: float) -> str:
    """The word after a number of ``key`` (``max_cpu``, ``max_gpu``; memory has
    its unit in the number)."""
    if key == "max_memory":
        return ""
    return " " + plural(value, {"max_cpu": "CPU", "max_gpu": "GPU"}[key])
