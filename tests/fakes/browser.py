"""The person at the browser: sign in on a fake's authorize page with ``requests``.

``sign_in(authorize_url, login)`` opens the URL a hub redirected to (the fake's
authorize endpoint with the RFC 6749 4.1.1 query), submits the page's single
``<form method="post">`` with its hidden fields plus ``login`` and returns the
``Location`` the fake redirects to (``redirect_uri?code=..&state=..``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from html.parser import HTMLParser

import requests


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((attrs.get("method", ""), attrs.get("action", ""), {}))
        elif tag == "input" and attrs.get("type") == "hidden" and self.forms:
            self.forms[-1][2][attrs["name"]] = attrs.get("value", "")


def parse_form(page: str) -> tuple[str, dict[str, str]]:
    """``(action, hidden fields)`` of the page's one form (asserts there is one)."""
    parser = _FormParser()
    parser.feed(page)
    [(method, action, hidden)] = parser.forms
    assert method == "post", method
    return action, hidden


def sign_in(
    authorize_url: str,
    login: str,
    *,
    session: requests.Session | None = None,
    deny: bool = False,
    timeout: float = 10,
) -> str:
    http = session or requests
    page = http.get(authorize_url, timeout=timeout)
    page.raise_for_status()
    action, hidden = parse_form(page.text)
    data = {**hidden, "login": login, **({"deny": "1"} if deny else {})}
    resp = http.post(action, data=data, allow_redirects=False, timeout=timeout)
    if resp.status_code != 302:
        raise AssertionError(f"sign-in as {login!r}: {resp.status_code} {resp.text}")
    return resp.headers["Location"]


def pkce_pair() -> tuple[str, str]:
    """``(code_verifier, S256 code_challenge)`` as RFC 7636 4.1-4.2 define them."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")
