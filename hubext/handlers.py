"""The hub pages hubext adds: the refusal page and sign-out at the provider.

- A refused sign-in (no community, blocked, an account bound to another
  person, an unusable username) is sent to ``/hub/hubext/refused``, which
  shows the reason once, under "403 : Forbidden", with a link to sign in
  with another account. The reason travels in a short-lived signed cookie,
  so reloading the page shows it again (the OAuth callback URL cannot be
  reloaded: its state cookie is used up).
- Signing out (``/hub/logout``) ends the hub session as usual and then, for
  a provider with an ``end_session_url`` (OpenID Connect RP-initiated
  logout), the session at the provider, so that the next sign-in can be
  another account.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from jupyterhub.handlers.base import BaseHandler
from jupyterhub.handlers.login import LogoutHandler
from jupyterhub.utils import url_path_join
from tornado import web

REFUSAL_COOKIE = "hubext-refusal"
#: How long the refusal page can be reloaded, in days (10 minutes).
_REFUSAL_DAYS = 10 / (24 * 60)


def remember_refusal(handler: BaseHandler, message: str, provider: str | None):
    """Keep the reason of a refused sign-in for the refusal page."""
    value = json.dumps({"message": message, "provider": provider})
    handler.set_secure_cookie(
        REFUSAL_COOKIE,
        value,
        expires_days=_REFUSAL_DAYS,
        path=handler.hub.base_url,
        httponly=True,
    )


def _read_refusal(handler: BaseHandler) -> dict:
    raw = handler.get_secure_cookie(REFUSAL_COOKIE, max_age_days=_REFUSAL_DAYS)
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class RefusedHandler(BaseHandler):
    """``/hub/hubext/refused``: why a sign-in was refused."""

    async def get(self):
        refusal = _read_refusal(self)
        message = refusal.get("message")
        if not isinstance(message, str):
            message = self.authenticator.custom_403_message
        # Through the sign-out, which also ends the provider's session when
        # it can, so that the next sign-in can be another account.
        logout = url_path_join(self.hub.base_url, "logout")
        self.extra_error_html = (
            f'<a class="btn btn-jupyter" href="{logout}">'
            "Sign in with another account</a>"
        )
        raise web.HTTPError(403, "%s", message, reason="Forbidden")


class CommunityLogoutHandler(LogoutHandler):
    """Sign out of the hub, then out of the provider where it supports it."""

    async def get(self):
        # The provider (and its id token) must be read before the session ends.
        self._hubext_end_session = await self._end_session_redirect()
        self.clear_cookie(REFUSAL_COOKIE, path=self.hub.base_url)
        await super().get()

    async def _end_session_redirect(self) -> str | None:
        provider, id_token = None, None
        user = self.current_user
        if user is not None:
            provider, id_token = await self.authenticator.session_of(user)
        else:
            provider = _read_refusal(self).get("provider")
        adapter = self.authenticator.provider_adapters.get(provider)
        if adapter is None or not adapter.end_session_url:
            return None
        login_url = self.request.protocol + "://" + self.request.host
        login_url += url_path_join(self.hub.base_url, "login")
        params = {
            "client_id": adapter.client_id,
            "post_logout_redirect_uri": login_url,
        }
        if id_token:
            params["id_token_hint"] = id_token
        sep = "&" if "?" in adapter.end_session_url else "?"
        return f"{adapter.end_session_url}{sep}{urlencode(params)}"

    async def render_logout_page(self):
        if self._hubext_end_session:
            self.redirect(self._hubext_end_session)
            return
        await super().render_logout_page()
