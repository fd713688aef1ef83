"""The OAuth 2.0 authorization server shared by the fakes (mixed into FakeProvider).

- Authorization request, RFC 6749 4.1.1: ``GET <authorize>?client_id&redirect_uri&
  state&scope`` (+ RFC 7636 ``code_challenge``/``code_challenge_method``). The
  browser step is an HTML page with exactly one ``<form method="post">`` whose
  ``<input type="hidden" name=.. value=..>`` fields repeat the parameters; posting
  it with ``login=<account>`` stands for signing in and consenting. The answer is
  RFC 6749 4.1.2: 302 to ``redirect_uri`` (its own query kept) plus ``code`` and
  ``state``. Codes are single-use.
- Token request, 4.1.3 and 6: ``authorization_code`` and ``refresh_token`` grants;
  the client authenticates by HTTP Basic or body ``client_id``/``client_secret``
  (2.3.1); ``redirect_uri`` must repeat the authorize one; PKCE verified (S256 or
  plain). Errors default to 5.2: 400 ``{"error", "error_description"}``, 401 for
  ``invalid_client``. Refresh tokens rotate (the used one is invalidated).
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from dataclasses import dataclass, field
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from .wire import Reply, Request, html_reply, json_reply


@dataclass
class Grant:
    account: str
    kind: str  # "code", "access" or "refresh"
    client_id: str
    scope: list[str] = field(default_factory=list)
    redirect_uri: str = ""
    challenge: str | None = None
    challenge_method: str = "plain"


class OAuthServer:
    """Authorize page, token endpoint and the grants they hand out.

    Expects ``client_id``, ``client_secret``, ``url``, ``_lock``, ``_accounts`` and
    ``_grants`` from FakeProvider."""

    authorize_path = "/authorize"
    token_path = "/token"
    display_name = "Fake provider"
    issues_refresh_tokens = True

    def revoke(self, account: str):
        """Invalidate every code, access token and refresh token of ``account``."""
        with self._lock:
            for key in [k for k, g in self._grants.items() if g.account == account]:
                del self._grants[key]

    def expire_access_tokens(self, account: str):
        """Invalidate the access tokens of ``account`` but keep its refresh tokens."""
        with self._lock:
            for key, grant in list(self._grants.items()):
                if grant.account == account and grant.kind == "access":
                    del self._grants[key]

    # -- hooks for the providers ---------------------------------------------------

    def _new_token(self, kind: str) -> str:
        return secrets.token_urlsafe(32)

    def _token_reply(self, req: Request, account, scope, access, refresh) -> Reply:
        raise NotImplementedError

    def _token_error(self, req: Request, kind: str) -> Reply:
        error = "invalid_grant" if kind == "invalid_refresh" else kind
        body = {"error": error, "error_description": kind.replace("_", " ")}
        if kind == "invalid_client":
            return json_reply(401, body, {"WWW-Authenticate": 'Basic realm="token"'})
        return json_reply(400, body)

    # -- helpers -------------------------------------------------------------------

    def _grant_for(self, token: str | None, kind: str = "access") -> Grant | None:
        with self._lock:
            grant = self._grants.get(token or "")
        return grant if grant and grant.kind == kind else None

    @staticmethod
    def _bearer(req: Request) -> str | None:
        """The token of ``Authorization: Bearer X`` or GitHub's ``token X``."""
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "token") and token.strip():
            return token.strip()
        return None

    def _page(self, status: int, title: str, content: str = "") -> Reply:
        page = (
            f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>\n"
            f"<h1>{title}</h1>\n{content}\n</body></html>\n"
        )
        return html_reply(status, page)

    # -- endpoints -----------------------------------------------------------------

    def _authorize(self, req: Request) -> Reply:
        params = req.query if req.method == "GET" else req.form
        if params.get("client_id") != self.client_id:
            return self._page(400, "Unknown client_id")
        if not params.get("redirect_uri"):
            return self._page(400, "Missing redirect_uri")
        if req.method == "GET":
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">\n'
                for k, v in params.items()
            )
            form = (
                f'<form method="post" action="{self.url}{self.authorize_path}">\n'
                f'{hidden}<label>Account <input type="text" name="login"></label>\n'
                '<button type="submit">Authorize</button>\n</form>'
            )
            return self._page(200, f"Sign in to {self.display_name}", form)
        login = params.get("login", "")
        code = self._new_token("code")
        with self._lock:
            if login not in self._accounts:
                return self._page(400, f"Unknown account {html.escape(login)}")
            self._grants[code] = Grant(
                login,
                "code",
                self.client_id,
                params.get("scope", "").split(),
                params["redirect_uri"],
                params.get("code_challenge"),
                params.get("code_challenge_method", "plain"),
            )
        back = {"code": code}
        if "state" in params:
            back["state"] = params["state"]
        return self._redirect(params["redirect_uri"], back)

    def _redirect(self, uri: str, params: dict) -> Reply:
        parts = urlsplit(uri)
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        location = urlunsplit(parts._replace(query=query))
        link = f'<a href="{html.escape(location)}">continue</a>'
        return html_reply(302, link, {"Location": location})

    def _client(self, req: Request) -> tuple[str | None, str | None]:
        scheme, _, cred = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(cred).decode()
            except ValueError:
                return None, None
            # RFC 6749 2.3.1 form-encodes both parts (CILogon ids hold a colon);
            # oauthenticator and requests send them raw: accept both
            if pair.startswith(self.client_id + ":"):
                return self.client_id, pair[len(self.client_id) + 1 :]
            client_id, _, secret = pair.partition(":")
            return unquote_plus(client_id), unquote_plus(secret)
        return req.form.get("client_id"), req.form.get("client_secret")

    def _token(self, req: Request) -> Reply:
        form = req.form
        client_id, secret = self._client(req)
        if (client_id, secret) != (self.client_id, self.client_secret):
            return self._token_error(req, "invalid_client")
        grant_type = form.get("grant_type", "authorization_code")
        if grant_type == "authorization_code":
            with self._lock:
                grant = self._grants.pop(form.get("code", ""), None)
            if grant is None or grant.kind != "code":
                return self._token_error(req, "invalid_grant")
            if form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
                return self._token_error(req, "redirect_uri_mismatch")
            if grant.challenge is not None:
                verifier = form.get("code_verifier", "")
                if grant.challenge_method == "S256":
                    digest = hashlib.sha256(verifier.encode()).digest()
                    verifier = base64.urlsafe_b64encode(digest).decode().rstrip("=")
                if verifier != grant.challenge:
                    return self._token_error(req, "invalid_grant")
        elif grant_type == "refresh_token" and self.issues_refresh_tokens:
            with self._lock:
                grant = self._grants.pop(form.get("refresh_token", ""), None)
            if grant is None or grant.kind != "refresh":
                return self._token_error(req, "invalid_refresh")
        else:
            return self._token_error(req, "unsupported_grant_type")
        access = self._new_token("access")
        refresh = self._new_token("refresh") if self.issues_refresh_tokens else None
        with self._lock:
            self._grants[access] = Grant(
                grant.account, "access", client_id, grant.scope
            )
            if refresh:
                self._grants[refresh] = Grant(
                    grant.account, "refresh", client_id, grant.scope
                )
        return self._token_reply(req, grant.account, grant.scope, access, refresh)
