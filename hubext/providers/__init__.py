"""Identity provider adapters: OAuthenticator subclasses, one per kind.

Each adapter does the provider's own OAuth flow (all of it inherited from
OAuthenticator) under its own URL prefix, ``/hub/<name>/oauth_login`` and
``/hub/<name>/oauth_callback``, so several providers can run in one hub.
:class:`hubext.authenticator.CommunityAuthenticator` owns the adapters and
everything that is the same for all providers.
"""

from __future__ import annotations

from .oidc import OIDCProvider

#: Provider kinds, as written in ``CommunityAuthenticator.providers[name].kind``.
PROVIDER_KINDS = {
    "oidc": OIDCProvider,
}

__all__ = ["PROVIDER_KINDS", "OIDCProvider"]
