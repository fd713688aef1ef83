"""The options form, rendered and a submission validated: hubext-kube vs KubeSpawner.

A profile list of 100 communities x 10 profiles x 3 options (4 choices each,
one restricted to the community; an unlisted choice with a regex), plus 5
public profiles. A user in 3 communities sees 35 profiles.

- hubext: ``CommunityKubeSpawner`` computes the user's list from the whole
  configured list and their groups, renders KubeSpawner's form for it, and
  validates a form submission (``community_options_from_form``).
- stock: ``KubeSpawner`` given the user's visible list as its
  ``profile_list`` (what it would need to show the same form), renders its
  form and runs its own check of the same submission
  (``options_from_form`` + ``_validate_user_options``).

Both are the same spawner objects each round (as JupyterHub reuses a user's
spawner). Reports median and p95 per render+validate, and the ratio.

    python benchmarks/bench_profiles.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner
from traitlets.config import Config

from hubext.profiles import initialize_profile_list, visible_profile_list
from hubext.spawners.kube import CommunityKubeSpawner
from tests.spawner_objects import HUB, hub_user

REPO = Path(__file__).resolve().parent.parent
COMMUNITIES = 100
PROFILES_PER_COMMUNITY = 10
OPTIONS = 3
CHOICES = 4


def make_profile_list() -> list[dict]:
    def options(slug, community):
        return {
            f"opt{o}": {
                "display_name": f"Option {o}",
                "choices": {
                    f"c{c}": {
                        "display_name": f"Choice {c}",
                        "kubespawner_override": {"environment": {f"O{o}": f"{c}"}},
                        **({"allowed_groups": [community]} if c == CHOICES - 1 else {}),
                    }
                    for c in range(CHOICES)
                },
                "unlisted_choice": {
                    "enabled": o == 0,
                    "display_name": "Other",
                    "validation_regex": "[a-z0-9-]{1,20}",
                    "kubespawner_override": {"environment": {"OTHER": "{value}"}},
                },
            }
            for o in range(OPTIONS)
        }

    profiles = [
        {
            "display_name": f"Public {i}",
            "slug": f"public-{i}",
            "profile_options": options(f"public-{i}", "none"),
        }
        for i in range(5)
    ]
    for c in range(COMMUNITIES):
        community = f"community-{c}"
        for p in range(PROFILES_PER_COMMUNITY):
            slug = f"{community}-p{p}"
            profiles.append(
                {
                    "display_name": f"{community} profile {p}",
                    "slug": slug,
                    "allowed_groups": [community],
                    "kubespawner_override": {"cpu_limit": p + 1},
                    "profile_options": options(slug, community),
                }
            )
    return profiles


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(
        REPO / "tests" / "data" / "kubeconfig.yaml"
    )

    profiles = make_profile_list()
    groups = ["community-3", "community-42", "community-97"]
    slug = "community-42-p7"
    form = {
        "profile": [slug],
        f"profile-option-{slug}--opt0": ["unlisted-choice"],
        f"profile-option-{slug}--opt0--unlisted-choice": ["my-env"],
        f"profile-option-{slug}--opt1": ["c3"],
        f"profile-option-{slug}--opt2": ["c1"],
        "_xsrf": ["x"],
    }

    config = Config()
    config.KubeSpawner.profile_list = profiles
    config.Communities.communities = {f"community-{c}": {} for c in range(COMMUNITIES)}
    ours = CommunityKubeSpawner(config=config, user=hub_user("alice", groups), hub=HUB)

    visible = visible_profile_list(initialize_profile_list(profiles), groups)
    stock_config = Config()
    stock_config.KubeSpawner.profile_list = visible
    stock = KubeSpawner(config=stock_config, user=hub_user("alice", groups), hub=HUB)
    assert len(visible) == 35

    async def run_ours():
        html = await ours.community_options_form()
        options = await ours.community_options_from_form(form)
        return html, options

    async def run_stock():
        html = stock._render_options_form(stock.profile_list)
        stock.user_options = stock.options_from_form(form)
        stock._validate_user_options(
            stock._get_initialized_profile_list(stock.profile_list)
        )
        return html, stock.user_options

    (ours_html, ours_options), (stock_html, stock_options) = (
        await run_ours(),
        await run_stock(),
    )
    assert ours_html.count('name="profile"') == stock_html.count('name="profile"') == 35
    assert ours_options["profile"] == stock_options["profile"] == slug

    ours_t, stock_t = [], []
    for _ in range(args.rounds):  # interleaved, so both see the same machine
        start = time.perf_counter()
        await run_ours()
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        await run_stock()
        stock_t.append(time.perf_counter() - start)

    def p95(xs):
        return sorted(xs)[int(len(xs) * 0.95)] * 1000

    om, sm = statistics.median(ours_t) * 1000, statistics.median(stock_t) * 1000
    print(
        f"{len(profiles)} configured profiles ({COMMUNITIES} communities x "
        f"{PROFILES_PER_COMMUNITY} + 5 public), {OPTIONS} options x {CHOICES} choices; "
        f"user in 3 communities sees {len(visible)}; {args.rounds} rounds"
    )
    print(
        f"hubext-kube  render+validate: median {om:6.2f} ms, p95 {p95(ours_t):6.2f} ms"
    )
    print(
        f"KubeSpawner  render+validate: median {sm:6.2f} ms, p95 {p95(stock_t):6.2f} ms"
    )
    print(
        f"ratio hubext/stock (median): {om / sm:.3f}; (p95): {p95(ours_t) / p95(stock_t):.3f}"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
