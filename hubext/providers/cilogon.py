"""CILogon, through OAuthenticator's CILogonOAuthenticator (kind ``cilogon``).

The identity carries the authenticating institution's entity id (the ``idp``
claim) and the email the institution asserted. CILogon's ``idps`` setting
still says which institutions may be used at all and how usernames are
derived; which communities a person belongs to is said by community rules
(``idp``, ``email_domain``), beside it, because ``idps`` allows no extra keys.
"""

from __future__ import annotations

from oauthenticator.cilogon import CILogonOAuthenticator
from tornado import web

from ..identity import Identity, clean_strings, fold
from .base import ProviderMixin


class CILogonProvider(ProviderMixin, CILogonOAuthenticator):
    """Institutional accounts through CILogon (kind ``cilogon``)."""

    def user_info_to_username(self, user_info):
        try:
            return super().user_info_to_username(user_info)
        except web.HTTPError as e:
            if e.status_code < 500:
                raise
            # Upstream answers 500 for a claim the institution did not send:
            # that is the person's institution, not a fault of the hub.
            self.log.warning(
                "hubext: provider %s: %s", self.provider_name, e.log_message
            )
            raise web.HTTPError(
                403,
                "Your institution did not send the information this hub needs "
                "to name your account. Try another way to sign in, or ask the "
                "hub's administrators.",
            ) from None

    def identity_from_auth_model(self, auth_model: dict) -> Identity:
        claims = (auth_model.get("auth_state") or {}).get(
            self.user_auth_state_key
        ) or {}
        warn = self._claim_warning(auth_model["name"])
        idps = clean_strings(claims.get("idp"), "idp", warn)
        # CILogon releases the email asserted by the institution's IdP.
        emails = clean_strings(claims.get("email"), "email", warn)
        return Identity(
            provider=self.provider_name,
            username=auth_model["name"],
            emails=frozenset(fold(e) for e in emails if "@" in e),
            idp=next(iter(idps)) if len(idps) == 1 else None,
        )

    def subject_from_auth_model(self, auth_model: dict) -> str | None:
        # CILogon's ``sub`` (http://cilogon.org/serverA/users/1234) is per person.
        claims = (auth_model.get("auth_state") or {}).get(
            self.user_auth_state_key
        ) or {}
        return self._subject(claims.get("sub"))
