"""What the communities' stored environments cost at a spawn form (hubext-kube).

The profile list of bench_profiles.py (1,005 configured profiles: 100
communities x 10, plus 5 public; 3 options of 4 choices), and the same 100
communities each with 5 environments stored by their admins (500 more
profiles, 2 sizes each), in the delegated state on SQLite. Three users in
3 communities each, one spawner each, taken in turn (as JupyterHub keeps one
spawner per user). Two spawner classes, so that each keeps its own cache:

- ``stored``: the communities may offer environments, and have;
- ``configured only``: the same configuration without ``self_service``;
- ``same profiles configured``: no ``self_service``, and the 1,505
  profiles of ``stored`` (its merged list) configured: the same forms,
  without the delegated state.

Reports, per call (median and p95):

1. ``full_profile_list()`` with nothing changed: the lookup a form and a
   spawn begin with (the store's cache is fresh, the merged list kept);
2. the same when the store's cache is older than its ``max_age`` (a
   second): one query of the versions, in a thread;
3. the first ``full_profile_list()`` after a change of one community's
   document (the merged list made again);
4. the whole form and a submission validated
   (``community_options_form`` + ``community_options_from_form``), both
   classes.

    python benchmarks/bench_environment_profiles.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes_asyncio.config import kube_config
from traitlets.config import Config

from benchmarks.bench_profiles import COMMUNITIES, make_profile_list
from hubext.console.config import Console, hub_store
from hubext.spawners.kube import CommunityKubeSpawner
from tests.spawner_objects import HUB, hub_user

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTS = 5
USERS = {
    "alice": ["community-3", "community-42", "community-97"],
    "bob": ["community-7", "community-42", "community-60"],
    "cy": ["community-1", "community-2", "community-3"],
}


class Stored(CommunityKubeSpawner):
    """The hub where communities store environments (its own class cache)."""


class ConfiguredOnly(CommunityKubeSpawner):
    """The same hub without self_service (its own class cache)."""


class SameConfigured(CommunityKubeSpawner):
    """The stored hub's merged list, configured (its own class cache)."""


def communities(delegating: bool) -> dict:
    def one(c: int) -> dict:
        if not delegating:
            return {}
        return {
            "self_service": {
                "environments": {"images": [f"quay.io/community-{c}/*"]},
                "sizes": {
                    "small": {"cpu_limit": 1, "mem_limit": "2G"},
                    "large": {"cpu_limit": 4, "mem_limit": "8G"},
                },
            }
        }

    return {f"community-{c}": one(c) for c in range(COMMUNITIES)}


def document(c: int, tag: str = "v1") -> dict:
    return {
        "environments": [
            {
                "slug": f"env-{e}",
                "display_name": f"Environment {e}",
                "image": f"quay.io/community-{c}/env-{e}:{tag}",
                "sizes": ["small", "large"],
            }
            for e in range(ENVIRONMENTS)
        ]
    }


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    median = statistics.median(ordered) * 1e6
    p95 = ordered[int(len(ordered) * 0.95)] * 1e6
    return f"median {median:9.1f} us, p95 {p95:9.1f} us"


async def timed(call, rounds: int, before=None) -> list[float]:
    samples = []
    for i in range(rounds):
        if before is not None:
            before(i)
        start = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - start)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(
        REPO / "tests" / "data" / "kubeconfig.yaml"
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-environments-"))
    profiles = make_profile_list()

    def config_of(delegating: bool, profile_list=profiles) -> Config:
        config = Config()
        config.KubeSpawner.profile_list = profile_list
        config.Communities.communities = communities(delegating)
        config.Console.db_url = f"sqlite:///{workdir / 'hubext-state.sqlite'}"
        config.UsageLedger.enabled = False
        return config

    stored_config, plain_config = config_of(True), config_of(False)
    store = hub_store(Console(config=stored_config), "sqlite:///unused.sqlite")
    for c in range(COMMUNITIES):
        store.change(
            f"community-{c}",
            0,
            document(c),
            actor="admin",
            actor_kind="user",
            action="environment.add",
        )

    def spawners(cls, config):
        return [
            cls(config=config, user=hub_user(name, groups), hub=HUB)
            for name, groups in USERS.items()
        ]

    ours, plain = (
        spawners(Stored, stored_config),
        spawners(ConfiguredOnly, plain_config),
    )
    full = await ours[0].full_profile_list()
    assert len(full) == len(profiles) + COMMUNITIES * ENVIRONMENTS, len(full)
    assert len(await plain[0].full_profile_list()) == len(profiles)
    merged = [dict(p) for p in full]
    for profile in merged[len(profiles) :]:
        profile["allowed_groups"] = [profile["slug"].split("--")[0]]
    same = spawners(SameConfigured, config_of(False, merged))
    slug = "community-42--env-3"
    form = {
        "profile": [slug],
        f"profile-option-{slug}--size": ["large"],
        "_xsrf": ["x"],
    }
    plain_slug = "community-42-p7"
    plain_form = {
        "profile": [plain_slug],
        f"profile-option-{plain_slug}--opt1": ["c3"],
        "_xsrf": ["x"],
    }

    def each(group):
        async def call(i):
            await group[i % len(group)].full_profile_list()

        return call

    rounds = args.rounds
    results = {}
    # interleaved arms, so that both see the same machine
    for _ in range(2):
        results.setdefault("unchanged, stored", []).extend(
            await timed(each(ours), rounds // 2)
        )
        results.setdefault("unchanged, configured only", []).extend(
            await timed(each(plain), rounds // 2)
        )
        results.setdefault("unchanged, same profiles configured", []).extend(
            await timed(each(same), rounds // 2)
        )
    results["cache older than max_age, stored"] = await timed(
        each(ours), rounds, before=lambda i: store.cache.invalidate()
    )

    version = {"community-42": 1}

    def change(i):
        store.change(
            "community-42",
            version["community-42"],
            document(42, f"v{i + 2}"),
            actor="admin",
            actor_kind="user",
            action="environment.edit",
        )
        version["community-42"] += 1

    changed = await timed(each(ours), max(rounds // 10, 10), before=change)
    results["first after a change, stored"] = changed
    assert (await ours[0].full_profile_list())[-1]["kubespawner_override"]["image"]

    async def form_round(group, submission, i):
        spawner = group[0]  # alice: in community-42
        await spawner.community_options_form()
        await spawner.community_options_from_form(submission)

    for _ in range(2):
        results.setdefault("form + validation, stored", []).extend(
            await timed(lambda i: form_round(ours, form, i), rounds // 2)
        )
        results.setdefault("form + validation, configured only", []).extend(
            await timed(lambda i: form_round(plain, plain_form, i), rounds // 2)
        )
        results.setdefault("form + validation, same configured", []).extend(
            await timed(lambda i: form_round(same, form, i), rounds // 2)
        )

    print(
        f"{len(profiles)} configured profiles, {COMMUNITIES} communities x "
        f"{ENVIRONMENTS} stored environments; {len(USERS)} users' spawners in turn; "
        f"{rounds} rounds"
    )
    for name, samples in results.items():
        print(f"{name:38s} {stats(samples)}  ({len(samples)} calls)")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
