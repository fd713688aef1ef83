"""The few hub REST API calls the culler makes, with its token kept out of sight.

The token travels only in the ``Authorization`` header, and only to the
configured hub URL: redirects are never followed (a 3xx is an error), so the
header cannot be carried to another origin whatever tornado's version does
with it. Errors are raised as :class:`HubAPIError`, whose message has the
method, the path, the status and the start of the answer's body, scrubbed of
the token and of every piece of it before it is cut (a proxy's error page can
echo the request's headers); tornado's own exceptions (whose tracebacks can
show request objects) do not escape this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from .redact import scrub, scrub_and_cut

PAGINATION = "application/jupyterhub-pagination+json"

#: The most of an error body read (then scrubbed, then cut to DETAIL_LIMIT).
BODY_LIMIT = 4096
#: The most characters of detail an error message carries.
DETAIL_LIMIT = 200


@dataclass(frozen=True)
class Page:
    """One page of ``GET /users``: its users, the rows of the hub's list it
    covers (``offset``, ``limit``), how many rows the list had (``total``)
    and whether the hub says more follow."""

    items: list
    offset: int
    limit: int
    total: int
    more: bool


class HubAPIError(Exception):
    """A failed hub API request (status 599: no answer).

    Every part of the message is scrubbed of ``secrets`` (and of each piece
    of one), and the detail is cut only after that.
    """

    def __init__(
        self, method: str, path: str, status: int, detail: str = "", *, secrets=()
    ):
        path = scrub(path, secrets)
        self.method, self.path, self.status = method, path, status
        message = f"{method} {path}: HTTP {status}"
        if detail:
            message += f" ({scrub_and_cut(detail, secrets, DETAIL_LIMIT)})"
        super().__init__(scrub(message, secrets))


class HubAPI:
    """A hub's REST API (``.../hub/api``) with one token."""

    def __init__(self, url: str, token: str, *, request_timeout: float = 30):
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"token {token}"}
        self._secrets = (token,)
        self._timeout = request_timeout
        self.requests = 0  # made so far (for metrics and benchmarks)
        self._client = AsyncHTTPClient(force_instance=True, max_clients=64)

    def __repr__(self) -> str:
        return f"HubAPI({self.url!r})"  # never the token

    def close(self) -> None:
        self._client.close()

    def _error(self, method: str, path: str, status: int, detail: str = ""):
        """A HubAPIError for ``path`` (shown without its query), scrubbed."""
        return HubAPIError(
            method, urlsplit(path).path, status, detail, secrets=self._secrets
        )

    async def request(self, method: str, path: str, *, body=None, accept=None):
        """``method`` on ``path`` (under the hub URL); the response, if 2xx."""
        if not path.startswith("/"):
            # The token goes to the configured hub URL alone.
            raise ValueError("a path under the hub API URL, starting with '/'")
        headers = dict(self._headers)
        if accept:
            headers["Accept"] = accept
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            self.url + path,
            method=method,
            headers=headers,
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=self._timeout,
            follow_redirects=False,
        )
        shown = urlsplit(request.url).path
        self.requests += 1
        try:
            response = await self._client.fetch(request, raise_error=False)
        except Exception as e:  # connection errors, timeouts
            raise self._error(method, shown, 599, type(e).__name__) from None
        if 300 <= response.code < 400:
            # Where to, without the query: enough to fix the hub API URL.
            target = urlsplit(response.headers.get("Location") or "")
            where = f"{target.scheme}://{target.netloc}" if target.netloc else ""
            raise self._error(
                method,
                shown,
                response.code,
                f"redirect to {where + target.path or '?'} not followed: "
                "check the hub API URL",
            )
        if response.code >= 400 or response.code == 599:
            detail = ""
            if response.body:
                detail = response.body[:BODY_LIMIT].decode("utf8", "replace")
            raise self._error(method, shown, response.code, detail)
        return response

    async def json(self, method: str, path: str, **kwargs):
        response = await self.request(method, path, **kwargs)
        if not response.body:
            return None
        try:
            return json.loads(response.body)
        except ValueError:
            body = response.body[:BODY_LIMIT].decode("utf8", "replace")
            raise self._error(
                method,
                self.url + path,
                response.code,
                f"response is not JSON: {body}",
            ) from None

    async def ready_users(self, page_size: int = 50) -> list[dict]:
        """All users with a ready server, following the hub's pagination."""
        return await self.users("ready", page_size)

    async def inactive_users(self, page_size: int = 50) -> list[dict]:
        """All users with no server at all (none running, pending or stopping)."""
        return await self.users("inactive", page_size)

    async def users(self, state: str, page_size: int = 50) -> list[dict]:
        """All users in ``state`` (JupyterHub's ``state`` filter), every page,
        from the first to the last."""
        users: list[dict] = []
        seen = set()
        offset = 0
        while True:
            page = await self.page(state, offset, page_size)
            for user in page.items:
                # Pages can shift while servers stop: never handle a user twice.
                if isinstance(user, dict) and user.get("name") not in seen:
                    seen.add(user.get("name"))
                    users.append(user)
            if not page.more:
                return users
            offset = page.offset + page.limit

    async def page(self, state: str, offset: int, limit: int) -> Page:
        """One page of the users in ``state``: ``limit`` rows of the hub's
        list (by user id) from ``offset``. The hub may answer with fewer
        rows than asked for (its ``api_page_max_limit``): ``Page.limit``
        says how many it covered."""
        query = urlencode({"state": state, "limit": limit, "offset": offset})
        answer = await self.json("GET", f"/users?{query}", accept=PAGINATION)
        if isinstance(answer, list):  # a hub without pagination: everyone
            return Page(answer, 0, len(answer), len(answer), False)
        if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
            raise self._error("GET", "/users", 200, "unexpected response shape")
        pagination = answer.get("_pagination")
        if not isinstance(pagination, dict):
            raise self._error("GET", "/users", 200, "bad pagination")
        numbers = [pagination.get(k) for k in ("offset", "limit", "total")]
        if not all(type(n) is int and n >= 0 for n in numbers) or not numbers[1]:
            raise self._error("GET", "/users", 200, "bad pagination")
        more = pagination.get("next")
        if more is not None and not isinstance(more, dict):
            raise self._error("GET", "/users", 200, "bad pagination link")
        return Page(answer["items"], *numbers, more=bool(more))

    async def user(self, name: str) -> dict | None:
        """One user's model; None if there is no such user."""
        try:
            model = await self.json("GET", f"/users/{quote(name, safe='')}")
        except HubAPIError as e:
            if e.status == 404:
                return None
            raise
        if not isinstance(model, dict):
            raise self._error("GET", "/users/:name", 200, "unexpected response shape")
        return model

    async def whoami(self) -> dict:
        """The model of this token's owner, with its ``scopes``."""
        model = await self.json("GET", "/user")
        if not isinstance(model, dict):
            raise self._error("GET", "/user", 200, "unexpected response shape")
        return model

    async def delete_user(self, name: str) -> None:
        """Delete a user from the hub."""
        await self.request("DELETE", f"/users/{quote(name, safe='')}")

    async def stop_server(self, user: str, server: str, remove: bool = False) -> int:
        """Stop a server; return 204 (stopped) or 202 (stopping)."""
        if server:
            path = f"/users/{quote(user, safe='')}/servers/{quote(server, safe='')}"
        else:
            path = f"/users/{quote(user, safe='')}/server"
        body = {"remove": True} if remove else None
        response = await self.request("DELETE", path, body=body)
        return response.code
