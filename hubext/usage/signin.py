"""The usage page's sign-in, at the hub: ask for the scopes the person holds.

A service's OAuth sign-in asks the hub for its ``oauth_client_allowed_scopes``
(here ``custom:hubext-usage:read``, unfiltered, and ``admin-ui``); the hub
grants the part the person holds, and logs a warning for every person who
does not hold all of it (``requested scopes ... granting only ...``): every
member and every community admin, at every sign-in.

So the page sends people here first (its ``HubOAuth.login_url``,
:data:`SIGN_IN_PATH` under the hub's prefix). The hub knows who they are and
what they hold; this handler forwards the OAuth request to the hub's
``api/oauth2/authorize`` unchanged, with a ``scope`` that names exactly the
usage scopes the person holds (``custom:hubext-usage:read!user=bob``,
``custom:hubext-usage:read!group=ocean-lab``, or unfiltered) and
``admin-ui`` if they hold it. The hub then grants every scope asked for,
and logs nothing: a warning about the page's scopes again means something
an admin should look at. What a token may read is still decided by
JupyterHub, at every request.

Registered by hubext's authenticator (``get_handlers``) when the hub defines
the usage scope (:func:`hubext.usage.register_page`).
"""

from __future__ import annotations

from collections.abc import Iterable

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat

from .access import USAGE_SCOPE

#: The handler's path under the hub's prefix (``/hub/`` by default).
SIGN_IN_PATH = "hubext/usage/sign-in"

#: The OAuth authorization request's parameters (RFC 6749, RFC 7636), passed
#: on as they came; ``scope`` is set here.
OAUTH_PARAMETERS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def held_scopes(expanded: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The person's (expanded) scopes on the client's unfiltered allowed ones.

    ``expanded`` as JupyterHub expands a user's scopes (``!user`` is
    ``!user=<name>``); a scope counts whatever its filter.
    """
    bases = {scope for scope in allowed if "!" not in scope}
    return sorted(s for s in expanded if s.partition("!")[0] in bases)


class UsageSignInHandler(BaseHandler):
    """``GET /hub/hubext/usage/sign-in?client_id=...``: see the module."""

    @web.authenticated
    def get(self):
        client_id = self.get_argument("client_id", "")
        service = next(
            (
                s
                for s in self.services.values()
                if s.oauth_client_id == client_id
                and USAGE_SCOPE in s.oauth_client_allowed_scopes
            ),
            None,
        )
        if service is None:
            raise web.HTTPError(
                400,
                "client_id: %r is not the OAuth client of a usage page",
                client_id[:80],
            )
        params = {}
        for name in OAUTH_PARAMETERS:
            value = self.get_argument(name, None)
            if value is not None:
                params[name] = value
        scopes = [
            f"access:services!service={service.name}",
            *held_scopes(self.expanded_scopes, service.oauth_client_allowed_scopes),
        ]
        params["scope"] = " ".join(scopes)
        self.redirect(
            url_concat(url_path_join(self.hub.base_url, "api/oauth2/authorize"), params)
        )
