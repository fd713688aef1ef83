"""What the console shows of a community, as plain JSON data. Pure.

The REST API answers these values and the page renders them: the bounds as
the operator set them, the stored settings and their version, what needs
attention, the members and why each is one, the limits and what is used.
No I/O: the handlers read the hub's database, the store and the servers,
and pass what they read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._validation import ConfigError, plural
from ..communities import Community
from ..delegated import SpawnerKind, effective
from ..limits import GIB, Demand, Limits, amount_used, hours_of
from ..rules import Rule
from ..self_service import SelfService, Size

#: What a community's ``self_service`` may delegate, in the page's order.
PARTS = ("environments", "sizes", "idle_timeout")


def delegated_parts(service: SelfService) -> list[str]:
    """What the community's admins may change (empty: the page is read-only)."""
    parts = []
    if service.environments is not None:
        parts.append("environments")
    if service.sizes:
        parts.append("sizes")
    if service.idle_timeout is not None:
        parts.append("idle_timeout")
    return parts


def size_json(size: Size) -> dict[str, Any]:
    data: dict[str, Any] = {"display_name": size.display_name}
    for key in ("cpu_limit", "cpu_guarantee", "mem_limit", "mem_guarantee"):
        value = getattr(size, key)
        if value is not None:
            data[key] = value
    if size.gpus:
        data["gpus"] = size.gpus
        data["gpu_resource"] = size.gpu_resource
    return data


def bounds_json(service: SelfService) -> dict[str, Any]:
    """The operator's bounds (``self_service``), as configured."""
    environments = None
    if service.environments is not None:
        bounds = service.environments
        environments = {
            "images": list(bounds.images),
            "tag_pattern": bounds.tag_pattern,
            "allow_digest": bounds.allow_digest,
            "software_roots": list(bounds.software_roots),
            "max_profiles": bounds.max_profiles,
        }
    idle = None
    if service.idle_timeout is not None:
        idle = {"min": service.idle_timeout[0], "max": service.idle_timeout[1]}
    return {
        "environments": environments,
        "sizes": {slug: size_json(size) for slug, size in service.sizes.items()},
        "idle_timeout": idle,
    }


def settings_json(document: Mapping[str, Any] | None, version: int) -> dict:
    """The stored settings with their version (what a change must name)."""
    return {"version": version, **dict(document or {})}


def error_json(error: ConfigError) -> dict[str, str]:
    return {"field": error.path, "message": error.reason}


def needs_attention(
    document: Mapping[str, Any] | None, service: SelfService, kind: SpawnerKind | None
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """What of the stored document today's bounds do not allow (not applied),
    and what is applied: ``(problems, {"environments": [slugs],
    "idle_timeout": seconds or None})``."""
    if document is None:
        return [], {"environments": [], "idle_timeout": None}
    if kind is None:
        # a spawner that takes no stored environment: only the idle timeout
        environments = (
            document.get("environments") if isinstance(document, Mapping) else None
        )
        problems = []
        if environments:
            problems.append(
                {
                    "field": "settings.environments",
                    "message": "this hub's spawner does not take the community's "
                    "environments: none is offered",
                }
            )
        rest = {k: v for k, v in document.items() if k != "environments"}
        found, more = effective(rest, service, "local")
        return problems + [error_json(e) for e in more], {
            "environments": [],
            "idle_timeout": found.idle_timeout,
        }
    found, problems = effective(document, service, kind)
    return [error_json(e) for e in problems], {
        "environments": [e.slug for e in found.environments],
        "idle_timeout": found.idle_timeout,
    }


def duration_words(seconds: int) -> str:
    """``5400`` as ``1 hour 30 minutes`` (for the page)."""
    parts = []
    for size, word in ((3600, "hour"), (60, "minute"), (1, "second")):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {plural(count, word)}")
    return " ".join(parts) or "0 seconds"


# -- members ----------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A member of the community as the hub records them."""

    name: str
    #: holds the community's admin role
    admin: bool
    #: the identity recorded at their last sign-in or refresh (rule atoms);
    #: None: none recorded, or it cannot be read
    atoms: frozenset[tuple[str, str]] | None


def rule_json(rule: Rule) -> dict[str, str]:
    """A rule as the operator wrote it (its values as matched: ASCII lowercase)."""
    return dict(sorted(rule))


def why(community: Community, atoms: Iterable[tuple[str, str]] | None) -> list[dict]:
    """The rules of ``community`` that the identity ``atoms`` matches:
    ``[{"source": "rule", "list": "members" | "admins", "index": i,
    "provider": name or None, "rule": {...}}]``. Never the identity itself.

    (Invitations, when they come, are another ``source``.)
    """
    if atoms is None:
        return []
    held = set(atoms)
    found = []
    for name, rules in (("members", community.members), ("admins", community.admins)):
        for index, rule in enumerate(rules):
            if rule <= held:
                values = rule_json(rule)
                found.append(
                    {
                        "source": "rule",
                        "list": name,
                        "index": index,
                        "provider": values.get("provider"),
                        "rule": values,
                    }
                )
    return found


def member_json(community: Community, member: Member) -> dict[str, Any]:
    return {
        "name": member.name,
        "admin": member.admin,
        "identity_recorded": member.atoms is not None,
        "why": why(community, member.atoms),
    }


def why_words(member: dict[str, Any]) -> list[str]:
    """A member's ``why`` in words, for the page."""
    if not member["identity_recorded"]:
        return [
            "no identity recorded yet (signed in before hubext recorded it, or "
            "it cannot be read): their next sign-in sets it"
        ]
    if not member["why"]:
        return [
            "no rule matches the identity recorded at their last sign-in: "
            "they leave the community at their next refresh"
        ]
    lines = []
    for reason in member["why"]:
        rule = ", ".join(
            f"{key} {value}"
            for key, value in reason["rule"].items()
            if key != "provider"
        )
        provider = reason["provider"] or "any provider"
        lines.append(
            f"{reason['list']}[{reason['index']}]: {provider}: {rule or 'anyone'}"
        )
    return lines


# -- limits and use -------------------------------------------------------------------


def limits_json(limits: Limits) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in (
        "max_servers",
        "max_servers_per_member",
        "max_cpu",
        "max_memory",
        "max_gpu",
    ):
        value = getattr(limits, key)
        if value is not None:
            data[key] = value
    if limits.budget is not None:
        budget = limits.budget
        data["budget"] = {
            **dict(budget.pool),
            "period": "month" if budget.days is None else {"days": budget.days},
        }
        if budget.per_member:
            data["budget"]["per_member"] = dict(budget.per_member)
    return data


def used_json(
    running: list[Demand] | None, budget_used: Mapping[str, float] | None
) -> dict[str, Any]:
    """What the community's servers take now, and its budget's use in its
    window (``None``: not known: no servers counted, or no ledger)."""
    data: dict[str, Any] = {}
    if running is not None:
        data.update(
            servers=len(running),
            members_with_servers=len({d.user for d in running}),
            cpu=sum(d.cpu for d in running),
            memory=sum(d.memory for d in running),
            gpus=sum(d.gpus for d in running),
        )
    if budget_used is not None:
        data["budget"] = dict(budget_used)
    return data


def use_lines(limits: Limits, used: Mapping[str, Any]) -> list[str]:
    """The limits and what is used, one line each, for the page."""
    lines = []
    if "servers" in used:
        lines.append(
            f"{used['servers']} servers running"
            + (
                f" of at most {limits.max_servers}"
                if limits.max_servers is not None
                else ""
            )
            + f", for {used['members_with_servers']} members."
        )
        for key, value, limit, words in (
            ("cpu", used["cpu"], limits.max_cpu, lambda v: f"{v:g} CPUs"),
            (
                "memory",
                used["memory"],
                limits.max_memory,
                lambda v: f"{v / GIB:.3g} GiB",
            ),
            ("gpus", used["gpus"], limits.max_gpu, lambda v: f"{v:g} GPUs"),
        ):
            if limit is not None or value:
                of = f" of {words(limit)}" if limit is not None else ""
                lines.append(
                    f"{words(value)}{of} requested by running servers ({key})."
                )
    if limits.max_servers_per_member is not None:
        lines.append(f"At most {limits.max_servers_per_member} servers per member.")
    budget = limits.budget
    if budget is not None:
        spent = used.get("budget")
        for unit, amount in budget.pool.items():
            if spent is not None:
                lines.append(
                    f"{amount_used(spent.get(unit, 0.0), amount)} of "
                    f"{hours_of(amount, unit)} used {budget.period_words()}."
                )
            else:
                lines.append(
                    f"A budget of {hours_of(amount, unit)} {budget.period_words()}."
                )
        for unit, amount in budget.per_member.items():
            lines.append(
                f"Each member: at most {hours_of(amount, unit)} "
                f"{budget.period_words()}."
            )
    if not lines:
        lines.append("No limits.")
    return lines


__all__ = [
    "PARTS",
    "Member",
    "bounds_json",
    "delegated_parts",
    "duration_words",
    "error_json",
    "limits_json",
    "member_json",
    "needs_attention",
    "settings_json",
    "use_lines",
    "used_json",
    "why",
    "why_words",
]
