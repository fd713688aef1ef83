"""What the spawners do with the communities' stored environments, without a hub.

- start-up: bounds a spawner would ignore are refused, each with its key path
  (``hubext check-config``, the same checks as the hub's start);
- the list: the configured profiles, then each community's environments,
  kept (the same list object) while no stored version changes, made again
  at the next read after a change; nothing read when no community may
  offer environments;
- defaults: the environment a community's admins made the default is its
  members' default.

What is real: the spawners' code, the delegated state's store on SQLite
(opened as the hub opens it), ``hubext check-config``.
"""

from __future__ import annotations

import pytest
from traitlets.config import Config

from hubext.cli import main
from hubext.console.config import Console, hub_store
from hubext.spawners.kube import CommunityKubeSpawner
from hubext.spawners.local import LocalCommunitySpawner

from .spawner_objects import HUB, hub_user
from .test_check_config import write_config

SELF_SERVICE = 'c.Communities.communities["ocean-lab"]["self_service"]'


@pytest.mark.parametrize(
    ("spawner", "lines", "errors"),
    [
        pytest.param(
            None,
            [
                f'{SELF_SERVICE} = {{"environments": {{"images": ["quay.io/ocean-lab/*"]}}}}'
            ],
            [
                "Communities.communities['ocean-lab'].self_service.environments"
                ".images: hubext-local runs software environments, not images: "
                "give software_roots"
            ],
            id="images-on-local",
        ),
        pytest.param(
            "hubext-kube",
            [
                f'{SELF_SERVICE} = {{"environments": {{"software_roots": '
                '["/srv/envs/ocean-lab"]}}',
                'c.KubeSpawner.profile_list = [{"display_name": "A", "slug": "a"}]',
            ],
            [
                "Communities.communities['ocean-lab'].self_service.environments"
                ".software_roots: hubext-kube runs images, not software "
                "environments: give images"
            ],
            id="software-roots-on-kube",
        ),
        pytest.param(
            "jupyterhub.spawner.SimpleLocalProcessSpawner",
            [
                f'{SELF_SERVICE} = {{"environments": {{"software_roots": '
                '["/srv/envs/ocean-lab"]}}',
            ],
            [
                "Communities.communities['ocean-lab'].self_service.environments: "
                "the hub's spawner takes no community environments (hubext-kube "
                "and hubext-local do)"
            ],
            id="another-spawner",
        ),
        pytest.param(
            None,
            [
                f'{SELF_SERVICE} = {{"sizes": {{"small": {{"cpu_limit": 1}}}}, '
                '"idle_timeout": {"min": 900, "max": 7200}}',
            ],
            [
                "Communities.communities['ocean-lab'].self_service.sizes: sizes are "
                "offered with the community's environments: give environments "
                "too, or remove sizes"
            ],
            id="sizes-without-environments",
        ),
        pytest.param(
            None,
            [
                f'{SELF_SERVICE} = {{"environments": {{"software_roots": '
                '["/srv/envs/ocean-lab"]}, "sizes": {"gpu": {"cpu_limit": 1, '
                '"gpus": 1}}}',
            ],
            [
                "Communities.communities['ocean-lab'].self_service.sizes['gpu']"
                ".gpus: hubext-local gives servers no GPUs"
            ],
            id="gpus-on-local",
        ),
        pytest.param(
            None,
            [
                f'{SELF_SERVICE} = {{"environments": {{"software_roots": '
                '["/srv/envs/ocean-lab"]}}',
                "c.LocalCommunitySpawner.profile_list = []",
                'c.Communities.communities["ocean-lab"].pop("default_profile")',
                'c.Communities.communities["astro-101"].pop("default_profile")',
            ],
            [
                "LocalCommunitySpawner.profile_list: is empty, and the admins of "
                "ocean-lab may offer environments: those are offered beside the "
                "configured profiles; configure at least one profile, e.g. "
                "[{'display_name': 'Default', 'slug': 'default'}]"
            ],
            id="no-configured-profile",
        ),
    ],
)
def test_bounds_the_spawner_would_ignore_are_refused(
    tmp_path, capsys, spawner, lines, errors
):
    if spawner is not None:
        lines = [f"c.JupyterHub.spawner_class = {spawner!r}", *lines]
    assert main(["check-config", str(write_config(tmp_path, *lines))]) == 1
    err = capsys.readouterr().err.splitlines()
    found = [line.removeprefix("hubext: invalid configuration: ") for line in err]
    if spawner is None:  # the demo's configuration, which is valid, and the lines
        assert found == errors
    else:  # the demo's LocalCommunitySpawner settings are refused too
        assert set(errors) <= set(found), found


def test_the_bounds_each_spawner_takes_are_valid(tmp_path, capsys):
    local = write_config(
        tmp_path,
        f'{SELF_SERVICE} = {{"environments": {{"software_roots": '
        '["/srv/envs/ocean-lab"]}, "sizes": {"small": {"cpu_limit": 1}}, '
        '"idle_timeout": {"min": 900, "max": 7200}}',
    )
    assert main(["check-config", str(local)]) == 0, capsys.readouterr().err


# -- the list -------------------------------------------------------------------------

PROFILES = [{"display_name": "Standard", "slug": "standard"}]
COMMUNITIES = {
    "ocean-lab": {
        "display_name": "Ocean Modelling Lab",
        "default_profile": "standard",
        "self_service": {
            "environments": {"software_roots": ["/srv/envs/ocean-lab"]},
            "sizes": {"small": {"cpu_guarantee": 1}},
        },
    },
    "astro-101": {"display_name": "Astronomy 101"},
}


def local_config(tmp_path, communities=COMMUNITIES) -> Config:
    config = Config()
    config.LocalCommunitySpawner.profile_list = list(PROFILES)
    config.Communities.communities = communities
    config.Console.db_url = f"sqlite:///{tmp_path / 'hubext-state.sqlite'}"
    config.UsageLedger.enabled = False
    return config


def spawner_of(config, name, groups):
    return LocalCommunitySpawner(
        config=config,
        user=hub_user(name, groups),
        hub=HUB,
        api_token="not-a-token",
        oauth_client_id=f"jupyterhub-user-{name}",
    )


def change(config, document, action="environment.add"):
    store = hub_store(Console(config=config), "sqlite:///not-used.sqlite")
    version = store.read("ocean-lab").version
    store.change(
        "ocean-lab", version, document, actor="olga", actor_kind="user", action=action
    )


def environment(slug, **more):
    return {"slug": slug, "software_environment": f"/srv/envs/ocean-lab/{slug}", **more}


def slugs(profiles):
    return [p["slug"] for p in profiles]


async def test_the_list_is_kept_until_a_stored_version_changes(tmp_path):
    config = local_config(tmp_path)
    alice = spawner_of(config, "alice", ["ocean-lab"])
    first = await alice.full_profile_list()
    assert slugs(first) == ["standard"]
    # nothing stored, nothing changed: the same list, for every spawner
    assert await alice.full_profile_list() is first
    assert await spawner_of(config, "bob", ["astro-101"]).full_profile_list() is first

    change(config, {"environments": [environment("model", sizes=["small"])]})
    second = await alice.full_profile_list()
    assert slugs(second) == ["standard", "ocean-lab--model"]
    assert second[1]["allowed_groups"] == ["ocean-lab"]
    assert second[1]["kubespawner_override"]["cmd"][0] == (
        "/srv/envs/ocean-lab/model/bin/python"
    )
    assert await alice.full_profile_list() is second

    assert slugs(await alice.visible_profiles()) == ["standard", "ocean-lab--model"]
    bob = spawner_of(config, "bob", ["astro-101"])
    assert slugs(await bob.visible_profiles()) == ["standard"]


async def test_the_admins_default_is_their_members_default(tmp_path):
    config = local_config(tmp_path)
    alice = spawner_of(config, "alice", ["ocean-lab"])
    change(config, {"environments": [environment("a"), environment("b")]})
    defaults = [p["slug"] for p in await alice.visible_profiles() if p.get("default")]
    assert defaults == ["standard"]  # the community's configured default_profile
    change(config, {"environments": [environment("a"), environment("b", default=True)]})
    defaults = [p["slug"] for p in await alice.visible_profiles() if p.get("default")]
    assert defaults == ["ocean-lab--b"]
    bob = spawner_of(config, "bob", ["astro-101"])
    defaults = [p["slug"] for p in await bob.visible_profiles() if p.get("default")]
    assert defaults == ["standard"]


async def test_no_community_delegating_nothing_is_read(tmp_path):
    config = local_config(tmp_path, {"astro-101": {"display_name": "Astronomy 101"}})
    profiles = await spawner_of(config, "bob", ["astro-101"]).full_profile_list()
    assert slugs(profiles) == ["standard"]
    assert not (tmp_path / "hubext-state.sqlite").exists()


async def test_a_state_that_cannot_be_opened_leaves_the_configured_profiles(
    tmp_path, caplog
):
    config = local_config(tmp_path)
    config.Console.db_url = (
        "postgresql+psycopg://hubext:pw-Kq81Zx3@127.0.0.1:9/state?connect_timeout=2"
    )
    profiles = await spawner_of(config, "alice", ["ocean-lab"]).full_profile_list()
    assert slugs(profiles) == ["standard"]
    assert (
        "hubext: the delegated state at postgresql+psycopg://hubext:***@127.0.0.1:9/"
        "state?connect_timeout=2 cannot be opened: OperationalError"
    ) in caplog.text
    assert "pw-Kq81Zx3" not in caplog.text


def test_each_spawner_says_which_environments_it_runs():
    assert LocalCommunitySpawner.delegated_kind == "local"
    assert CommunityKubeSpawner.delegated_kind == "kube"
