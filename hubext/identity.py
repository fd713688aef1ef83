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


@dataclass(frozen=True)
class Identity:
    """Who signed in, as far as community rules are concerned."""

    #: Name of the provider (its key in ``CommunityAuthenticator.providers``).
    provider: str
    #: The username at the provider, before the provider's username template.
    username: str
    #: Verified email addresses, lowercased.
    emails: frozenset[str] = field(default_factory=frozenset)
    #: The identity provider behind the provider (CILogon entity id), if any.
    idp: str | None = None
    #: GitHub organizations, lowercased.
    github_orgs: frozenset[str] = field(default_factory=frozenset)
    #: GitHub teams as ``org:team-slug``, lowercased.
    github_teams: frozenset[str] = field(default_factory=frozenset)
    #: Values of the provider's groups claim.
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def email_domains(self) -> frozenset[str]:
        return frozenset(e.rpartition("@")[2] for e in self.emails if "@" in e)

    def atoms(self) -> set[tuple[str, str]]:
        """Every ``(rule key, value)`` this identity satisfies, casefolded."""
        atoms = {("provider", self.provider.casefold())}
        atoms.add(("username", self.username.casefold()))
        if self.idp:
            atoms.add(("idp", self.idp.casefold()))
        atoms.update(("email_domain", d) for d in self.email_domains)
        atoms.update(("github", o) for o in self.github_orgs)
        atoms.update(("github", t) for t in self.github_teams)
        atoms.update(("group", g.casefold()) for g in self.groups)
        return atoms


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
