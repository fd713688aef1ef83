"""Community rules: who is a member, who is an admin. Pure, no I/O.

A community's ``members`` and ``admins`` are lists of rules. A person matches
the list if ANY rule matches; a rule matches if ALL of its keys match:

==================  =========================================================
key                 matches when
==================  =========================================================
``provider``        they signed in through this provider (its name)
``username``        their username at the provider is this
``idp``             the institution's identity provider (CILogon entity id)
``email_domain``    a *verified* email address is at this domain
``github``          they are in this GitHub org (``org``) or team (``org:team``)
``group``           the provider's groups claim has this value
==================  =========================================================

Values are compared with ASCII letters case-insensitive and every other
character exact (:func:`hubext.identity.fold`): ``OCEAN-LAB`` matches
``ocean-lab``, but a claim written with compatibility characters (U+212A
KELVIN SIGN for ``K``) or look-alikes from other scripts never matches an
ASCII rule. Admins of a community are also its members. A value that no
provider's value can equal (spaces around it, a wildcard, an email address
or a URL as ``email_domain``, ...) is refused, never accepted to match
nobody.

Matching compiles all rules into an index from ``(key, value)`` to the rules
that need it, so the cost of matching an identity grows with the identity's
own facts and the rules they touch, not with the number of communities.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._validation import (
    ConfigError,
    ErrorCollector,
    KeyPath,
    check_keys,
    expect_list,
    expect_mapping,
    expect_text,
    show,
)
from .identity import fold

RULE_KEYS = ("provider", "username", "idp", "email_domain", "github", "group")

_DOMAIN_RE = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
)
_GITHUB_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,38})(:[a-z0-9_.-]{1,100})?")

#: A compiled rule: the ``(key, folded value)`` pairs that must all hold.
Rule = frozenset


def _rule_value(key: str, value: Any, path: KeyPath) -> str:
    """A rule's value, folded (:func:`~hubext.identity.fold`), or ConfigError.

    A value that no claim can equal (spaces around it, a wildcard, a domain
    written as an address or a URL, ...) is refused, with the value meant
    when it can be told (``did you mean ...?``): a rule that matches nobody
    would otherwise be accepted in silence.
    """
    raw = expect_text(value, path, max_length=256)
    if raw != raw.strip():
        raise ConfigError(
            path,
            f"{show(raw)} starts or ends with a space (values match exactly, "
            f"spaces included){_did_you_mean(key, raw.strip())}",
        )
    if "*" in raw:
        if key == "email_domain":
            raise ConfigError(
                path,
                f"{show(raw)}: rules have no wildcards; an email_domain rule "
                "matches one domain exactly, not its subdomains: write a rule "
                f"for each domain{_did_you_mean(key, raw.removeprefix('*.'))}",
            )
        raise ConfigError(
            path,
            f"{show(raw)}: rules have no wildcards; a value matches exactly "
            "(here only a literal '*'): write a rule for each value",
        )
    value = fold(raw)
    if key == "email_domain" and not _DOMAIN_RE.fullmatch(value):
        raise ConfigError(path, _domain_problem(value))
    if key == "github" and not _GITHUB_RE.fullmatch(value):
        raise ConfigError(
            path,
            f"expected 'org' or 'org:team-slug', got {show(raw)}"
            f"{_did_you_mean(key, _github_meant(value))}",
        )
    return value


def _valid(key: str, value: str) -> bool:
    if key == "email_domain":
        return bool(_DOMAIN_RE.fullmatch(value))
    if key == "github":
        return bool(_GITHUB_RE.fullmatch(value))
    return bool(value) and "*" not in value


def _did_you_mean(key: str, meant: str | None) -> str:
    """`` (did you mean 'x'?)`` when ``meant`` is a valid value of ``key``."""
    if meant and _valid(key, fold(meant)):
        return f" (did you mean {fold(meant)!r}?)"
    return ""


def _domain_problem(value: str) -> str:
    """Why ``value`` (folded) is not a domain an ``email_domain`` rule can hold."""
    meant = None
    if "://" in value:
        meant = urlsplit(value).hostname
        why = "is a URL, not a domain"
    elif value.startswith("@"):
        meant = value[1:]
        why = "is written with '@': write the domain alone"
    elif "@" in value:
        meant = value.rpartition("@")[2]
        why = "is an email address, not a domain"
    elif value.endswith("."):
        meant = value.rstrip(".")
        why = "ends with '.', which no email address does"
    else:
        why = "is not a domain name"
    return f"{show(value)} {why}{_did_you_mean('email_domain', meant)}"


def _github_meant(value: str) -> str | None:
    """The ``org`` or ``org:team-slug`` a bad ``github`` value (folded) may mean."""
    if "://" in value:
        # https://github.com/org or https://github.com/orgs/org/teams/team
        parts = [p for p in urlsplit(value).path.split("/") if p]
        if parts[:1] == ["orgs"]:
            parts = parts[1:]
        if len(parts) == 3 and parts[1] == "teams":
            parts = [parts[0], parts[2]]
        return ":".join(parts) if 1 <= len(parts) <= 2 else None
    value = value.removeprefix("@")
    org, sep, team = value.replace("/", ":").partition(":")
    if sep:
        # a team's name, where its slug is needed: "Hub Admins" -> "hub-admins"
        team = re.sub(r"[^a-z0-9_.-]+", "-", team).strip("-")
        return f"{org}:{team}"
    return org


def parse_rule(raw: Any, path: KeyPath) -> Rule:
    """Validate one rule; every bad key of it is reported (ConfigErrors)."""
    expect_mapping(raw, path)
    if not raw:
        raise ConfigError(
            path, "a rule needs at least one key; an empty rule would match everyone"
        )
    errors = ErrorCollector()
    with errors.check():
        check_keys(raw, path, RULE_KEYS)
    atoms = []
    for key, value in raw.items():
        if key in RULE_KEYS:
            with errors.check():
                atoms.append((key, _rule_value(key, value, path.attr(key))))
    errors.raise_errors()
    return frozenset(atoms)


def parse_rules(raw: Any, path: KeyPath, slug: str = "") -> tuple[Rule, ...]:
    """Validate a ``members`` or ``admins`` list; return compiled rules.

    Every bad rule is reported (ConfigErrors), not only the first.
    """
    rules = expect_list(raw, path, "a list of rules (mappings)")
    errors = ErrorCollector()
    parsed = []
    for i, rule in enumerate(rules):
        with errors.check():
            parsed.append(parse_rule(rule, path[i]))
    errors.raise_errors()
    return tuple(parsed)


@dataclass(frozen=True)
class Memberships:
    """The communities one identity belongs to."""

    member_of: frozenset[str]
    admin_of: frozenset[str]


class RuleIndex:
    """All communities' rules, compiled for matching."""

    def __init__(self, communities: Mapping[str, Mapping[str, Iterable[Rule]]]):
        """``communities`` maps a slug to ``{"members": rules, "admins": rules}``."""
        # (key, value) -> list of (rule, slug, is_admin_rule)
        self._index: dict[tuple[str, str], list[tuple[Rule, str, bool]]] = defaultdict(
            list
        )
        for slug, lists in communities.items():
            for role in ("members", "admins"):
                for rule in lists.get(role, ()):
                    # Index each rule under its most selective fact.
                    anchor = min(rule, key=_selectivity)
                    self._index[anchor].append((rule, slug, role == "admins"))
        self._index = dict(self._index)

    def match(self, atoms: set[tuple[str, str]]) -> Memberships:
        members: set[str] = set()
        admins: set[str] = set()
        for atom in atoms:
            for rule, slug, is_admin in self._index.get(atom, ()):
                if rule <= atoms:
                    (admins if is_admin else members).add(slug)
        return Memberships(frozenset(members | admins), frozenset(admins))


# Rarer facts first: a username or team narrows more than a provider name.
_ORDER = {
    k: i
    for i, k in enumerate(
        ("username", "github", "group", "email_domain", "idp", "provider")
    )
}


def _selectivity(atom: tuple[str, str]) -> tuple[int, str]:
    return (_ORDER[atom[0]], atom[1])
