"""GitHub, through OAuthenticator's GitHubOAuthenticator (kind ``github``).

Membership comes from two paginated listings, ``GET /user/orgs`` and
``GET /user/teams`` (100 per page), fetched concurrently: the number of API
calls per login does not depend on how many orgs and teams the communities
name. (GitHubOAuthenticator's ``allowed_organizations`` makes one call per
configured entry.) Verified emails come from ``GET /user/emails``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json

from oauthenticator.github import GitHubOAuthenticator
from requests.utils import parse_header_links
from traitlets import Bool, Integer, default

from .._validation import plural
from ..identity import Identity, clean_strings, fold
from .base import ProviderMixin

#: The teams listed by the login being handled (one per task).
_listed_teams: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "hubext_github_teams", default=None
)


class GitHubProvider(ProviderMixin, GitHubOAuthenticator):
    """GitHub accounts, with their organizations and teams (kind ``github``)."""

    @default("scope")
    def _scope_default(self):
        # read:org: private org and team memberships; user:email: verified emails.
        return ["read:org", "user:email"]

    fetch_verified_emails = Bool(
        True,
        config=True,
        help="""
        Fetch the account's verified email addresses (``GET /user/emails``,
        scope ``user:email``) for ``email_domain`` rules. One API call per
        login; turn off if no rule uses emails of GitHub accounts.
        """,
    )

    max_pages = Integer(
        20,
        config=True,
        help="""
        Most pages (of 100) of organizations or teams read per login; more
        are ignored with a warning. Bounds the work one account can cause.
        """,
    )

    async def update_auth_model(self, auth_model):
        """Orgs, teams and verified emails, then GitHubOAuthenticator's steps.

        Adds ``github_orgs``, ``github_teams`` and ``verified_emails`` to
        auth_state, then calls the next ``update_auth_model``
        (:meth:`ProviderMixin.update_auth_model`, which records the identity
        after GitHubOAuthenticator's own steps). Those steps: the primary email
        in the user info when the public one is hidden (taken from the one
        ``/user/emails`` listing made here), and ``teams`` with
        ``populate_teams_in_auth_state`` (taken from the one team listing).
        """
        auth_state = auth_model["auth_state"]
        # GitHub separates granted scopes with commas; OAuthenticator 17.4
        # splits them on spaces, so a token with several scopes never fetched
        # the primary email (docs/upstream/authenticator.md).
        scopes = auth_state.get("scope")
        if isinstance(scopes, list):
            auth_state["scope"] = [
                part.strip()
                for scope in scopes
                if isinstance(scope, str)
                for part in scope.split(",")
                if part.strip()
            ]
        token = auth_state["token_response"]
        access_token, token_type = (
            token["access_token"],
            token.get("token_type", "token"),
        )
        jobs = [
            self._list(f"{self.github_api}/user/orgs", access_token, token_type),
            self._list(f"{self.github_api}/user/teams", access_token, token_type),
        ]
        if self.fetch_verified_emails:
            jobs.append(self._emails(access_token, token_type))
        results = await asyncio.gather(*jobs)
        orgs, teams = results[0], results[1]
        emails = results[2] if self.fetch_verified_emails else []
        user_info = auth_state.get(self.user_auth_state_key)
        if isinstance(user_info, dict) and not user_info.get("email"):
            primary = [e["email"] for e in emails if e.get("primary") is True]
            if primary:
                # What GitHubOAuthenticator would fetch: the primary email.
                user_info["email"] = primary[0]
        auth_state["github_orgs"] = sorted(
            {o.get("login", "") for o in orgs if isinstance(o, dict)} - {""}
        )
        auth_state["github_teams"] = sorted(
            {
                f"{(t.get('organization') or {}).get('login', '')}:{t.get('slug', '')}"
                for t in teams
                if isinstance(t, dict)
            }
            - {":"}
        )
        auth_state["verified_emails"] = sorted(
            e["email"] for e in emails if e.get("verified") is True
        )
        # GitHubOAuthenticator's steps, then the identity (ProviderMixin);
        # with the email filled in and the teams listed (handed over through
        # _paginated_fetch), they need no more requests.
        reuse = _listed_teams.set(teams)
        try:
            return await super().update_auth_model(auth_model)
        finally:
            _listed_teams.reset(reuse)

    async def _paginated_fetch(self, api_url, access_token, token_type):
        # GitHubOAuthenticator's team listing (populate_teams_in_auth_state):
        # the teams this login listed already, not a second listing.
        teams = _listed_teams.get()
        if teams is not None and api_url.startswith(f"{self.github_api}/user/teams"):
            return list(teams)
        return await super()._paginated_fetch(api_url, access_token, token_type)

    async def _emails(self, access_token, token_type) -> list[dict]:
        """The account's email entries (``GET /user/emails``), well-formed ones only."""
        emails = await self.httpfetch(
            f"{self.github_api}/user/emails",
            "fetching verified emails",
            headers=self.build_userdata_request_headers(access_token, token_type),
            validate_cert=self.validate_server_cert,
        )
        return [
            e
            for e in (emails if isinstance(emails, list) else [])
            if isinstance(e, dict) and isinstance(e.get("email"), str)
        ]

    async def _list(self, url, access_token, token_type) -> list:
        """All items of a paginated GitHub listing, following ``Link: rel="next"``."""
        items: list = []
        url = f"{url}?per_page=100"
        for _ in range(self.max_pages):
            response = await self.httpfetch(
                url,
                "listing memberships",
                parse_json=False,
                headers=self.build_userdata_request_headers(access_token, token_type),
                validate_cert=self.validate_server_cert,
            )
            page = json.loads(response.body.decode("utf8", "replace"))
            if not isinstance(page, list):
                break
            items.extend(page)
            links = parse_header_links(response.headers.get("Link", ""))
            url = next(
                (link["url"] for link in links if link.get("rel") == "next"), None
            )
            if url is None:
                return items
        self.log.warning(
            "hubext: provider %s: more than %d %s at %s; the rest is ignored",
            self.provider_name,
            self.max_pages,
            plural(self.max_pages, "page"),
            url.split("?")[0],
        )
        return items

    def identity_from_auth_model(self, auth_model: dict) -> Identity:
        state = auth_model.get("auth_state") or {}
        warn = self._claim_warning(auth_model["name"])
        orgs = clean_strings(state.get("github_orgs"), "github orgs", warn)
        teams = clean_strings(state.get("github_teams"), "github teams", warn)
        emails = clean_strings(state.get("verified_emails"), "verified emails", warn)
        return Identity(
            provider=self.provider_name,
            username=auth_model["name"],
            emails=frozenset(fold(e) for e in emails),
            github_orgs=frozenset(fold(o) for o in orgs),
            github_teams=frozenset(fold(t) for t in teams),
        )

    def subject_from_auth_model(self, auth_model: dict) -> str | None:
        # The numeric account id: a login can be renamed and then taken by
        # someone else, the id never changes hands.
        user = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        return self._subject(user.get("id"))
