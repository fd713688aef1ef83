"""Any OpenID Connect provider, through OAuthenticator's GenericOAuthenticator."""

from __future__ import annotations

from functools import reduce

from oauthenticator.generic import GenericOAuthenticator
from traitlets import Unicode

from ..identity import Identity, clean_strings, fold
from .base import ProviderMixin


def _claim(claims: dict, dotted: str):
    """The value at a dotted path in the claims, or None."""
    try:
        return reduce(
            lambda d, k: d.get(k) if isinstance(d, dict) else None,
            dotted.split("."),
            claims,
        )
    except (AttributeError, TypeError):
        return None


class OIDCProvider(ProviderMixin, GenericOAuthenticator):
    """An OpenID Connect provider (kind ``oidc``).

    The identity is read from the userinfo response: the username from
    ``username_claim``, the verified email from ``email`` when
    ``email_verified`` is true, groups from :attr:`groups_claim`, and the
    institution from :attr:`idp_claim`.
    """

    groups_claim = Unicode(
        "groups",
        config=True,
        help="""
        Claim holding the person's groups, for ``group`` rules. A dotted path
        reaches into nested claims (``realm_access.roles``). Empty: no groups.
        """,
    )

    idp_claim = Unicode(
        "",
        config=True,
        help="""
        Claim naming the person's home institution, for ``idp`` rules (for a
        federation proxy such as Keycloak or Satosa). Empty: no ``idp``.
        """,
    )

    def identity_from_auth_model(self, auth_model: dict) -> Identity:
        claims = (auth_model.get("auth_state") or {}).get(
            self.user_auth_state_key
        ) or {}
        warn = self._claim_warning(auth_model["name"])
        emails = frozenset()
        email = claims.get("email")
        if claims.get("email_verified") is True and isinstance(email, str):
            emails = frozenset(fold(e) for e in clean_strings(email, "email", warn))
        groups = frozenset()
        if self.groups_claim:
            groups = clean_strings(
                _claim(claims, self.groups_claim), self.groups_claim, warn
            )
        idp = None
        if self.idp_claim:
            idps = clean_strings(_claim(claims, self.idp_claim), self.idp_claim, warn)
            idp = next(iter(idps)) if len(idps) == 1 else None
        return Identity(
            provider=self.provider_name,
            username=auth_model["name"],
            emails=emails,
            idp=idp,
            groups=groups,
        )

    def subject_from_auth_model(self, auth_model: dict) -> str | None:
        # OpenID Connect Core 1.0, 5.1: ``sub`` is never reassigned by its issuer.
        claims = (auth_model.get("auth_state") or {}).get(
            self.user_auth_state_key
        ) or {}
        return self._subject(claims.get("sub"))
