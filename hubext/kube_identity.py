"""Per-community Kubernetes identity: the service account of a community's pods. Pure.

A community may name, under its ``kubernetes`` key, the Kubernetes service
account given to the pods of the servers charged to it, and another one for
the pods of its community admins::

    "kubernetes": {
        "service_account": "ocean-lab-sa",            # the members' pods
        "admin_service_account": "ocean-lab-curators", # its admins' pods
    }

Both are optional; without ``admin_service_account`` the community's admins
get ``service_account``. Cloud IAM (GKE Workload Identity, EKS IRSA) binds a
cloud role to a service account, so the buckets a server can reach follow the
community it is charged to. The hub neither creates the accounts nor checks
that they exist: a pod naming a missing account is refused by Kubernetes.

Which account a pod gets (:func:`account_for`) depends only on the community
charged (validated before the start) and on the user's communities and
admin roles as the hub knows them; never on anything the user sends. So that
no profile can bypass it, a hub whose communities name accounts refuses, at
start-up, any ``kubespawner_override`` of ``service_account``
(:func:`check_profile_overrides`), and a spawner ``service_account`` that is
a community's account (:func:`check_default_account`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._validation import (
    ConfigError,
    ErrorCollector,
    KeyPath,
    check_keys,
    expect_mapping,
    show,
)
from .profile_tree import profile_entries

#: The community key.
KUBERNETES_KEY = "kubernetes"
#: The keys of a community's ``kubernetes`` mapping.
ACCOUNT_KEYS = ("service_account", "admin_service_account")
#: The KubeSpawner trait a profile may not override when communities name accounts.
OVERRIDE_KEY = "service_account"

#: A Kubernetes object name (DNS-1123 subdomain): dot-separated DNS labels.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*")
MAX_NAME_LENGTH = 253


@dataclass(frozen=True)
class KubeIdentity:
    """A community's service accounts (``None``: not set)."""

    service_account: str | None = None
    admin_service_account: str | None = None

    def account(self, is_admin: bool) -> str | None:
        """The account of a member's pod, or of a community admin's."""
        if is_admin and self.admin_service_account:
            return self.admin_service_account
        return self.service_account


def service_account_problem(name: Any) -> str | None:
    """Why ``name`` is not a valid service account name, or None."""
    if not isinstance(name, str):
        return f"expected a string, got {show(name)} ({type(name).__name__})"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters, got {len(name)}"
    if not _SUBDOMAIN_RE.fullmatch(name):
        return (
            "must be a Kubernetes service account name (a DNS-1123 subdomain: "
            "lowercase letters, digits, '-' and '.', starting and ending with "
            f"a letter or digit), got {show(name)}"
        )
    return None


def parse_kubernetes(value: Any, path: KeyPath, slug: str = "") -> KubeIdentity:
    """Validate a community's ``kubernetes`` mapping."""
    expect_mapping(value, path)
    errors = ErrorCollector()
    with errors.check():
        check_keys(value, path, ACCOUNT_KEYS)
    accounts = {}
    for key in ACCOUNT_KEYS:
        if value.get(key) is None:
            continue
        problem = service_account_problem(value[key])
        if problem:
            errors.add(ConfigError(path.attr(key), problem))
        else:
            accounts[key] = value[key]
    errors.raise_errors()
    return KubeIdentity(**accounts)


def identity_of(community) -> KubeIdentity:
    """A validated community's identity (empty when it names none)."""
    return community.get(KUBERNETES_KEY) or KubeIdentity()


def names_accounts(communities: Iterable) -> bool:
    """True when any community names a service account."""
    return any(
        identity_of(c).service_account or identity_of(c).admin_service_account
        for c in communities
    )


def account_for(
    communities: Mapping[str, Any],
    charged: Any,
    member_of: Iterable[str],
    admin_of: Iterable[str],
) -> str | None:
    """The service account of a server charged to ``charged``; None: the spawner's own.

    ``communities`` is the registry (``{slug: Community}``), ``charged`` the
    community in the validated ``user_options`` (absent: the hub-wide
    account), ``member_of`` and ``admin_of`` the user's communities and
    community-admin roles from the hub. A community the user is not a member
    of gives nothing, whatever ``charged`` says.
    """
    if not isinstance(charged, str) or charged not in communities:
        return None
    if charged not in set(member_of):
        return None
    return identity_of(communities[charged]).account(charged in set(admin_of))


def _overrides(profile_list: list, path: KeyPath) -> Iterator[tuple[Any, KeyPath]]:
    """Every ``kubespawner_override`` of a profile list, with its key path."""
    for entry, epath in profile_entries(profile_list, path):
        yield entry.get("kubespawner_override"), epath.attr("kubespawner_override")


def check_profile_overrides(
    communities: Iterable, profile_list: Any, path: KeyPath
) -> None:
    """Start-up: no profile overrides ``service_account`` when communities name accounts.

    Otherwise a profile (or a free-text choice with ``"{value}"``) could
    give one community's members another community's account.
    """
    if callable(profile_list) or not names_accounts(communities):
        return
    errors = ErrorCollector()
    for override, opath in _overrides(list(profile_list or ()), path):
        if isinstance(override, Mapping) and OVERRIDE_KEY in override:
            errors.add(
                ConfigError(
                    opath.attr(OVERRIDE_KEY),
                    "cannot be overridden by a profile while communities name "
                    "service accounts (Communities.communities[...].kubernetes): "
                    "the account of a pod follows the community it is charged to",
                )
            )
    errors.raise_errors()


def check_not_on_kubernetes(communities: Iterable, root: KeyPath, spawner: str) -> None:
    """Start-up on a spawner without pods: refuse every community's ``kubernetes`` key."""
    errors = ErrorCollector()
    for community in communities:
        if community.get(KUBERNETES_KEY) is not None:
            errors.add(
                ConfigError(
                    root[community.slug].attr(KUBERNETES_KEY),
                    f"has no meaning on {spawner}: its servers are local "
                    "processes, not pods with a Kubernetes service account; "
                    "remove it, or use hubext-kube (CommunityKubeSpawner)",
                )
            )
    errors.raise_errors()


def check_default_account(communities: Iterable, configured: Any, key: str) -> None:
    """Start-up: the spawner's own account is no community's account.

    Everyone whose server is not charged to a community with an account
    runs as the spawner's own; a community's account there would be given
    to people outside the community.
    """
    for community in communities:
        identity = identity_of(community)
        if configured and configured in (
            identity.service_account,
            identity.admin_service_account,
        ):
            raise ConfigError(
                key,
                f"{show(configured)} is an account of the community "
                f"{community.slug} (Communities.communities[{community.slug!r}]"
                f".{KUBERNETES_KEY}): it would be given to people outside it",
            )
