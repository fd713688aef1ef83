"""The normalized identity every provider's claims are turned into.

Community rules only ever see an :class:`Identity`, never raw claims, so one
rule language serves GitHub, CILogon and any OpenID Connect provider. Only
verified emails get in. Pure code, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

#: Bounds on what a provider may put into an identity (a claim that exceeds
#: them is truncated with a warning by the adapter, never passed on whole).
MAX_VALUES = 1000
MAX_VALUE_LENGTH = 256


_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(value: str) -> str:
    """How rule values and claims are compared: ASCII letters case-insensitively.

    Only ``A``-``Z`` are lowercased; every other character must be the same
    code point. No Unicode case folding and no normalization: a claim with
    compatibility characters (U+212A KELVIN SIGN, fullwidth letters, other
    scripts' look-alikes) never matches an ASCII rule, and ``Ä`` does not
    match ``ä``. Identity providers' group names, GitHub organizations and
    teams, and domain names are ASCII in practice; a rule with other
    characters must be written exactly as the provider sends them.
    """
    return value.translate(_ASCII_UPPER)


@dataclass(frozen=True)
class Identity:
    """Who signed in, as far as community rules are concerned."""

    #: Name of the provider (its key in ``CommunityAuthenticator.providers``).
    provider: str
    #: The username at the provider, before the provider's username template.
    username: str
    #: Verified email addresses (ASCII letters lowercased, :func:`fold`).
    emails: frozenset[str] = field(default_factory=frozenset)
    #: The identity provider behind the provider (CILogon entity id), if any.
    idp: str | None = None
    #: GitHub organizations (:func:`fold`).
    github_orgs: frozenset[str] = field(default_factory=frozenset)
    #: GitHub teams as ``org:team-slug`` (:func:`fold`).
    github_teams: frozenset[str] = field(default_factory=frozenset)
    #: Values of the provider's groups claim.
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def email_domains(self) -> frozenset[str]:
        return frozenset(e.rpartition("@")[2] for e in self.emails if "@" in e)

    def atoms(self) -> set[tuple[str, str]]:
        """Every ``(rule key, value)`` this identity satisfies, folded (:func:`fold`)."""
        atoms = {("provider", fold(self.provider))}
        atoms.add(("username", fold(self.username)))
        if self.idp:
            atoms.add(("idp", fold(self.idp)))
        atoms.update(("email_domain", fold(d)) for d in self.email_domains)
        atoms.update(("github", fold(o)) for o in self.github_orgs)
        atoms.update(("github", fold(t)) for t in self.github_teams)
        atoms.update(("group", fold(g)) for g in self.groups)
        return atoms


def atoms_from_json(value: object) -> set[tuple[str, str]] | None:
    """The atoms recorded as JSON (``[[key, value], ...]``), or None if ``value``
    is not a list. Malformed entries are left out."""
    if not isinstance(value, list):
        return None
    return {
        (key, item)
        for key, item in (a for a in value if isinstance(a, list) and len(a) == 2)
        if isinstance(key, str) and isinstance(item, str)
    }


def clean_strings(values: object, what: str, warn) -> frozenset[str]:
    """Keep the printable strings of a claim value; report anything dropped.

    ``values`` may be anything a provider sent. A single string counts as one
    value. ``warn(message)`` is called once for whatever was dropped, with a
    bounded, escaped description (never the whole value).
    """
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Iterable) or isinstance(values, (bytes, dict)):
        warn(
            f"{what}: expected a list of strings, got {type(values).__name__}; ignored"
        )
        return frozenset()
    kept: set[str] = set()
    dropped = 0
    for i, value in enumerate(values):
        if i >= MAX_VALUES:
            warn(f"{what}: more than {MAX_VALUES} values; the rest are ignored")
            break
        if (
            isinstance(value, str)
            and value
            and len(value) <= MAX_VALUE_LENGTH
            and value.isprintable()
        ):
            kept.add(value)
        else:
            dropped += 1
    if dropped:
        warn(
            f"{what}: ignored {dropped} value(s) that are not printable strings "
            f"of 1 to {MAX_VALUE_LENGTH} characters"
        )
    return frozenset(kept)
