"""Per-community Kubernetes identity: the service account of each pod.

A community's ``kubernetes.service_account`` (and ``admin_service_account``)
goes to the pods of the servers charged to it; everyone else gets the
spawner's configured ``service_account``. The pods are started for real by
``CommunityKubeSpawner`` on the in-memory Kubernetes API (see
tests/test_kube_spawn.py for what is real and what is faked), and every
manifest sent is checked with kubernetes-validate.
"""

from __future__ import annotations

import asyncio
import copy
import json

import kubernetes_validate
import pytest
from tornado import web

from hubext._validation import ConfigError
from hubext.cli import check_config, main
from hubext.communities import ROOT_PATH
from hubext.kube_identity import KubeIdentity, account_for, parse_kubernetes

from .spawner_objects import kube_spawner as make_spawner
from .test_check_config import write_config

K8S_VERSION = "1.30"
TIMEOUT = 15
BASE_IMAGE = "quay.io/jupyter/base-notebook:2024-12-02"

OCEAN = {
    "service_account": "ocean-lab-sa",
    "admin_service_account": "ocean-lab-curators",
}
ASTRO = {"service_account": "astro-101-sa"}
COMMUNITIES = {
    "ocean-lab": {"kubernetes": OCEAN},
    "astro-101": {"kubernetes": ASTRO},
    "geo-lab": {},  # names no account
}
#: every account a community names
COMMUNITY_ACCOUNTS = {"ocean-lab-sa", "ocean-lab-curators", "astro-101-sa"}

PROFILES = [
    {
        "display_name": "Small",
        "slug": "small",
        "kubespawner_override": {"image": BASE_IMAGE, "cpu_limit": 1},
    },
    {
        "display_name": "Ocean model",
        "slug": "ocean",
        "allowed_groups": ["ocean-lab"],
        "kubespawner_override": {"image": BASE_IMAGE, "mem_limit": "4G"},
    },
    {
        "display_name": "Astronomy workshop",
        "slug": "astro",
        "allowed_groups": ["astro-101"],
        "kubespawner_override": {"image": BASE_IMAGE},
    },
]


@pytest.fixture
def config(kube_spawner_config):
    config = kube_spawner_config(PROFILES, COMMUNITIES, on_cluster=True)
    config.JupyterHub.spawner_class = "hubext-kube"
    return config


def last_sent_pod(cluster, spawner) -> dict:
    """The last pod manifest this spawner POSTed, checked against the API's schema."""
    sent = [
        json.loads(r.body)
        for r in cluster.requests("create", "pods")
        if json.loads(r.body)["metadata"]["name"] == spawner.pod_name
    ]
    assert sent, "no pod was created"
    kubernetes_validate.validate(sent[-1], K8S_VERSION, strict=True)
    return sent[-1]


def identity(pod) -> tuple:
    """``(serviceAccountName, automountServiceAccountToken)`` of a pod (None: unset)."""
    spec = pod["spec"]
    return spec.get("serviceAccountName"), spec.get("automountServiceAccountToken")


async def start(cluster, spawner, options=None) -> dict:
    if options is not None:
        await spawner.apply_community_options(options)
    await asyncio.wait_for(spawner.start(), TIMEOUT)
    return last_sent_pod(cluster, spawner)


# -- which account each pod gets -------------------------------------------------------

#: case -> (groups, community-admin roles, hub admin, options, charged, account)
WHO_GETS_WHAT = {
    "member-of-ocean": (
        ["ocean-lab"], [], False, {"profile": "ocean"}, "ocean-lab", "ocean-lab-sa"
    ),
    "member-of-astro-common-profile": (
        ["astro-101"], [], False, {"profile": "small"}, "astro-101", "astro-101-sa"
    ),
    "member-of-both-charging-astro": (
        ["ocean-lab", "astro-101"], [], False,
        {"profile": "small", "community": "astro-101"}, "astro-101", "astro-101-sa",
    ),
    "member-of-both-charged-first": (
        ["ocean-lab", "astro-101"], [], False, {"profile": "small"},
        "ocean-lab", "ocean-lab-sa",
    ),
    "member-of-both-astro-profile": (
        ["ocean-lab", "astro-101"], [], False, {"profile": "astro"},
        "astro-101", "astro-101-sa",
    ),
    "admin-of-ocean": (
        ["ocean-lab"], ["ocean-lab"], False, {"profile": "ocean"},
        "ocean-lab", "ocean-lab-curators",
    ),
    "admin-of-astro-which-has-no-admin-account": (
        ["astro-101"], ["astro-101"], False, {"profile": "astro"},
        "astro-101", "astro-101-sa",
    ),
    "admin-of-ocean-charging-astro": (
        ["ocean-lab", "astro-101"], ["ocean-lab"], False,
        {"profile": "small", "community": "astro-101"}, "astro-101", "astro-101-sa",
    ),
    "member-of-community-without-account": (
        ["geo-lab"], [], False, {"profile": "small"}, "geo-lab", None
    ),
    "hub-admin-using-ocean-profile": ([], [], True, {"profile": "ocean"}, None, None),
    "hub-admin-of-astro-using-ocean-profile": (
        ["astro-101"], ["astro-101"], True, {"profile": "ocean"}, None, None
    ),
}  # fmt: skip


def expected_identity(account) -> tuple:
    if account is None:
        # the spawner's own (none configured): KubeSpawner mounts no token
        return (None, False)
    # KubeSpawner leaves automount unset with an account: the token is mounted
    return (account, None)


async def test_each_pod_runs_as_its_charged_communitys_account(cluster, config):
    # one user per case, all started at once on one API server
    spawners = {
        case: make_spawner(config, f"u{i}", groups, admin_of=admin_of, admin=admin)
        for i, (case, (groups, admin_of, admin, *_)) in enumerate(WHO_GETS_WHAT.items())
    }

    pods = await asyncio.gather(
        *(start(cluster, spawners[case], row[3]) for case, row in WHO_GETS_WHAT.items())
    )

    got = {
        case: (spawners[case].user_options.get("community"), identity(pod))
        for case, pod in zip(WHO_GETS_WHAT, pods, strict=True)
    }
    assert got == {
        case: (charged, expected_identity(account))
        for case, (*_, charged, account) in WHO_GETS_WHAT.items()
    }


async def test_hub_wide_servers_get_the_configured_account(cluster, config):
    config.KubeSpawner.service_account = "singleuser"
    hub_admin = make_spawner(config, "root", [], admin=True)
    geo = make_spawner(config, "gus", ["geo-lab"])
    ocean = make_spawner(config, "ann", ["ocean-lab"])

    pods = await asyncio.gather(
        start(cluster, hub_admin, {"profile": "astro"}),
        start(cluster, geo, {"profile": "small"}),
        start(cluster, ocean, {"profile": "small"}),
    )

    assert [identity(p) for p in pods] == [
        ("singleuser", None),
        ("singleuser", None),
        ("ocean-lab-sa", None),
    ]


async def test_a_server_started_again_follows_its_new_charge(cluster, config):
    """JupyterHub keeps one spawner per server: the next start forgets the last account."""
    spawner = make_spawner(config, "ann", ["ocean-lab", "astro-101", "geo-lab"])
    accounts = []
    for charged in ("ocean-lab", "geo-lab", "astro-101"):
        pod = await start(cluster, spawner, {"profile": "small", "community": charged})
        accounts.append(identity(pod))
        await asyncio.wait_for(spawner.stop(), TIMEOUT)

    assert accounts == [
        ("ocean-lab-sa", None),
        (None, False),
        ("astro-101-sa", None),
    ]


async def test_automount_is_left_as_configured(cluster, config):
    config.KubeSpawner.automount_service_account_token = False
    spawner = make_spawner(config, "ann", ["ocean-lab"])

    pod = await start(cluster, spawner, {"profile": "ocean"})

    assert identity(pod) == ("ocean-lab-sa", False)


# -- a member of astro-101 never gets ocean-lab's account --------------------------------

REST_ATTEMPTS = [
    pytest.param(
        {"profile": "small", "community": "ocean-lab"}, 403, id="charge-ocean"
    ),
    pytest.param({"profile": "ocean"}, 403, id="ocean-profile"),
    pytest.param({"profile": "ocean", "community": "ocean-lab"}, 403, id="ocean-both"),
    pytest.param({"community": "ocean-lab"}, 403, id="charge-ocean-no-profile"),
    pytest.param({"profile": "small", "community": ["ocean-lab"]}, 400, id="list"),
    pytest.param(
        {"profile": "small", "service_account": "ocean-lab-sa"}, 400, id="account"
    ),
    pytest.param(
        {"profile": "small", "serviceAccountName": "ocean-lab-sa"}, 400, id="camel"
    ),
    pytest.param(
        {"profile": "small", "kubespawner_override": {"service_account": "x"}},
        400,
        id="override",
    ),
]


@pytest.mark.parametrize(("options", "status"), REST_ATTEMPTS)
async def test_rest_options_naming_another_community_are_refused(
    cluster, config, options, status
):
    spawner = make_spawner(config, "bo", ["astro-101"], admin_of=["astro-101"])

    with pytest.raises(web.HTTPError) as info:
        await spawner.apply_community_options(options)

    assert info.value.status_code == status
    assert cluster.requests("create", "pods") == []


async def ocean_account(spawner):
    """An async override callable that asks for ocean-lab's account."""
    await asyncio.sleep(0)
    return "ocean-lab-sa"


def dynamic_profiles(spawner):
    """A callable profile_list (not checked at start-up) whose overrides name accounts."""
    return [
        {
            "display_name": "Everyone",
            "slug": "any",
            "kubespawner_override": {
                "image": BASE_IMAGE,
                "service_account": "ocean-lab-sa",
            },
            "profile_options": {
                "account": {
                    "display_name": "Account",
                    "choices": {
                        "ocean": {
                            "display_name": "Ocean's",
                            "kubespawner_override": {"service_account": ocean_account},
                        },
                        "curators": {
                            "display_name": "Curators'",
                            "kubespawner_override": {
                                "service_account": "ocean-lab-curators"
                            },
                        },
                    },
                    "unlisted_choice": {
                        "enabled": True,
                        "display_name": "Other",
                        "validation_regex": r"[a-z0-9-]+",
                        "kubespawner_override": {"service_account": "{value}"},
                    },
                }
            },
        }
    ]


#: who starts a server -> (groups, hub admin, the account they must get)
OVERRIDE_USERS = {
    "astro-member": (["astro-101"], False, ("astro-101-sa", None)),
    "member-of-community-without-account": (["geo-lab"], False, (None, False)),
    "hub-admin": ([], True, (None, False)),
}
#: what they choose: each choice's override asks for an ocean-lab account
OVERRIDE_CHOICES = {
    "async-override": {"account": "ocean"},
    "choice-override": {"account": "curators"},
    "typed-account": {"account--unlisted-choice": "ocean-lab-sa"},
    "typed-admin-account": {"account--unlisted-choice": "ocean-lab-curators"},
}


async def test_profile_overrides_never_give_another_communitys_account(
    cluster, config, caplog
):
    config.KubeSpawner.profile_list = dynamic_profiles
    cases = [(who, what) for who in OVERRIDE_USERS for what in OVERRIDE_CHOICES]
    spawners = [
        make_spawner(
            config, f"u{i}", OVERRIDE_USERS[who][0], admin=OVERRIDE_USERS[who][1]
        )
        for i, (who, _) in enumerate(cases)
    ]

    pods = await asyncio.gather(
        *(
            start(cluster, spawner, {"profile": "any", **OVERRIDE_CHOICES[what]})
            for spawner, (_, what) in zip(spawners, cases, strict=True)
        )
    )

    got = {case: identity(pod) for case, pod in zip(cases, pods, strict=True)}
    assert got == {(who, what): OVERRIDE_USERS[who][2] for who, what in cases}
    replaced = [
        r
        for r in caplog.records
        if "(from a profile override or a hook) is replaced by" in r.getMessage()
    ]
    assert len(replaced) == len(cases)


async def test_options_that_skipped_validation_give_no_account(cluster, config):
    """A custom ``apply_user_options`` that skips hubext's: the charge is not trusted."""
    spawner = make_spawner(config, "bo", ["astro-101"])
    spawner.user_options = {"profile": "small", "community": "ocean-lab"}

    pod = await start(cluster, spawner)

    assert identity(pod) == (None, False)


# -- pure: who gets which account ---------------------------------------------------------


@pytest.mark.parametrize(
    ("charged", "member_of", "admin_of", "expected"),
    [
        ("ocean-lab", ["ocean-lab"], [], "ocean-lab-sa"),
        ("ocean-lab", ["ocean-lab"], ["ocean-lab"], "ocean-lab-curators"),
        ("ocean-lab", ["astro-101"], ["ocean-lab"], None),
        ("ocean-lab", [], [], None),
        ("astro-101", ["ocean-lab", "astro-101"], ["ocean-lab"], "astro-101-sa"),
        ("admins-only", ["admins-only"], [], None),
        ("admins-only", ["admins-only"], ["admins-only"], "curators"),
        (None, ["ocean-lab"], ["ocean-lab"], None),
        ("nope", ["nope"], [], None),
        (["ocean-lab"], ["ocean-lab"], [], None),
    ],
    ids=[
        "member",
        "admin",
        "admin-role-without-membership",
        "outsider",
        "admin-elsewhere",
        "admin-account-only-member",
        "admin-account-only-admin",
        "hub-wide",
        "unknown-community",
        "not-a-string",
    ],
)
def test_account_for(charged, member_of, admin_of, expected):
    registry = {
        "ocean-lab": {"kubernetes": KubeIdentity(**OCEAN)},
        "astro-101": {"kubernetes": KubeIdentity(**ASTRO)},
        "admins-only": {"kubernetes": KubeIdentity(admin_service_account="curators")},
    }

    assert account_for(registry, charged, member_of, admin_of) == expected


# -- start-up ---------------------------------------------------------------------------

PATH = "Communities.communities['ocean-lab'].kubernetes"
NAME_RULE = "must be a Kubernetes service account name (a DNS-1123 subdomain"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"service_account": "Ocean_Lab"}, f"{PATH}.service_account: {NAME_RULE}"),
        ({"service_account": "-ocean"}, f"{PATH}.service_account: {NAME_RULE}"),
        ({"service_account": "ocean."}, f"{PATH}.service_account: {NAME_RULE}"),
        ({"service_account": "ocean..lab"}, f"{PATH}.service_account: {NAME_RULE}"),
        ({"service_account": ""}, f"{PATH}.service_account: {NAME_RULE}"),
        ({"service_account": "{username}"}, f"{PATH}.service_account: {NAME_RULE}"),
        (
            {"admin_service_account": "a" * 254},
            f"{PATH}.admin_service_account: must be at most 253 characters, got 254",
        ),
        (
            {"service_account": 42},
            f"{PATH}.service_account: expected a string, got 42 (int)",
        ),
        (
            {"serviceAccount": "ocean-lab-sa"},
            f"{PATH}.serviceAccount: unknown key (did you mean 'service_account'?)",
        ),
        ("ocean-lab-sa", f"{PATH}: expected a mapping (dict), got 'ocean-lab-sa'"),
    ],
    ids=[
        "uppercase-underscore",
        "leading-dash",
        "trailing-dot",
        "empty-label",
        "empty",
        "template",
        "too-long",
        "not-a-string",
        "camel-case-key",
        "not-a-mapping",
    ],
)
def test_bad_accounts_stop_the_hub(config, value, message):
    config.Communities.communities["ocean-lab"]["kubernetes"] = value

    with pytest.raises(ConfigError) as info:
        check_config(config)

    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        {"service_account": "ocean-lab-sa"},
        {"admin_service_account": "ocean.lab.curators"},
        {"service_account": "a" * 253, "admin_service_account": "0"},
        {"service_account": None},
        {},
    ],
    ids=["member-account", "dotted-admin-account", "longest", "null", "empty"],
)
def test_good_accounts_are_accepted(config, value):
    config.Communities.communities["ocean-lab"]["kubernetes"] = value

    registry = check_config(config).registry

    accounts = {k: v for k, v in value.items() if v is not None}
    assert registry["ocean-lab"].get("kubernetes") == KubeIdentity(**accounts)


def test_every_bad_account_is_reported():
    with pytest.raises(ConfigError) as info:
        parse_kubernetes(
            {"service_account": "A", "admin_service_account": "B", "x": 1},
            ROOT_PATH["c"].attr("k"),
        )

    assert [e.path for e in info.value.errors] == [
        "Communities.communities['c'].k.x",
        "Communities.communities['c'].k.service_account",
        "Communities.communities['c'].k.admin_service_account",
    ]


OVERRIDE_PATHS = {
    "profile": "KubeSpawner.profile_list[0].kubespawner_override.service_account",
    "choice": "KubeSpawner.profile_list[1].profile_options['account'].choices"
    "['curators'].kubespawner_override.service_account",
    "unlisted": "KubeSpawner.profile_list[1].profile_options['account']"
    ".unlisted_choice.kubespawner_override.service_account",
}


def profiles_overriding_accounts():
    profiles = copy.deepcopy(PROFILES)
    profiles[0]["kubespawner_override"]["service_account"] = "ocean-lab-sa"
    profiles[1]["profile_options"] = dynamic_profiles(None)[0]["profile_options"]
    del profiles[1]["profile_options"]["account"]["choices"]["ocean"]
    return profiles


def test_profile_overrides_of_the_account_stop_the_hub(config):
    config.KubeSpawner.profile_list = profiles_overriding_accounts()

    with pytest.raises(ConfigError) as info:
        check_config(config)

    assert [e.path for e in info.value.errors] == list(OVERRIDE_PATHS.values())
    assert (
        "cannot be overridden by a profile while communities name service accounts"
        in (info.value.reason)
    )


def test_profile_overrides_of_the_account_are_kubespawners_without_community_accounts(
    config,
):
    config.Communities.communities = {"ocean-lab": {}, "astro-101": {"kubernetes": {}}}
    config.KubeSpawner.profile_list = profiles_overriding_accounts()

    check_config(config)


@pytest.mark.parametrize(
    ("section", "account", "community"),
    [
        ("KubeSpawner", "ocean-lab-sa", "ocean-lab"),
        ("CommunityKubeSpawner", "ocean-lab-curators", "ocean-lab"),
        ("KubeSpawner", "astro-101-sa", "astro-101"),
    ],
    ids=["member-account", "admin-account-on-subclass", "other-community"],
)
def test_a_community_account_as_everyones_stops_the_hub(
    config, section, account, community
):
    config[section].service_account = account

    with pytest.raises(ConfigError) as info:
        check_config(config)

    assert str(info.value) == (
        f"{section}.service_account: {account!r} is an account of the community "
        f"{community} (Communities.communities[{community!r}].kubernetes): it would "
        "be given to people outside it"
    )


def test_hubext_local_refuses_accounts(tmp_path, capsys):
    path = write_config(
        tmp_path,
        'c.Communities.communities["ocean-lab"]["kubernetes"] = '
        '{"service_account": "ocean-lab-sa"}',
        'c.Communities.communities["astro-101"]["kubernetes"] = {}',
    )

    assert main(["check-config", str(path)]) == 1

    assert capsys.readouterr().err.splitlines() == [
        f"hubext: invalid configuration: Communities.communities['{slug}'].kubernetes: "
        "has no meaning on hubext-local (LocalCommunitySpawner): its servers are local "
        "processes, not pods with a Kubernetes service account; remove it, or use "
        "hubext-kube (CommunityKubeSpawner)"
        for slug in ("ocean-lab", "astro-101")
    ] + ["hubext: 2 configuration errors"]
