"""JSON shapes of GitHub's REST API, as its reference documents them.

- user: "Get the authenticated user" (private-user fields trimmed to the public ones)
- org: "List organizations for the authenticated user" (organization-simple)
- team: "List teams for the authenticated user" (team-full, with organization)
- ``link_header``: "Using pagination in the REST API" (rel prev, next, last, first,
  in the order GitHub sends them; the request's other query parameters kept)
- ``message``: error bodies of "Troubleshooting the REST API" and "Rate limits for
  the REST API"
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
STAMP = "2020-01-01T00:00:00Z"


def message(text: str, status: int | None = None, docs: str = DOCS) -> dict:
    body = {"message": text, "documentation_url": docs}
    if status is not None:
        body["status"] = str(status)
    return body


def node_id(kind: str, num: int) -> str:
    """Legacy global node ids, e.g. ``MDQ6VXNlcjE=`` for ``04:User1``."""
    return base64.b64encode(f"{kind}{num}".encode()).decode()


def user_object(web: str, api: str, login: str, uid: int, name, email) -> dict:
    return {
        "login": login,
        "id": uid,
        "node_id": node_id("04:User", uid),
        "avatar_url": f"{web}/avatars/u/{uid}",
        "gravatar_id": "",
        "url": f"{api}/users/{login}",
        "html_url": f"{web}/{login}",
        "organizations_url": f"{api}/users/{login}/orgs",
        "repos_url": f"{api}/users/{login}/repos",
        "type": "User",
        "site_admin": False,
        "name": name,
        "company": None,
        "blog": "",
        "location": None,
        "email": email,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": STAMP,
        "updated_at": STAMP,
    }


def org_object(web: str, api: str, login: str, oid: int) -> dict:
    url = f"{api}/orgs/{login}"
    return {
        "login": login,
        "id": oid,
        "node_id": node_id("012:Organization", oid),
        "url": url,
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events",
        "hooks_url": f"{url}/hooks",
        "issues_url": f"{url}/issues",
        "members_url": f"{url}/members{{/member}}",
        "public_members_url": f"{url}/public_members{{/member}}",
        "avatar_url": f"{web}/avatars/o/{oid}",
        "description": None,
    }


def team_object(web: str, api: str, org: dict, slug: str, tid: int) -> dict:
    url = f"{api}/organizations/{org['id']}/team/{tid}"
    organization = {
        **org,
        "name": org["login"],
        "html_url": f"{web}/{org['login']}",
        "type": "Organization",
        "created_at": STAMP,
        "updated_at": STAMP,
    }
    return {
        "id": tid,
        "node_id": node_id("04:Team", tid),
        "url": url,
        "html_url": f"{web}/orgs/{org['login']}/teams/{slug}",
        "name": slug,
        "slug": slug,
        "description": None,
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "pull",
        "members_url": f"{url}/members{{/member}}",
        "repositories_url": f"{url}/repos",
        "parent": None,
        "created_at": STAMP,
        "updated_at": STAMP,
        "organization": organization,
    }


def link_header(url: str, query: dict, page: int, last: int) -> str | None:
    """``Link`` for ``page`` of ``last``; None when everything fits one page."""
    others = {k: v for k, v in query.items() if k != "page"}

    def link(num: int, rel: str) -> str:
        return f'<{url}?{urlencode({**others, "page": num})}>; rel="{rel}"'

    links = []
    if page > 1:
        links.append(link(page - 1, "prev"))
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links.append(link(1, "first"))
    return ", ".join(links) or None
