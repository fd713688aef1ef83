"""Redemption of one join code by 300 people at once, through a real hub.

A real JupyterHub (configurable-http-proxy, SQLite, the demo configuration)
with the real OpenID Connect provider (demo/idp.mjs). P people (300), each
signed in first (not measured), open the join page of one code with U uses
(250), then all confirm at the same moment (a barrier): the confirmed POST
``/hub/hubext/join`` with the hub's XSRF token, the redemption under the
audit log's lock, the membership written and the hub's group set. Recorded
per person: seconds from the POST to its answer. Checked after: exactly U
people are members by invitation (the group, the invitation's uses, the
audit log), the others were told the code is used up, nobody twice.

There is no peer: JupyterHub has no invitations (its shared-password
authenticator lets anyone with the password in as any user).

    python -m benchmarks.bench_invitations [--people 300] [--uses 250] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness import RunningHub  # noqa: E402
from tests.test_invitations_hub import (  # noqa: E402
    CONFIG,
    _audit,
    _invite,
    _iso,
    _join_page,
    _xsrf,
)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def round_(hub: RunningHub, people: list[str], uses: int, n: int) -> dict:
    lead = hub.signed_in("lead")
    made = _invite(lead, kind="code", max_uses=uses, expires_at=_iso(timedelta(days=1)))
    code = made["code"]

    def prepare(name: str):
        person = hub.signed_in(name)
        page = _join_page(person, code)
        assert page.status_code == 200, page.text[:300]
        # no kept-alive connection: the proxy closes idle ones after 5 s,
        # before everyone is ready
        person.session.close()
        return person, _xsrf(page.text)

    with ThreadPoolExecutor(16) as pool:
        ready = list(pool.map(prepare, people))
    barrier = threading.Barrier(len(people))

    def confirm(i: int):
        person, token = ready[i]
        barrier.wait()
        started = time.perf_counter()
        r = person.session.post(
            f"{hub.url}/hub/hubext/join",
            data={"_xsrf": token, "code": code},
            timeout=300,
        )
        return time.perf_counter() - started, r.status_code, r.text

    with ThreadPoolExecutor(len(people)) as pool:
        answers = list(pool.map(confirm, range(len(people))))
    latencies = [a[0] for a in answers]
    joined = [people[i] for i, a in enumerate(answers) if a[1] == 200]
    used_up = [
        people[i]
        for i, a in enumerate(answers)
        if a[1] == 410 and "used as many times" in a[2]
    ]
    other = len(people) - len(joined) - len(used_up)
    group = hub.api.request("GET", "/groups/ocean-lab").json()["users"]
    listed = lead.api("GET", "/hubext/communities/ocean-lab/invitations").json()
    uses_counted = next(
        i["uses"] for i in listed["invitations"] if i["id"] == made["invitation"]["id"]
    )
    members = sorted(u for u in group if u in set(people))
    return {
        "round": n,
        "p50": pct(latencies, 50),
        "p95": pct(latencies, 95),
        "max": max(latencies),
        "joined": len(joined),
        "used_up": len(used_up),
        "other": other,
        "members": len(members),
        "exact": members == sorted(joined) and uses_counted == uses == len(joined),
    }


def sequential(hub: RunningHub, people: list[str]) -> tuple[float, float]:
    """Median seconds of one confirmed join, one person at a time, and of
    the hub's own home page (GET /hub/home) for the same people."""
    lead = hub.signed_in("lead")
    made = _invite(
        lead, kind="code", max_uses=len(people), expires_at=_iso(timedelta(days=1))
    )
    joins, homes = [], []
    for name in people:
        person = hub.signed_in(name)
        token = _xsrf(_join_page(person, made["code"]).text)
        started = time.perf_counter()
        r = person.session.post(
            f"{hub.url}/hub/hubext/join",
            data={"_xsrf": token, "code": made["code"]},
            timeout=60,
        )
        joins.append(time.perf_counter() - started)
        assert r.status_code == 200, r.text[:300]
        started = time.perf_counter()
        assert person.get("/hub/home").status_code == 200
        homes.append(time.perf_counter() - started)
    return pct(joins, 50), pct(homes, 50)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--uses", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    # everyone in astro-101, so that they can sign in before joining
    accounts = {
        "lead": {
            "preferred_username": "lead",
            "groups": ["ocean-lab", "ocean-lab-admins"],
        },
        **{
            f"r{r}p{n:03d}": {
                "preferred_username": f"r{r}p{n:03d}",
                "groups": ["astro-101"],
            }
            for r in range(args.rounds)
            for n in range(args.people)
        },
        **{
            f"seq{n:02d}": {
                "preferred_username": f"seq{n:02d}",
                "groups": ["astro-101"],
            }
            for n in range(30)
        },
    }

    with tempfile.TemporaryDirectory(prefix="bench-invitations-") as tmp:
        accounts_file = Path(tmp) / "accounts.json"
        accounts_file.write_text(json.dumps(accounts))
        # the demo's refresh age (the tests' CONFIG refreshes every second)
        config = CONFIG + "\nc.CommunityAuthenticator.auth_refresh_age = 300\n"
        hub = RunningHub(Path(tmp) / "hub", config, accounts=accounts_file).start()
        try:
            print(
                f"{args.people} people confirm one code of {args.uses} uses at once "
                "(real hub, SQLite, real OIDC provider)"
            )
            print("round  p50 ms  p95 ms  max ms  joined  used up  other  exact")
            for r in range(args.rounds):
                people = [f"r{r}p{n:03d}" for n in range(args.people)]
                result = round_(hub, people, args.uses, r + 1)
                print(
                    f"{result['round']:>5}  {result['p50'] * 1000:6.0f}  "
                    f"{result['p95'] * 1000:6.0f}  {result['max'] * 1000:6.0f}  "
                    f"{result['joined']:>6}  {result['used_up']:>7}  "
                    f"{result['other']:>5}  {result['exact']}"
                )
            join, home = sequential(hub, [f"seq{n:02d}" for n in range(30)])
            print(
                f"one at a time (30 people, median): join {join * 1000:.1f} ms, "
                f"the hub's home page {home * 1000:.1f} ms"
            )
            actions = [a for a, _ in _audit(hub)]
            print(
                f"audit log: {actions.count('invitation.redeem')} redemptions, "
                f"{actions.count('invitation.refuse')} refusals"
            )
        finally:
            hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
