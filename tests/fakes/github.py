"""A fake GitHub speaking GitHub's OAuth web flow and REST API wire format.

Point ``GitHubOAuthenticator.github_url`` at ``FakeGitHub.url``: oauthenticator
then uses ``{url}/login/oauth/authorize``, ``{url}/login/oauth/access_token`` and
``github_api = {url}/api/v3`` (the GitHub Enterprise Server layout it uses for
any URL but https://github.com).

- OAuth web flow ("Authorizing OAuth apps"): the token endpoint answers
  ``{"access_token": "gho_...", "token_type": "bearer", "scope": "a,b"}``
  (granted scopes comma-separated) as JSON when ``Accept: application/json``,
  else form-encoded. Errors are HTTP 200 with ``error``, ``error_description``,
  ``error_uri`` ("Troubleshooting OAuth app access token request errors":
  ``incorrect_client_credentials``, ``redirect_uri_mismatch``,
  ``bad_verification_code``; "Refreshing user access tokens":
  ``bad_refresh_token``). Posting the authorize form with ``deny`` redirects with
  ``error=access_denied``. ``expiring_tokens=True`` acts like a GitHub App with
  expiring user tokens (``refresh_token``, ``expires_in: 28800``).
- REST (``/api/v3``), authenticated by ``Authorization: token X`` or ``Bearer X``:
  ``GET /user``, ``/user/orgs``, ``/user/teams``, ``/user/emails`` (paginated by
  ``per_page``, default 30, max 100, and ``page``, with ``Link``);
  ``GET /orgs/{org}/members/{username}`` ("Check organization membership for a
  user": 204 or 404); ``/orgs/{org}/teams/{team}/members/{username}`` (the path
  oauthenticator requests, answered like "Get team member (Legacy)": 204 or 404);
  ``/orgs/{org}/teams/{team}/memberships/{username}`` ("Get team membership").
  401 ``Requires authentication`` / ``Bad credentials``, 404 ``Not Found``.
  Every API answer carries the ``X-RateLimit-*`` headers ("Rate limits for the
  REST API"); ``fail(403, rate_limit=True)`` is the primary limit, 429 (or 403
  with ``retry_after``) the secondary one.
"""

from __future__ import annotations

import copy
import math
import secrets
import string
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlencode

from . import github_shapes as shapes
from .base import FakeProvider, Fault
from .wire import Reply, Request, json_reply

TOKEN_DOCS = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors/"
)
TOKEN_ERRORS = {
    "invalid_client": "incorrect_client_credentials",
    "redirect_uri_mismatch": "redirect_uri_mismatch",
    "invalid_grant": "bad_verification_code",
    "invalid_refresh": "bad_refresh_token",
    "unsupported_grant_type": "unsupported_grant_type",
}
TOKEN_ERROR_TEXT = {
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
    "bad_verification_code": "The code passed is incorrect or expired.",
    "bad_refresh_token": "The refresh token passed is incorrect or expired.",
    "unsupported_grant_type": "The grant type is not supported.",
}
_ALNUM = string.ascii_letters + string.digits


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


@dataclass
class GitHubUser:
    login: str
    id: int
    name: str | None = None
    email: str | None = None  # the public email of /user
    emails: list[dict] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)  # "org:team-slug"


class FakeGitHub(FakeProvider):
    """Fake GitHub. As on GitHub, team membership implies organization
    membership: a team adds its org, and removing an org removes its teams."""

    authorize_path = "/login/oauth/authorize"
    token_path = "/login/oauth/access_token"
    display_name = "GitHub"
    api_prefix = "/api/v3"

    def __init__(self, *, expiring_tokens: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.issues_refresh_tokens = expiring_tokens
        self._ids: dict[tuple[str, str], int] = {}
        self._api_used = 0

    @property
    def api_url(self) -> str:
        return self.url + self.api_prefix

    def oauthenticator_config(self) -> dict:
        """Traits to give ``GitHubOAuthenticator``."""
        return {
            "github_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    # -- accounts ------------------------------------------------------------------

    def add_user(
        self, login, *, id=None, name=None, email=None, emails=None, orgs=(), teams=()
    ):
        """``email`` is the public email (None: private). ``emails`` defaults to
        one verified primary address: ``email``, or a private one."""
        with self._lock:
            uid = id if id is not None else self._id("user", login)
            if emails is None:
                visibility = "public" if email else "private"
                address = email or f"{login}@users.example.org"
                emails = [
                    {
                        "email": address,
                        "primary": True,
                        "verified": True,
                        "visibility": visibility,
                    }
                ]
            user = GitHubUser(login, uid, name, email, copy.deepcopy(emails))
            self._accounts[login] = user
            self.set_orgs(login, orgs)
            self.set_teams(login, teams)

    def update_user(self, login, **fields):
        """Change ``name``, ``email`` and/or ``emails`` of an account."""
        with self._lock:
            user = self._accounts[login]
            for key, value in fields.items():
                if key not in ("name", "email", "emails"):
                    raise TypeError(f"cannot update {key}")
                setattr(user, key, copy.deepcopy(value))

    def set_orgs(self, login, orgs):
        with self._lock:
            user = self._accounts[login]
            user.orgs = list(dict.fromkeys(orgs))
            keep = {o.lower() for o in user.orgs}
            user.teams = [t for t in user.teams if t.split(":")[0].lower() in keep]

    def set_teams(self, login, teams):
        with self._lock:
            user = self._accounts[login]
            user.teams = list(dict.fromkeys(teams))
            known = {o.lower() for o in user.orgs}
            for org in (t.split(":")[0] for t in user.teams):
                if org.lower() not in known:
                    known.add(org.lower())
                    user.orgs.append(org)

    def _find(self, login: str) -> GitHubUser | None:
        """A snapshot of the account (logins are case-insensitive)."""
        with self._lock:
            for user in self._accounts.values():
                if user.login.lower() == login.lower():
                    return copy.deepcopy(user)
        return None

    def _id(self, kind: str, name: str) -> int:
        with self._lock:
            key = (kind, name.lower())
            if key not in self._ids:
                base = {"user": 1000, "org": 9000, "team": 7000}[kind]
                self._ids[key] = base + sum(1 for k, _ in self._ids if k == kind) + 1
            return self._ids[key]

    # -- OAuth ---------------------------------------------------------------------

    def _new_token(self, kind: str) -> str:
        if kind == "code":
            return secrets.token_hex(10)
        size, prefix = (76, "ghr_") if kind == "refresh" else (36, "gho_")
        return prefix + "".join(secrets.choice(_ALNUM) for _ in range(size))

    def _oauth_reply(self, req: Request, data: dict) -> Reply:
        if "json" in req.headers.get("accept", ""):
            return json_reply(200, data)
        form_type = "application/x-www-form-urlencoded; charset=utf-8"
        return Reply(200, urlencode(data).encode(), {"Content-Type": form_type})

    def _token_reply(self, req, account, scope, access, refresh) -> Reply:
        data = {
            "access_token": access,
            "token_type": "bearer",
            "scope": ",".join(scope),
        }
        if refresh:
            data |= {"expires_in": 28800, "refresh_token": refresh}
            data["refresh_token_expires_in"] = 15897600
        return self._oauth_reply(req, data)

    def _token_error(self, req: Request, kind: str) -> Reply:
        error = TOKEN_ERRORS[kind]
        uri = TOKEN_DOCS + "#" + error.replace("_", "-")
        data = {"error": error, "error_description": TOKEN_ERROR_TEXT[error]}
        return self._oauth_reply(req, data | {"error_uri": uri})

    def _authorize(self, req: Request) -> Reply:
        form = req.form
        if req.method == "POST" and "deny" in form and form.get("redirect_uri"):
            if form.get("client_id") != self.client_id:
                return self._page(400, "Unknown client_id")
            params = {
                "error": "access_denied",
                "error_description": "The user has denied your application access.",
                "error_uri": TOKEN_DOCS,
            }
            if "state" in form:
                params["state"] = form["state"]
            return self._redirect(form["redirect_uri"], params)
        return super()._authorize(req)

    # -- REST API ------------------------------------------------------------------

    def _api(self, status: int, body=None, headers: dict | None = None) -> Reply:
        with self._lock:
            self._api_used += 1
            used = self._api_used
        hdrs = {
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(max(0, 5000 - used)),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Resource": "core",
            **(headers or {}),
        }
        if body is None:
            return Reply(status, b"", hdrs)
        return json_reply(status, body, hdrs)

    def _not_found(self, text="Not Found") -> Reply:
        return self._api(404, shapes.message(text, 404))

    def _fault_body(self, req: Request, fault: Fault) -> dict:
        if fault.rate_limit:
            grant = self._grant_for(self._bearer(req))
            user = self._find(grant.account) if grant else None
            who = f"user ID {user.id}" if user else "127.0.0.1"
            text = f"API rate limit exceeded for {who}."
            return shapes.message(text, docs=shapes.RATE_DOCS)
        if fault.status == 429 or (fault.status == 403 and fault.retry_after):
            text = (
                "You have exceeded a secondary rate limit. Please wait a few minutes "
                "before you try again. If you reach out to GitHub Support for help, "
                f"please include the request ID {secrets.token_hex(8).upper()}."
            )
            docs = shapes.RATE_DOCS + "#about-secondary-rate-limits"
            return shapes.message(text, docs=docs)
        if fault.status == 401:
            return shapes.message("Bad credentials", 401)
        return shapes.message(HTTPStatus(fault.status).phrase, fault.status)

    def _paginated(self, req: Request, items: list, headers: dict) -> Reply:
        per_page = min(max(_int(req.query.get("per_page"), 30), 1), 100)
        page = max(_int(req.query.get("page"), 1), 1)
        last = max(1, math.ceil(len(items) / per_page))
        link = shapes.link_header(self.url + req.path, req.query, page, last)
        if link:
            headers = {**headers, "Link": link}
        return self._api(200, items[(page - 1) * per_page : page * per_page], headers)

    def _org(self, login: str) -> dict:
        return shapes.org_object(self.url, self.api_url, login, self._id("org", login))

    def _team(self, org_team: str) -> dict:
        org, _, slug = org_team.partition(":")
        tid = self._id("team", org_team)
        return shapes.team_object(self.url, self.api_url, self._org(org), slug, tid)

    def _route(self, req: Request) -> Reply:
        if not req.path.startswith(self.api_prefix + "/") or req.method != "GET":
            return self._not_found()
        token = self._bearer(req)
        grant = self._grant_for(token)
        user = self._find(grant.account) if grant else None
        if user is None:
            text = "Requires authentication" if token is None else "Bad credentials"
            return self._api(401, shapes.message(text, 401))
        headers = {"X-OAuth-Scopes": ", ".join(grant.scope)}
        headers["X-Accepted-OAuth-Scopes"] = ""
        match req.path[len(self.api_prefix) :].strip("/").split("/"):
            case ["user"]:
                obj = shapes.user_object(
                    self.url, self.api_url, user.login, user.id, user.name, user.email
                )
                return self._api(200, obj, headers)
            case ["user", "orgs"]:
                return self._paginated(req, [self._org(o) for o in user.orgs], headers)
            case ["user", "teams"]:
                return self._paginated(
                    req, [self._team(t) for t in user.teams], headers
                )
            case ["user", "emails"]:
                return self._paginated(req, user.emails, headers)
            case ["orgs", org, "members", login]:
                member = self._find(login)
                if member and org.lower() in {o.lower() for o in member.orgs}:
                    return self._api(204, None, headers)
                text = "User does not exist or is not a member of the organization"
                return self._not_found(text)
            case [
                "orgs",
                org,
                "teams",
                team,
                ("members" | "memberships") as kind,
                login,
            ]:
                member = self._find(login)
                wanted = f"{org}:{team}".lower()
                if not member or wanted not in {t.lower() for t in member.teams}:
                    return self._not_found()
                if kind == "members":
                    return self._api(204, None, headers)
                url = f"{self.api_url}/orgs/{org}/teams/{team}/memberships/{login}"
                body = {"url": url, "role": "member", "state": "active"}
                return self._api(200, body, headers)
        return self._not_found()
