"""Clients for a running test hub: a person's browser session and the REST API.

``HubSession`` signs in through the real OpenID Connect provider the way a
browser does (following redirects, posting the provider's sign-in form) and
then acts with the person's own cookies.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urljoin, urlsplit

import requests

from .fakes.browser import parse_form


def wait_until(predicate, timeout: float = 15, interval: float = 0.3) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class HubAPI:
    """The hub's REST API with a service token."""

    def __init__(self, hub_url: str, token: str):
        self.url = f"{hub_url}/hub/api"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def user(self, name: str) -> dict:
        r = self.get(f"/users/{name}")
        r.raise_for_status()
        return r.json()

    def wait_for_server(
        self, name: str, ready: bool = True, timeout: float = 60
    ) -> dict:
        """Wait until the user's default server is ready (or, ready=False, gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.user(name)["servers"].get("")
            if ready and server and server.get("ready"):
                return server
            if not ready and not server:
                return {}
            time.sleep(0.2)
        raise TimeoutError(f"server of {name} not {'ready' if ready else 'stopped'}")


class HubSession:
    """One person's browser session on the hub."""

    def __init__(self, hub_url: str):
        self.hub_url = hub_url
        self.session = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(urljoin(self.hub_url, path), timeout=60, **kwargs)

    def login(
        self, provider: str | None, account: str, login_path: str | None = None
    ) -> requests.Response:
        """Sign in as ``account`` at ``provider``; return the hub's callback response.

        ``provider`` is a hubext provider's name (``/hub/<provider>/oauth_login``);
        ``login_path`` instead starts elsewhere (``/hub/oauth_login`` for a
        stock OAuthenticator).

        Follows redirects by hand through the provider's sign-in form, and
        stops at the hub's answer to the OAuth callback (a redirect when
        signed in, an error page when not, or the refusal page it redirects
        to), without following the hub's own post-login redirect (which
        would start a server).
        """
        hub = urlsplit(self.hub_url).netloc
        r = self.get(
            login_path or f"/hub/{provider}/oauth_login", allow_redirects=False
        )
        for _ in range(20):
            on_hub = urlsplit(r.url).netloc == hub
            if on_hub and "/oauth_callback" in urlsplit(r.url).path:
                location = r.headers.get("Location", "")
                if r.status_code == 302 and "/hub/hubext/refused" in location:
                    # A refused sign-in: the page that says why (a 403).
                    return self.session.get(
                        urljoin(r.url, location), allow_redirects=False, timeout=60
                    )
                return r
            if r.status_code in (301, 302, 303, 307):
                target = urljoin(r.url, r.headers["Location"])
                r = self.session.get(target, allow_redirects=False, timeout=60)
            elif r.status_code == 200 and not on_hub and "<form" in r.text:
                # The provider's sign-in page: choose the account.
                action, fields = parse_form(r.text)
                r = self.session.post(
                    urljoin(r.url, action),
                    data={**fields, "login": account},
                    allow_redirects=False,
                    timeout=60,
                )
            else:
                return r
        raise AssertionError(
            f"sign-in did not finish; last response {r.status_code} {r.url}"
        )

    def spawn_form(self, user: str = "") -> requests.Response:
        """GET the spawn page (the options form, or a redirect without one)."""
        path = f"/hub/spawn/{user}" if user else "/hub/spawn"
        return self.get(path, allow_redirects=False)

    def submit_spawn_form(self, fields: dict, user: str = "") -> requests.Response:
        """POST the options form as a browser does (with the page's XSRF token)."""
        page = self.spawn_form(user)
        # the page carries its XSRF token for scripts (window.jhdata)
        match = re.search(r'xsrf_token: "([^"]+)"', page.text)
        data = {**fields, "_xsrf": match[1] if match else ""}
        path = f"/hub/spawn/{user}" if user else "/hub/spawn"
        return self.session.post(
            urljoin(self.hub_url, path), data=data, allow_redirects=False, timeout=60
        )

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the hub's REST API with this person's cookie (and XSRF token)."""
        headers = {**self.xsrf_headers(), **kwargs.pop("headers", {})}
        return self.session.request(
            method,
            f"{self.hub_url}/hub/api{path}",
            headers=headers,
            timeout=60,
            **kwargs,
        )

    def xsrf_headers(self) -> dict:
        token = self.session.cookies.get("_xsrf", path="/hub/")
        return {"X-XSRFToken": token} if token else {}
