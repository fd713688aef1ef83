"""Identity provider adapters: OAuthenticator subclasses, one per kind.

Each adapter does the provider's own OAuth flow (all of it inherited from
OAuthenticator) under its own URL prefix, ``/hub/<name>/oauth_login`` and
``/hub/<name>/oauth_callback``, so several providers can run in one hub, and
turns the provider's answer into one normalized
:class:`~hubext.identity.Identity`.
:class:`hubext.authenticator.CommunityAuthenticator` owns the adapters and
everything that is the same for all providers.
"""

from __future__ import annotations

from .base import ProviderMixin, ProviderUnavailable
from .cilogon import CILogonProvider
from .github import GitHubProvider
from .oidc import OIDCProvider

#: Provider kinds, as written in ``CommunityAuthenticator.providers[name].kind``.
PROVIDER_KINDS = {
    "cilogon": CILogonProvider,
    "github": GitHubProvider,
    "oidc": OIDCProvider,
}

__all__ = [
    "PROVIDER_KINDS",
    "CILogonProvider",
    "GitHubProvider",
    "OIDCProvider",
    "ProviderMixin",
    "ProviderUnavailable",
]
