"""Any OpenID Connect provider, through OAuthenticator's GenericOAuthenticator."""

from __future__ import annotations

from oauthenticator.generic import GenericOAuthenticator

from .base import ProviderMixin


class OIDCProvider(ProviderMixin, GenericOAuthenticator):
    """An OpenID Connect provider (kind ``oidc``)."""
