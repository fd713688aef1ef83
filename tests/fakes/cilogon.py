"""A fake CILogon speaking the OpenID Connect wire format documented at
https://www.cilogon.org/oidc.

Endpoints (as ``CILogonOAuthenticator`` derives them from ``cilogon_host``, which
forces https, so point ``authorize_url``, ``token_url`` and ``userdata_url`` here):

- ``GET /authorize``: the authorization request (OIDC Core 3.1.2.1) with
  CILogon's extra ``selected_idp`` and ``skin`` parameters (accepted and ignored);
  codes look like CILogon's, ``{url}/oauth2/<hex>/<millis>``, so they exercise URL
  encoding.
- ``POST /oauth2/token``: ``authorization_code`` and ``refresh_token`` grants
  (RFC 6749 4.1.3 and 6) with client authentication by HTTP Basic or body
  parameters (2.3.1). Answers the OIDC token response (Core 3.1.3.3):
  ``access_token``, ``refresh_token`` (rotated on refresh), ``id_token`` (a JWT
  whose claims are the released userinfo claims plus iss/aud/iat/exp; signature
  not verifiable), ``token_type: "Bearer"``, ``expires_in: 900`` and ``scope``.
  Errors follow RFC 6749 5.2 (400 ``invalid_grant``, 401 ``invalid_client``).
- ``GET``/``POST /oauth2/userinfo`` (OIDC Core 5.3) with ``Authorization: Bearer``
  (or an ``access_token`` parameter): ``sub`` always, ``email`` with the ``email``
  scope, ``given_name``/``family_name``/``name`` with ``profile``, every other claim
  (``idp``, ``idp_name``, ``eppn``, ``eptid``, ``affiliation``, ``ou``, ...) with
  ``org.cilogon.userinfo``, as CILogon's scope table documents. Invalid tokens get
  401 with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 3.1).
"""

from __future__ import annotations

import base64
import json
import secrets
import time

from .base import FakeProvider
from .wire import Reply, Request, json_reply

PROFILE_CLAIMS = {"name", "given_name", "family_name"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class FakeCILogon(FakeProvider):
    """Fake cilogon.org: OIDC authorization-code flow, refresh and userinfo."""

    authorize_path = "/authorize"
    token_path = "/oauth2/token"
    userinfo_path = "/oauth2/userinfo"
    display_name = "CILogon"
    issues_refresh_tokens = True
    expires_in = 900

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._next_sub = 1234

    @property
    def authorize_url(self) -> str:
        return self.url + self.authorize_path

    @property
    def token_url(self) -> str:
        return self.url + self.token_path

    @property
    def userdata_url(self) -> str:
        return self.url + self.userinfo_path

    def oauthenticator_config(self) -> dict:
        """Traits to give ``CILogonOAuthenticator`` (plus ``idps``)."""
        return {
            "authorize_url": self.authorize_url,
            "token_url": self.token_url,
            "userdata_url": self.userdata_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    # -- accounts ----------------------------------------------------------------

    def add_user(self, account, *, idp, idp_name=None, email=None, eppn=None, **claims):
        """Register ``account`` (the ``login`` posted on the authorize page).

        Only the claims given (plus ``sub``, which defaults to a CILogon-style
        ``http://cilogon.org/serverA/users/<n>``) are ever released."""
        given = {
            "idp": idp,
            "idp_name": idp_name,
            "email": email,
            "eppn": eppn,
            **claims,
        }
        with self._lock:
            if "sub" not in given:
                given["sub"] = f"http://cilogon.org/serverA/users/{self._next_sub}"
                self._next_sub += 1
            self._accounts[account] = {k: v for k, v in given.items() if v is not None}

    def set_claims(self, account, **claims):
        """Change claims of ``account``; a value of ``None`` removes the claim."""
        with self._lock:
            current = self._accounts[account]
            for key, value in claims.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value

    def claims(
        self, account, scope=("openid", "email", "profile", "org.cilogon.userinfo")
    ):
        """The userinfo claims released for ``account`` under ``scope``."""
        with self._lock:
            stored = dict(self._accounts[account])
        released = {"sub": stored.pop("sub")}
        for key, value in stored.items():
            if key == "email":
                needed = "email"
            elif key in PROFILE_CLAIMS:
                needed = "profile"
            else:
                needed = "org.cilogon.userinfo"
            if needed in scope:
                released[key] = value
        return released

    # -- OAuth / OIDC ------------------------------------------------------------

    def _new_token(self, kind: str) -> str:
        millis = int(time.time() * 1000)
        middle = {"code": "", "access": "accessToken/", "refresh": "refreshToken/"}[
            kind
        ]
        return f"{self.url}/oauth2/{middle}{secrets.token_hex(16)}/{millis}"

    def _id_token(self, account: str, scope: list[str]) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": self.client_id,
            "iat": now,
            "auth_time": now,
            "exp": now + self.expires_in,
            "jti": f"{self.url}/oauth2/idToken/{secrets.token_hex(16)}/{now * 1000}",
            **self.claims(account, scope),
        }
        header = {"typ": "JWT", "kid": "fake-cilogon", "alg": "RS256"}
        return ".".join(
            [
                _b64url(json.dumps(header).encode()),
                _b64url(json.dumps(payload).encode()),
                _b64url(secrets.token_bytes(256)),
            ]
        )

    def _token_reply(self, req, account, scope, access, refresh) -> Reply:
        data = {
            "access_token": access,
            "refresh_token": refresh,
            "id_token": self._id_token(account, scope),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(scope),
        }
        return json_reply(
            200, data, {"Cache-Control": "no-store", "Pragma": "no-cache"}
        )

    def _route(self, req: Request) -> Reply:
        if req.path != self.userinfo_path or req.method not in ("GET", "POST"):
            return json_reply(
                404, {"error": "not_found", "error_description": req.path}
            )
        token = (
            self._bearer(req)
            or req.form.get("access_token")
            or req.query.get("access_token")
        )
        grant = self._grant_for(token)
        with self._lock:
            known = grant is not None and grant.account in self._accounts
        if not known:
            challenge = 'Bearer error="invalid_token"'
            body = {
                "error": "invalid_token",
                "error_description": "Invalid access token",
            }
            return json_reply(401, body, {"WWW-Authenticate": challenge})
        return json_reply(200, self.claims(grant.account, grant.scope))
