"""A class of 300 joins with one code at once, through a real hub and the
real OIDC provider: exactly the code's uses succeed, the others are told the
code is used up, and nobody is a member twice or by mistake."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from .harness import running_hub
from .test_invitations_hub import CONFIG, _audit, _invite, _iso, _join_page, _xsrf

pytestmark = pytest.mark.e2e

STUDENTS = 300
USES = 250

ACCOUNTS = {
    "lead": {"preferred_username": "lead", "groups": ["ocean-lab", "ocean-lab-admins"]},
    **{
        f"s{n:03d}": {"preferred_username": f"s{n:03d}", "groups": []}
        for n in range(STUDENTS)
    },
}


def test_a_class_of_300_joins_with_one_code(tmp_path_factory):
    with running_hub(tmp_path_factory, "class", CONFIG, ACCOUNTS) as hub:
        lead = hub.signed_in("lead")
        made = _invite(
            lead, kind="code", max_uses=USES, expires_at=_iso(timedelta(days=1))
        )

        def confirm(n: int):
            """Each student opens the page and confirms "sign in and join"."""
            person = hub.session()
            page = _join_page(person, made["code"])
            assert page.status_code == 200, page.text[:300]
            r = person.session.post(
                f"{hub.url}/hub/hubext/join",
                data={
                    "_xsrf": _xsrf(page.text),
                    "code": made["code"],
                    "provider": "demo",
                },
                allow_redirects=False,
                timeout=60,
            )
            assert r.status_code == 302, r.text[:300]
            return person, r.headers["Location"]

        with ThreadPoolExecutor(16) as pool:
            confirmed = list(pool.map(confirm, range(STUDENTS)))

        def join(n: int) -> tuple[str, str]:
            """... then all sign in at once."""
            person, login = confirmed[n]
            r = person.login(None, f"s{n:03d}", login_path=login)
            if r.status_code == 302:
                r = person.get(r.headers["Location"])
            text = r.text
            if "You are now a member" in text:
                return f"s{n:03d}", "joined"
            if "used as many times as it allows" in text:
                return f"s{n:03d}", "used_up"
            return f"s{n:03d}", re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))[
                -600:
            ]

        with ThreadPoolExecutor(32) as pool:
            results = dict(pool.map(join, range(STUDENTS)))
        outcomes = sorted(set(results.values()))
        assert outcomes == ["joined", "used_up"], outcomes
        joined = sorted(n for n, r in results.items() if r == "joined")
        assert len(joined) == USES
        group = hub.api.request("GET", "/groups/ocean-lab").json()
        assert sorted(u for u in group["users"] if u.startswith("s")) == joined
        listed = lead.api("GET", "/hubext/communities/ocean-lab/invitations").json()
        [invitation] = listed["invitations"]
        assert invitation["uses"] == USES
        assert len(invitation["redeemed_by"]) == STUDENTS
        actions = [a for a, _ in _audit(hub)]
        assert actions.count("invitation.redeem") == USES
        assert actions.count("invitation.refuse") == STUDENTS - USES
