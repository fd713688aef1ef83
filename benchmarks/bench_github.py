"""GitHub membership per login: hubext vs GitHubOAuthenticator.allowed_organizations.

Both sign the same account in against the same local GitHub API (the test
suite's FakeGitHub: GitHub's documented responses, ``Link`` pagination) with
50 ms latency per request, with 1, 10, 100 and 500 configured orgs/teams:

- hubext: ``CommunityAuthenticator`` with one ``github`` provider and one
  community per entry (rule ``{"github": entry}``); membership comes from
  ``/user/orgs`` and ``/user/teams``, fetched concurrently.
- upstream: ``GitHubOAuthenticator`` with ``allowed_organizations`` = the same
  entries; ``check_allowed`` asks GitHub once per entry until one matches.

Two cases: the account is in exactly one of the entries (a random one), and
in none (refused). Reported: outbound HTTP requests and wall time per login,
token exchange included.

    python benchmarks/bench_github.py [--latency 0.05] [--sizes 1,10,100,500]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oauthenticator.github import GitHubOAuthenticator
from tornado import web
from traitlets.config import Config

from hubext.authenticator import CommunityAuthenticator
from tests.fakes import FakeGitHub
from tests.fakes.browser import sign_in

CALLBACK = "http://127.0.0.1:8000/hub/github/oauth_callback"


class CallbackRequest:
    """The part of a tornado request handler that the OAuth callback reads."""

    def __init__(self, code: str, provider=None):
        self._code = code
        self.hubext_provider = provider

    def get_argument(self, name, default=None):
        return self._code if name == "code" else default


def entries(n: int) -> list[str]:
    # half organizations, half teams
    return [f"org-{i}" if i % 2 == 0 else f"org-{i}:team-{i}" for i in range(n)]


def new_code(fake: FakeGitHub, login: str) -> str:
    query = urlencode(
        {
            "client_id": fake.client_id,
            "redirect_uri": CALLBACK,
            "state": "s",
            "scope": "read:org",
        }
    )
    location = sign_in(f"{fake.url}/login/oauth/authorize?{query}", login)
    return parse_qs(urlsplit(location).query)["code"][0]


def hubext_authenticator(
    fake: FakeGitHub, configured: list[str]
) -> CommunityAuthenticator:
    config = Config()
    config.Communities.communities = {
        f"c{i}": {"members": [{"github": entry}]} for i, entry in enumerate(configured)
    }
    config.CommunityAuthenticator.providers = {
        "github": {
            "kind": "github",
            "config": {
                **fake.oauthenticator_config(),
                "oauth_callback_url": CALLBACK,
                "enable_pkce": False,
                "fetch_verified_emails": False,
            },
        }
    }
    return CommunityAuthenticator(config=config)


def upstream_authenticator(
    fake: FakeGitHub, configured: list[str]
) -> GitHubOAuthenticator:
    return GitHubOAuthenticator(
        **fake.oauthenticator_config(),
        oauth_callback_url=CALLBACK,
        enable_pkce=False,
        scope=["read:org"],
        allowed_organizations=set(configured),
    )


async def login_hubext(authenticator, code) -> bool:
    provider = authenticator.provider_adapters["github"]
    model = await authenticator.authenticate(CallbackRequest(code, provider))
    try:
        return await authenticator.check_allowed(model["name"], model)
    except web.HTTPError:
        return False


async def login_upstream(authenticator, code) -> bool:
    model = await authenticator.authenticate(CallbackRequest(code))
    return await authenticator.check_allowed(model["name"], model)


async def measure(fake, login, authenticate, authenticator) -> tuple[int, float, bool]:
    code = new_code(fake, login)
    fake.reset_calls()
    start = time.perf_counter()
    allowed = await authenticate(authenticator, code)
    elapsed = time.perf_counter() - start
    return len(fake.calls), elapsed, allowed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--sizes", default="1,10,100,500")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    print(f"latency {args.latency * 1000:.0f} ms per GitHub request; per login:")
    header = f"{'entries':>7} {'case':<10} {'hubext calls':>12} {'upstream calls':>14} {'hubext s':>9} {'upstream s':>10} {'time ratio':>10}"
    print(header)
    with FakeGitHub() as fake:
        for n in [int(s) for s in args.sizes.split(",")]:
            configured = entries(n)
            ours = hubext_authenticator(fake, configured)
            theirs = upstream_authenticator(fake, configured)
            target = rng.choice(configured)
            org = target.split(":")[0]
            teams = [target] if ":" in target else []
            # 40 unrelated teams and 5 unrelated orgs as well
            fake.add_user(
                "member",
                orgs=[org, *(f"x{i}" for i in range(5))],
                teams=[*teams, *(f"x0:t{i}" for i in range(40))],
            )
            fake.add_user("stranger", orgs=["x1"], teams=["x1:t1"])
            fake.latency = args.latency
            for case, login, expect in (
                ("member", "member", True),
                ("non-member", "stranger", False),
            ):
                o_calls, o_time, o_ok = await measure(fake, login, login_hubext, ours)
                u_calls, u_time, u_ok = await measure(
                    fake, login, login_upstream, theirs
                )
                assert o_ok is expect and u_ok is expect, (case, o_ok, u_ok)
                print(
                    f"{n:>7} {case:<10} {o_calls:>12} {u_calls:>14} "
                    f"{o_time:>9.2f} {u_time:>10.2f} {o_time / u_time:>10.3f}"
                )
            fake.latency = 0


if __name__ == "__main__":
    asyncio.run(main())
