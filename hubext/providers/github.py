"""GitHub, through OAuthenticator's GitHubOAuthenticator (kind ``github``).

Membership comes from two paginated listings, ``GET /user/orgs`` and
``GET /user/teams`` (100 per page), fetched concurrently: the number of API
calls per login does not depend on how many orgs and teams the communities
name. (GitHubOAuthenticator's ``allowed_organizations`` makes one call per
configured entry.) Verified emails come from ``GET /user/emails``.
"""

from __future__ import annotations

import asyncio
import json

from oauthenticator.github import GitHubOAuthenticator
from requests.utils import parse_header_links
from traitlets import Bool, Integer, default

from ..identity import Identity, clean_strings
from .base import ProviderMixin


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
        """Add ``github_orgs``, ``github_teams`` and ``verified_emails`` to auth_state."""
        auth_state = auth_model["auth_state"]
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
        auth_state["verified_emails"] = results[2] if self.fetch_verified_emails else []
        return auth_model

    async def _emails(self, access_token, token_type) -> list[str]:
        emails = await self.httpfetch(
            f"{self.github_api}/user/emails",
            "fetching verified emails",
            headers=self.build_userdata_request_headers(access_token, token_type),
            validate_cert=self.validate_server_cert,
        )
        return sorted(
            e["email"]
            for e in emails or []
            if isinstance(e, dict)
            and e.get("verified") is True
            and isinstance(e.get("email"), str)
        )

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
            "hubext: provider %s: more than %d pages at %s; the rest is ignored",
            self.provider_name,
            self.max_pages,
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
            emails=frozenset(e.lower() for e in emails),
            github_orgs=frozenset(o.lower() for o in orgs),
            github_teams=frozenset(t.lower() for t in teams),
        )
