"""Matching one identity against 1,000 communities of 10 rules each.

Compares hubext's compiled rule index (``Communities.rule_index``) with the
straightforward alternative, scanning every rule of every community (what a
``post_auth_hook`` that maps claims to groups does). There is no upstream
component that maps identities to many communities; the scan is the peer.

    python benchmarks/bench_rules.py [--communities 1000] [--rules 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from traitlets.config import Config

from hubext import Communities
from hubext.identity import Identity


def make_communities(n: int, rules: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    keys = ["github", "group", "email_domain", "idp", "username"]
    communities = {}
    for i in range(n):
        members = []
        for j in range(rules):
            key = rng.choice(keys)
            value = {
                "github": f"org-{rng.randrange(n)}:team-{j}",
                "group": f"group-{rng.randrange(n * 5)}",
                "email_domain": f"dept{rng.randrange(n)}.uni{i}.example.edu",
                "idp": f"https://idp{rng.randrange(n)}.example.org",
                "username": f"user{rng.randrange(n * 10)}",
            }[key]
            rule = {key: value}
            if j % 3 == 0:
                rule["provider"] = rng.choice(["github", "cilogon", "uni"])
            members.append(rule)
        communities[f"c{i}"] = {"members": members[:-2], "admins": members[-2:]}
    return communities


def make_identity(n: int, seed: int = 2) -> Identity:
    rng = random.Random(seed)
    return Identity(
        provider="github",
        username=f"user{rng.randrange(n * 10)}",
        emails=frozenset(
            {f"x@dept{rng.randrange(n)}.uni{rng.randrange(n)}.example.edu"}
        ),
        github_orgs=frozenset(f"org-{rng.randrange(n)}" for _ in range(20)),
        github_teams=frozenset(f"org-{rng.randrange(n)}:team-{t}" for t in range(20)),
        groups=frozenset(f"group-{rng.randrange(n * 5)}" for _ in range(50)),
    )


def scan(registry: Communities, atoms: set) -> tuple[set, set]:
    """The peer: check every rule of every community."""
    members, admins = set(), set()
    for community in registry:
        for role in ("members", "admins"):
            for rule in community.get(role, ()):
                if all(atom in atoms for atom in rule):
                    (admins if role == "admins" else members).add(community.slug)
    return members | admins, admins


def timeit(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communities", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    config = Config()
    config.Communities.communities = make_communities(args.communities, args.rules)
    start = time.perf_counter()
    registry = Communities(config=config)
    index = registry.rule_index
    load = time.perf_counter() - start

    identities = [make_identity(args.communities, seed) for seed in range(20)]
    matched = 0
    for identity in identities:  # both give the same answer
        atoms = identity.atoms()
        m = index.match(atoms)
        assert (set(m.member_of), set(m.admin_of)) == scan(registry, atoms)
        matched += len(m.member_of)

    ours = timeit(
        lambda: [index.match(i.atoms()) for i in identities], args.repeat // 20
    )
    peer = timeit(lambda: [scan(registry, i.atoms()) for i in identities], 20)
    per = len(identities)
    ours_us = statistics.median(ours) / per * 1e6
    peer_us = statistics.median(peer) / per * 1e6
    p95_us = sorted(ours)[int(len(ours) * 0.95)] / per * 1e6
    print(
        f"{args.communities} communities x {args.rules} rules "
        f"(validated and indexed in {load * 1000:.0f} ms)"
    )
    print(f"identities match {matched / len(identities):.1f} communities on average")
    print(
        f"hubext rule index : {ours_us:8.1f} us per identity (median; p95 {p95_us:.1f} us)"
    )
    print(f"full scan (peer)  : {peer_us:8.1f} us per identity (median)")
    print(f"ratio hubext/peer : {ours_us / peer_us:.4f}")


if __name__ == "__main__":
    main()
