"""hubext-kube: shared folders, homes on shared storage and community variables.

Everything is real hubext and KubeSpawner code: the spawner is built as in
test_profiles_kube.py (a dummy kubeconfig, plain hub user and hub objects),
goes through ``apply_community_options`` and ``load_user_options`` (where the
storage is merged in, after the profile's overrides) and builds its pod with
``get_pod_manifest``; every manifest is checked against the Kubernetes schema
with kubernetes-validate (strict).

The ``hubext-prepare-folders`` init container's shell script is run for real
on a temporary directory, as root, with exactly the user, group,
capabilities and no-new-privileges flag its securityContext asks for (through
util-linux's ``setpriv``), so that what the kernel allows the container is
what the test sees.

The last tests start and stop a server on the in-memory Kubernetes API of
tests/kube (see test_kube_spawn.py).
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
from traitlets import TraitError

from hubext import Communities
from hubext._validation import ConfigError
from hubext.slugs import safe_slug
from hubext.spawners.kube import CommunityKubeSpawner

from .golden_kit import golden
from .kube import NAMESPACE, as_sent, pod_container
from .spawner_objects import kube_spawner as make_spawner
from .spawner_objects import pod_manifest
from .test_kube_spawn import sent_pod

K8S_VERSION = "1.30"
TIMEOUT = 15

IMAGE = "quay.io/jupyter/base-notebook:2024-12-02"
PREPARE = "hubext-prepare-folders"
PREPARE_ROOT = "/hubext-prepare"
HOME = "/home/jovyan"
SHARED = f"{HOME}/shared"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

# -- the registry --------------------------------------------------------------------

#: A community slug and two folder names at the 63-character limit; the two
#: names differ only in their last character.
LONG = ("deep-sea-observatory-" * 4)[:62] + "z"
LONG_1 = "f" * 62 + "1"
LONG_2 = "f" * 62 + "2"

DATASETS = f"{SHARED}/ocean-lab/datasets"
BOARD = f"{SHARED}/ocean-lab/board"
WORKSHOP = f"{SHARED}/ocean-lab/workshop"
SKY = f"{SHARED}/astro-101/sky"
NOTES = f"{SHARED}/astro-101/notes"
PAPERS = f"{SHARED}/archive/papers"
LONG_ONE = f"{SHARED}/long/one"
LONG_TWO = f"{SHARED}/long/two"
# "a-b" / "c" and "a" / "b-c": the same readable part of their volume names
AB_C = f"{SHARED}/a-b/c"
A_BC = f"{SHARED}/a/b-c"


def folder(name, mount_path, source, **access) -> dict:
    return {"name": name, "mount_path": mount_path, "source": source, **access}


def nfs(path, sub_path=None) -> dict:
    source = {"server": "nfs.example.org", "path": path}
    if sub_path is not None:
        source["sub_path"] = sub_path
    return {"nfs": source}


COMMUNITIES = {
    "ocean-lab": {
        "environment": {"OCEAN_BUCKET": "s3://ocean-lab", "PROJECT": "ocean-lab"},
        "shared_data": [
            folder("datasets", DATASETS, nfs("/export/ocean-lab", "datasets")),
            folder("board", BOARD, {"pvc": {"claim": "ocean-board"}}, members="none"),
            folder(
                "workshop",
                WORKSHOP,
                {"host_path": "/srv/shared/ocean-lab/workshop"},
                members="read-write",
            ),
        ],
    },
    "astro-101": {
        "environment": {"PROJECT": "astro-101", "SKY_SURVEY": "gaia"},
        "shared_data": [
            folder(
                "sky",
                SKY,
                {"pvc": {"claim": "astro", "sub_path": "surveys/sky"}},
                admins="read-only",
            ),
            # an admin who is a member gets the more generous access
            folder(
                "notes",
                NOTES,
                nfs("/export/astro-101", "notes"),
                members="read-write",
                admins="none",
            ),
        ],
    },
    "archive": {
        "shared_data": [folder("papers", PAPERS, {"pvc": {"claim": "archive"}})],
    },
    LONG: {
        "shared_data": [
            folder(LONG_1, LONG_ONE, nfs("/export/long", "one")),
            folder(LONG_2, LONG_TWO, nfs("/export/long", "two")),
        ],
    },
    "a-b": {"shared_data": [folder("c", AB_C, nfs("/export/a-b/c"))]},
    "a": {"shared_data": [folder("b-c", A_BC, nfs("/export/a/b-c"))]},
    "quiet": {},
}
#: What an admin of every community who is a member of none gets: all but NOTES.
ADMIN_FOLDERS = [
    DATASETS,
    BOARD,
    WORKSHOP,
    SKY,
    PAPERS,
    LONG_ONE,
    LONG_TWO,
    AB_C,
    A_BC,
]

PROFILES = [
    {
        "display_name": "Default",
        "slug": "default",
        "kubespawner_override": {"image": IMAGE},
    }
]

HOME_NFS = nfs("/export", "homes")


# -- building spawners and pods ------------------------------------------------------


@pytest.fixture
def config(kube_spawner_config):
    return kube_spawner_config(PROFILES, COMMUNITIES, uid=1000, gid=100)


async def manifest_of(spawner, options=None) -> dict:
    """The spawner's pod (:func:`pod_manifest`), checked against the schema
    and for what the schema does not check."""
    manifest = await pod_manifest(spawner, options)
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    check_volume_names(manifest)
    return manifest


async def pod_for(config, name="ann", groups=(), admin_of=(), options=None) -> dict:
    return await manifest_of(make_spawner(config, name, groups, admin_of), options)


def check_volume_names(pod: dict) -> None:
    """What the schema does not check: names are DNS-1123 labels, unique and used."""
    spec = pod["spec"]
    names = [v["name"] for v in spec.get("volumes") or []]
    assert len(names) == len(set(names)), names
    for name in names:
        assert len(name) <= 63 and DNS_LABEL.fullmatch(name), name
    for container in [*spec["containers"], *(spec.get("initContainers") or [])]:
        assert DNS_LABEL.fullmatch(container["name"]), container["name"]
        mounted = [m["name"] for m in container.get("volumeMounts") or []]
        assert set(mounted) <= set(names), (container["name"], mounted, names)
        paths = [m["mountPath"] for m in container.get("volumeMounts") or []]
        assert len(paths) == len(set(paths)), paths


def hubext_mounts(pod: dict) -> dict[str, dict]:
    """The notebook container's hubext mounts, by mount path."""
    return {
        m["mountPath"]: m
        for m in pod_container(pod).get("volumeMounts") or []
        if m["name"].startswith("hubext-")
    }


def volumes(pod: dict) -> dict[str, dict]:
    return {v["name"]: v for v in pod["spec"].get("volumes") or []}


def init_containers(pod: dict) -> dict[str, dict]:
    return {c["name"]: c for c in pod["spec"].get("initContainers") or []}


def prepare_args(container: dict) -> tuple[str, list[tuple[str, str]]]:
    """``(owner, [(mode, path), ...])`` of the prepare container's command."""
    command = container["command"]
    assert command[:2] == ["sh", "-c"]
    assert command[3] == PREPARE  # $0
    owner, rest = command[4], command[5:]
    assert len(rest) % 2 == 0, rest
    return owner, list(zip(rest[::2], rest[1::2], strict=True))


def env(container) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


# -- 1. which folders, with which access -------------------------------------------

RO, RW = True, False
ADMIN_OF_ALL = [s for s in COMMUNITIES if s != "quiet"]

ACCESS_CASES = [
    # (id, groups, admin of, {mount path: read-only})
    ("ocean-member", ["ocean-lab"], [], {DATASETS: RO, WORKSHOP: RW}),
    (
        "ocean-admin",
        ["ocean-lab"],
        ["ocean-lab"],
        {DATASETS: RW, BOARD: RW, WORKSHOP: RW},
    ),
    (
        "ocean-admin-not-member",
        [],
        ["ocean-lab"],
        {DATASETS: RW, BOARD: RW, WORKSHOP: RW},
    ),
    (
        "member-of-two",
        ["ocean-lab", "astro-101"],
        [],
        {DATASETS: RO, WORKSHOP: RW, SKY: RO, NOTES: RW},
    ),
    (
        "admin-of-one-member-of-other",
        ["ocean-lab", "astro-101"],
        ["ocean-lab"],
        {DATASETS: RW, BOARD: RW, WORKSHOP: RW, SKY: RO, NOTES: RW},
    ),
    ("astro-member-and-admin", ["astro-101"], ["astro-101"], {SKY: RO, NOTES: RW}),
    ("non-member", ["quiet", "not-a-community"], [], {}),
    ("no-groups", [], [], {}),
    ("admin-role-of-unknown-community", [], ["gone"], {}),
    ("long-names", [LONG], [], {LONG_ONE: RO, LONG_TWO: RO}),
    ("look-alike-names", ["a-b", "a"], [], {AB_C: RO, A_BC: RO}),
    (
        "admin-of-all",
        [],
        ADMIN_OF_ALL,
        {path: path == SKY for path in ADMIN_FOLDERS},
    ),
]


@pytest.mark.parametrize(
    ("groups", "admin_of", "expected"),
    [case[1:] for case in ACCESS_CASES],
    ids=[case[0] for case in ACCESS_CASES],
)
async def test_folders_and_access_in_the_pod(config, groups, admin_of, expected):
    pod = await pod_for(config, "ann", groups, admin_of)

    mounts = hubext_mounts(pod)
    assert {path: "readOnly" in m for path, m in mounts.items()} == expected
    for mount in mounts.values():
        assert mount.get("readOnly", True) is True  # never readOnly: false
    # one volume per folder, each distinct
    hubext_volumes = {n for n in volumes(pod) if n.startswith("hubext-")}
    assert hubext_volumes == {m["name"] for m in mounts.values()}
    assert len(hubext_volumes) == len(expected)
    if not expected:
        assert PREPARE not in init_containers(pod)
    # the profile still applies
    assert pod_container(pod)["image"] == IMAGE


async def test_sources_become_volumes_and_sub_paths(config):
    pod = await pod_for(config, "ann", ["astro-101"], ADMIN_OF_ALL)
    mounts = hubext_mounts(pod)
    by_path = {path: volumes(pod)[m["name"]] for path, m in mounts.items()}

    assert by_path[DATASETS]["nfs"] == {
        "server": "nfs.example.org",
        "path": "/export/ocean-lab",
    }
    assert mounts[DATASETS]["subPath"] == "datasets"
    assert by_path[BOARD]["persistentVolumeClaim"] == {"claimName": "ocean-board"}
    assert "subPath" not in mounts[BOARD]
    # host_path: the parent is the volume, so the folder can be created in it
    assert by_path[WORKSHOP]["hostPath"] == {
        "path": "/srv/shared/ocean-lab",
        "type": "DirectoryOrCreate",
    }
    assert mounts[WORKSHOP]["subPath"] == "workshop"
    assert by_path[SKY]["persistentVolumeClaim"] == {"claimName": "astro"}
    assert mounts[SKY]["subPath"] == "surveys/sky"
    assert "subPath" not in mounts[AB_C]


async def test_long_and_look_alike_names_give_distinct_short_volume_names(config):
    pod = await pod_for(config, "ann", [], ADMIN_OF_ALL)
    names = [m["name"] for m in hubext_mounts(pod).values()]

    assert len(names) == len(ADMIN_FOLDERS) == len(set(names))
    for name in names:
        assert len(name) <= 63 and DNS_LABEL.fullmatch(name), name
    long_names = [hubext_mounts(pod)[p]["name"] for p in (LONG_ONE, LONG_TWO)]
    assert long_names[0] != long_names[1]
    assert hubext_mounts(pod)[AB_C]["name"] != hubext_mounts(pod)[A_BC]["name"]


async def test_volumes_are_the_same_whatever_the_order_of_groups(config):
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    groups = ["ocean-lab", "astro-101", LONG]
    pods = [
        await pod_for(config, "ann", order, ["astro-101"])
        for order in (groups, groups[::-1], groups)
    ]

    def storage(pod):
        return (
            pod["spec"]["volumes"],
            pod_container(pod)["volumeMounts"],
            pod["spec"]["initContainers"],
        )

    assert storage(pods[0]) == storage(pods[1]) == storage(pods[2])
    # folders are prepared in registry order: the home, then each community's
    mounts = hubext_mounts(pods[0])
    _, folders = prepare_args(init_containers(pods[0])[PREPARE])
    order = [HOME, DATASETS, WORKSHOP, SKY, NOTES, LONG_ONE, LONG_TWO]
    assert [path for _, path in folders] == [
        f"{PREPARE_ROOT}/{mounts[p]['name']}/{mounts[p]['subPath']}" for p in order
    ]


async def test_paths_with_braces_are_used_as_written(config):
    # Paths may contain any printable character. KubeSpawner expands
    # "{username}"-style templates in volumes, mounts and init containers:
    # hubext's paths must reach the pod as configured (or be refused when
    # the hub starts), never be expanded or fail at spawn time.
    config.Communities.communities = {
        "ocean-lab": {
            "shared_data": [
                folder(
                    "raw",
                    f"{SHARED}/{{raw}}",
                    nfs("/export/{x}", "runs/{2024}"),
                )
            ]
        }
    }
    try:
        CommunityKubeSpawner.check_hub_config(config, Communities(config=config))
    except ConfigError:
        return  # refused at start-up: fine
    pod = await pod_for(config, "ann", ["ocean-lab"])

    (mount,) = hubext_mounts(pod).values()
    assert mount["mountPath"] == f"{SHARED}/{{raw}}"
    assert mount["subPath"] == "runs/{2024}"
    assert volumes(pod)[mount["name"]]["nfs"]["path"] == "/export/{x}"
    _, folders = prepare_args(init_containers(pod)[PREPARE])
    assert folders == [("2775", f"{PREPARE_ROOT}/{mount['name']}/runs/{{2024}}")]


# -- 2. homes on shared storage ------------------------------------------------------

USERNAMES = [
    "alice",
    "Alice",
    "Alice@example.org",
    "alice@example.org",
    "a/../b",
    "\uff41\uff4c\uff49\uff43\uff45",  # "alice" in fullwidth letters
    "x" * 300,
    "x" * 301,
    "..",
    ".",
    "-alice-",
]
USERNAME_IDS = [
    "alice",
    "Alice",
    "email",
    "email-lowercase",
    "dot-dot-inside",
    "fullwidth",
    "300-chars",
    "301-chars",
    "dot-dot",
    "dot",
    "hyphens",
]
HOME_SOURCES = [
    # (id, home_storage, volume source, sub path prefix)
    (
        "nfs",
        HOME_NFS,
        {"nfs": {"server": "nfs.example.org", "path": "/export"}},
        "homes/",
    ),
    (
        "pvc",
        {"pvc": {"claim": "homes"}},
        {"persistentVolumeClaim": {"claimName": "homes"}},
        "",
    ),
    (
        "pvc-sub-path",
        {"pvc": {"claim": "homes", "sub_path": "hub/homes"}},
        {"persistentVolumeClaim": {"claimName": "homes"}},
        "hub/homes/",
    ),
    (
        "host-path",
        {"host_path": "/srv/homes"},
        {"hostPath": {"path": "/srv", "type": "DirectoryOrCreate"}},
        "homes/",
    ),
]


def check_home_sub_path(sub_path: str, prefix: str, username: str) -> None:
    assert not sub_path.startswith("/")
    assert ".." not in sub_path.split("/")
    assert "" not in sub_path.split("/")
    assert sub_path.startswith(prefix)
    slug = sub_path[len(prefix) :]
    assert slug == safe_slug(username)
    assert len(slug) <= 63 and DNS_LABEL.fullmatch(slug), slug


@pytest.mark.parametrize(
    ("home_storage", "volume_source", "prefix"),
    [case[1:] for case in HOME_SOURCES],
    ids=[case[0] for case in HOME_SOURCES],
)
@pytest.mark.parametrize("username", USERNAMES, ids=USERNAME_IDS)
async def test_home_is_the_users_own_folder(
    config, home_storage, volume_source, prefix, username
):
    config.CommunityKubeSpawner.home_storage = home_storage
    pod = await pod_for(config, username, [])

    (mount,) = hubext_mounts(pod).values()
    assert mount["name"] == "hubext-home"
    assert mount["mountPath"] == HOME
    assert "readOnly" not in mount
    check_home_sub_path(mount["subPath"], prefix, username)
    if username == "alice":
        assert mount["subPath"] == f"{prefix}alice"  # readable when already safe
    volume = dict(volumes(pod)["hubext-home"])
    assert volume.pop("name") == "hubext-home"
    assert volume == volume_source
    # the init container creates exactly that folder, private to the user
    _, folders = prepare_args(init_containers(pod)[PREPARE])
    assert folders == [("700", f"{PREPARE_ROOT}/hubext-home/{mount['subPath']}")]


@pytest.mark.parametrize(
    "home_storage",
    [case[1] for case in HOME_SOURCES],
    ids=[case[0] for case in HOME_SOURCES],
)
async def test_homes_of_different_users_are_different_folders(config, home_storage):
    config.CommunityKubeSpawner.home_storage = home_storage
    sub_paths = []
    for username in USERNAMES:
        pod = await pod_for(config, username, [])
        sub_paths.append(hubext_mounts(pod)[HOME]["subPath"])
    assert len(set(sub_paths)) == len(USERNAMES), sub_paths


async def test_home_mount_path_is_configurable(config):
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    config.CommunityKubeSpawner.home_mount_path = "/home/user"
    pod = await pod_for(config, "alice", [])
    assert hubext_mounts(pod)["/home/user"]["subPath"] == "homes/alice"


# -- 3. the init container ---------------------------------------------------------

INIT_CASES = [
    # (id, home storage, groups, admin of, init container expected)
    ("nobody", {}, [], [], False),
    ("nfs-without-sub-path", {}, ["a-b", "a"], [], False),
    ("pvc-without-sub-path", {}, ["archive"], [], False),
    ("nfs-with-sub-path", {}, [LONG], [], True),
    ("pvc-with-sub-path", {}, ["astro-101"], [], True),
    ("nfs-and-host-path", {}, ["ocean-lab"], [], True),
    ("home-only", HOME_NFS, [], [], True),
    ("home-and-folders-without-sub-path", HOME_NFS, ["a-b", "archive"], [], True),
    ("home-and-folders", HOME_NFS, ["ocean-lab"], ADMIN_OF_ALL, True),
]


@pytest.mark.parametrize(
    ("home_storage", "groups", "admin_of", "present"),
    [case[1:] for case in INIT_CASES],
    ids=[case[0] for case in INIT_CASES],
)
async def test_init_container_prepares_exactly_the_sub_paths(
    config, home_storage, groups, admin_of, present
):
    config.CommunityKubeSpawner.home_storage = home_storage
    pod = await pod_for(config, "ann", groups, admin_of)

    inits = init_containers(pod)
    assert (PREPARE in inits) is present
    if not present:
        return
    init = inits[PREPARE]
    owner, folders = prepare_args(init)
    assert owner == "1000:100"
    expected = [
        (
            "700" if m["name"] == "hubext-home" else "2775",
            f"{PREPARE_ROOT}/{m['name']}/{m['subPath']}",
        )
        for m in hubext_mounts(pod).values()
        if m.get("subPath")
    ]
    assert sorted(folders) == sorted(expected)
    # it sees the volumes it prepares, writable, and nothing else
    prepared = dict.fromkeys(path.split("/")[2] for _, path in folders)
    assert init["volumeMounts"] == [
        {"name": name, "mountPath": f"{PREPARE_ROOT}/{name}"} for name in prepared
    ]


async def test_servers_run_with_no_privilege_escalation(config):
    """As hubext-local's PR_SET_NO_NEW_PRIVS: a setgid program kept in a home
    (made while a member) gives no group back once the person is removed."""
    for groups in (["ocean-lab"], ["quiet"]):
        pod = await pod_for(config, "ann", groups)
        security = pod_container(pod)["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, security


async def test_init_container_is_root_with_three_capabilities_only(config):
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    pod = await pod_for(config, "ann", ["ocean-lab"])
    bystander = await pod_for(config, "bo", ["quiet"])

    security = init_containers(pod)[PREPARE]["securityContext"]
    assert security == {
        "runAsUser": 0,
        "runAsGroup": 0,
        "runAsNonRoot": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {
            "drop": ["ALL"],
            "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER"],
        },
    }
    # the server itself is left as configured: not root
    notebook = pod_container(pod)["securityContext"]
    assert notebook == pod_container(bystander)["securityContext"]
    assert notebook["runAsUser"] == 1000
    assert notebook.get("privileged") in (None, False)
    assert pod["spec"].get("securityContext") == bystander["spec"].get(
        "securityContext"
    )


IMAGE_CASES = [
    # (id, configuration, options, expected image, expected pull policy)
    ("server-image", {}, {}, IMAGE, None),
    (
        "own-image",
        {"prepare_folders_image": "docker.io/library/busybox:1.36"},
        {},
        "docker.io/library/busybox:1.36",
        None,
    ),
    (
        "pull-policy-follows",
        {"image_pull_policy": "Always"},
        {},
        IMAGE,
        "Always",
    ),
    (
        "profile-option-image",
        {},
        {"profile": "options", "image": "scipy"},
        "quay.io/jupyter/scipy-notebook:2024-12-02",
        None,
    ),
    (
        "unlisted-image",
        {},
        {"profile": "options", "image--unlisted-choice": "quay.io/x/y:1"},
        "quay.io/x/y:1",
        None,
    ),
]


@pytest.mark.parametrize(
    ("settings", "options", "image", "pull_policy"),
    [case[1:] for case in IMAGE_CASES],
    ids=[case[0] for case in IMAGE_CASES],
)
async def test_init_container_image(config, settings, options, image, pull_policy):
    config.KubeSpawner.profile_list.append(
        {
            "display_name": "With options",
            "slug": "options",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "scipy": {
                            "display_name": "SciPy",
                            "kubespawner_override": {
                                "image": "quay.io/jupyter/scipy-notebook:2024-12-02"
                            },
                        }
                    },
                    "unlisted_choice": {
                        "enabled": True,
                        "display_name": "Image",
                        "validation_regex": r"[a-z0-9./-]+:[a-z0-9._-]+",
                        "kubespawner_override": {"image": "{value}"},
                    },
                }
            },
        }
    )
    for name, value in settings.items():
        config.CommunityKubeSpawner[name] = value
    pod = await pod_for(config, "ann", ["ocean-lab"], options=options)

    init = init_containers(pod)[PREPARE]
    assert init["image"] == image
    assert init.get("imagePullPolicy") == pull_policy


async def test_folder_owner_is_configurable(config):
    config.CommunityKubeSpawner.folder_owner = "1001:2002"
    pod = await pod_for(config, "ann", ["ocean-lab"])
    owner, _ = prepare_args(init_containers(pod)[PREPARE])
    assert owner == "1001:2002"


#: Every kind of source, with and without a sub path, read-only and
#: read-write, hashed long names and a home: an admin of every community who
#: is a member of two.
GOLDEN_USER = ("ann", ["ocean-lab", "astro-101"], ADMIN_OF_ALL)


async def test_pod_storage_equals_its_golden_file(config):
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    spawner = make_spawner(config, *GOLDEN_USER)
    storage = spawner.pod_storage()
    actual = {
        "volumes": storage.volumes,
        "volume_mounts": storage.volume_mounts,
        "folders": [list(f) for f in storage.folders],
    }

    assert actual == golden("pod_storage", actual)
    # and the pod has them, merged with KubeSpawner's own
    pod = await manifest_of(spawner)
    assert {n: v for n, v in volumes(pod).items() if n.startswith("hubext-")} == (
        storage.volumes
    )
    mounts = {m["name"]: m for m in hubext_mounts(pod).values()}
    assert mounts == storage.volume_mounts


async def test_prepare_container_equals_its_golden_file(config):
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    pod = await pod_for(config, *GOLDEN_USER)
    init = init_containers(pod)[PREPARE]

    assert init == golden("prepare_folders_container", init)


def run_as_container(command: list[str], pod: dict, container: dict):
    """Run ``command`` with the user, groups and capabilities the container gets.

    Kubernetes gives a container's processes the container's runAsUser and
    runAsGroup, the pod's fsGroup and supplementalGroups as supplementary
    groups, the added capabilities only (after ``drop: [ALL]``), and
    no_new_privs when ``allowPrivilegeEscalation`` is false. util-linux's
    ``setpriv`` sets exactly these before exec'ing the command.
    """
    assert os.geteuid() == 0, (
        "this test runs the init container's script as root (as CI does), "
        "to create folders owned by another user: run the tests as root"
    )
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to run as the init container"
    security = container["securityContext"]
    pod_security = pod["spec"].get("securityContext") or {}
    groups = [pod_security["fsGroup"]] if "fsGroup" in pod_security else []
    groups += pod_security.get("supplementalGroups") or []
    capabilities = security["capabilities"]
    assert capabilities["drop"] == ["ALL"]
    argv = [
        setpriv,
        f"--reuid={security['runAsUser']}",
        f"--regid={security['runAsGroup']}",
        f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all" + "".join(f",+{c.lower()}" for c in capabilities["add"]),
    ]
    if security["allowPrivilegeEscalation"] is False:
        argv.append("--no-new-privs")
    return subprocess.run(
        [*argv, "--", *command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    "fs_gid",
    [None, 100],
    ids=["no-fs-group", "fs-group-100"],
)
async def test_init_container_script_creates_missing_folders_only(
    config, tmp_path, fs_gid
):
    # KubeSpawner's default has no fsGroup; z2jh sets singleuser.fsGid: 100.
    config.KubeSpawner.fs_gid = fs_gid
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    # "Ocean Data" has a space: the script must quote its paths
    config.Communities.communities["ocean-lab"]["shared_data"][0]["source"] = nfs(
        "/export/ocean-lab", "Ocean Data/2024"
    )
    pod = await pod_for(config, "Alice@example.org", ["ocean-lab", "astro-101"])
    init = init_containers(pod)[PREPARE]
    mounts = hubext_mounts(pod)
    root = tmp_path / "volumes"

    # Each volume the init container mounts exists (the kubelet mounts it);
    # the folders inside may or may not.
    for volume_mount in init["volumeMounts"]:
        (root / volume_mount["name"]).mkdir(parents=True)

    def on_disk(mount_path: str) -> Path:
        mount = mounts[mount_path]
        return root / mount["name"] / mount["subPath"]

    existing = on_disk(DATASETS)
    existing.mkdir(parents=True)
    (existing / "results.csv").write_text("depth,temperature\n10,4.2\n")
    os.chown(existing, 1234, 5678)
    existing.chmod(0o750)

    command = [
        str(root) + arg[len(PREPARE_ROOT) :]
        if arg.startswith(PREPARE_ROOT + "/")
        else arg
        for arg in init["command"]
    ]
    assert command[2] == init["command"][2]  # the script itself is unchanged

    result = run_as_container(command, pod, init)
    assert result.returncode == 0, result.stderr

    def state(path: Path):
        info = path.stat()
        return info.st_uid, info.st_gid, oct(info.st_mode & 0o7777)

    created = {
        HOME: (1000, 100, oct(0o700)),
        WORKSHOP: (1000, 100, oct(0o2775)),
        SKY: (1000, 100, oct(0o2775)),
        NOTES: (1000, 100, oct(0o2775)),
    }
    assert {p: state(on_disk(p)) for p in created} == created
    assert state(existing) == (1234, 5678, oct(0o750))
    assert [p.name for p in existing.iterdir()] == ["results.csv"]
    assert (existing / "results.csv").read_text() == "depth,temperature\n10,4.2\n"
    assert sorted(result.stdout.splitlines()) == sorted(
        f"hubext: created {on_disk(p)}" for p in created
    )

    # a second start changes nothing
    again = run_as_container(command, pod, init)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert {p: state(on_disk(p)) for p in created} == created
    assert state(existing) == (1234, 5678, oct(0o750))


# -- 4. the profile's own volumes are kept ------------------------------------------

SCRATCH_VOLUME = {"name": "scratch", "emptyDir": {}}
SCRATCH_MOUNT = {"name": "scratch", "mountPath": "/scratch"}
CACHE_VOLUME = {"name": "cache", "emptyDir": {"medium": "Memory"}}
CACHE_MOUNT = {"name": "cache", "mountPath": "/cache"}
WARM_UP = {"name": "warm-up", "image": "docker.io/library/busybox:1.36"}

MERGE_CASES = [
    # (id, c.KubeSpawner settings, profile override, expected own volumes)
    (
        "profile-list-form",
        {},
        {
            "volumes": [SCRATCH_VOLUME],
            "volume_mounts": [SCRATCH_MOUNT],
            "init_containers": [WARM_UP],
        },
        {"scratch"},
    ),
    (
        "profile-dict-form",
        {},
        {
            "volumes": {"scratch": SCRATCH_VOLUME},
            "volume_mounts": {"scratch": SCRATCH_MOUNT},
            "init_containers": {"warm-up": WARM_UP},
        },
        {"scratch"},
    ),
    (
        "admin-list-form",
        {
            "volumes": [SCRATCH_VOLUME],
            "volume_mounts": [SCRATCH_MOUNT],
            "init_containers": [WARM_UP],
        },
        {},
        {"scratch"},
    ),
    (
        "admin-and-profile-dict-form",
        {
            "volumes": {"scratch": SCRATCH_VOLUME},
            "volume_mounts": {"scratch": SCRATCH_MOUNT},
            "init_containers": {"warm-up": WARM_UP},
        },
        {"volumes": {"cache": CACHE_VOLUME}, "volume_mounts": {"cache": CACHE_MOUNT}},
        {"scratch", "cache"},
    ),
]


@pytest.mark.parametrize(
    ("settings", "override", "own"),
    [case[1:] for case in MERGE_CASES],
    ids=[case[0] for case in MERGE_CASES],
)
async def test_profile_and_admin_volumes_are_kept(config, settings, override, own):
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    config.KubeSpawner.profile_list[0]["kubespawner_override"].update(
        copy.deepcopy(override)
    )
    for name, value in settings.items():
        config.KubeSpawner[name] = copy.deepcopy(value)
    configured = copy.deepcopy(dict(config.KubeSpawner))

    pod = await pod_for(config, "ann", ["ocean-lab"])

    own_volumes = {n for n in volumes(pod) if not n.startswith("hubext-")}
    assert own_volumes == own
    mounts = {m["name"]: m for m in pod_container(pod)["volumeMounts"]}
    assert {n for n in mounts if not n.startswith("hubext-")} == own
    assert mounts["scratch"]["mountPath"] == "/scratch"
    assert set(hubext_mounts(pod)) == {HOME, DATASETS, WORKSHOP}
    assert set(init_containers(pod)) == {"warm-up", PREPARE}
    # the configuration is not changed by a spawn ...
    assert dict(config.KubeSpawner) == configured
    # ... and the next user does not get the first one's storage
    other = await pod_for(config, "bo", ["quiet"])
    assert set(hubext_mounts(other)) == {HOME}
    assert hubext_mounts(other)[HOME]["subPath"] == "homes/bo"
    assert {n for n in volumes(other) if not n.startswith("hubext-")} == own


# -- 5. PVCs are kept -----------------------------------------------------------------

DELETE_PVC_CASES = [
    # (id, configuration section, value, expected)
    ("default", None, None, False),
    ("CommunityKubeSpawner", "CommunityKubeSpawner", True, True),
    ("KubeSpawner", "KubeSpawner", True, True),
    ("explicitly-false", "CommunityKubeSpawner", False, False),
]


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [case[1:] for case in DELETE_PVC_CASES],
    ids=[case[0] for case in DELETE_PVC_CASES],
)
async def test_delete_pvc(config, section, value, expected):
    if section:
        config[section].delete_pvc = value
    assert make_spawner(config).delete_pvc is expected


# -- 6. community variables -----------------------------------------------------------

ENV_CASES = [
    # (id, groups, expected community variables)
    (
        "ocean",
        ["ocean-lab"],
        {"OCEAN_BUCKET": "s3://ocean-lab", "PROJECT": "ocean-lab"},
    ),
    ("astro", ["astro-101"], {"PROJECT": "astro-101", "SKY_SURVEY": "gaia"}),
    (
        "both-first-in-registry-wins",
        ["astro-101", "ocean-lab"],
        {
            "OCEAN_BUCKET": "s3://ocean-lab",
            "PROJECT": "ocean-lab",
            "SKY_SURVEY": "gaia",
        },
    ),
    ("non-member", ["quiet", "not-a-community"], {}),
]
COMMUNITY_VARIABLES = {"OCEAN_BUCKET", "PROJECT", "SKY_SURVEY"}


@pytest.mark.parametrize(
    ("groups", "expected"),
    [case[1:] for case in ENV_CASES],
    ids=[case[0] for case in ENV_CASES],
)
async def test_community_environment(config, groups, expected):
    pod = await pod_for(config, "ann", groups)
    variables = env(pod_container(pod))
    assert {k: v for k, v in variables.items() if k in COMMUNITY_VARIABLES} == expected
    assert variables["JUPYTERHUB_USER"] == "ann"  # JupyterHub's own are kept


# -- 7. start-up checks ---------------------------------------------------------------


def checked(config) -> None:
    CommunityKubeSpawner.check_hub_config(config, Communities(config=config))


HOME_CHECK_CASES = [
    # (id, configured home_mount_path, bad mount path, its community, its index)
    ("on-the-home", None, HOME, "ocean-lab", 0),
    ("above-the-home", None, "/home", "ocean-lab", 0),
    ("second-entry", None, HOME, "ocean-lab", 1),
    ("other-community", None, "/home", "astro-101", 0),
    ("on-a-configured-home", "/home/user", "/home/user", "ocean-lab", 0),
    ("above-a-configured-home", "/data/homes/me", "/data", "ocean-lab", 0),
]


@pytest.mark.parametrize(
    ("home", "mount_path", "slug", "index"),
    [case[1:] for case in HOME_CHECK_CASES],
    ids=[case[0] for case in HOME_CHECK_CASES],
)
def test_folder_on_or_above_the_home_is_refused(config, home, mount_path, slug, index):
    entries = [folder("ok", "/mnt/ok", nfs("/export/ok"))] if index else []
    entries.append(folder("bad", mount_path, nfs("/export/bad")))
    config.Communities.communities = {
        "ocean-lab": {},
        "astro-101": {},
        slug: {"shared_data": entries},
    }
    if home:
        config.CommunityKubeSpawner.home_mount_path = home

    with pytest.raises(ConfigError) as info:
        checked(config)

    assert info.value.path == (
        f"Communities.communities[{slug!r}].shared_data[{index}].mount_path"
    )
    assert "CommunityKubeSpawner.home_mount_path" in info.value.reason


@pytest.mark.parametrize(
    "mount_path",
    [f"{HOME}/shared/x", f"{HOME}-data", "/data", "/home/other"],
    ids=["inside", "beside", "elsewhere", "another-home"],
)
def test_folder_inside_or_beside_the_home_is_accepted(config, mount_path):
    config.Communities.communities = {
        "ocean-lab": {"shared_data": [folder("x", mount_path, nfs("/export/x"))]}
    }
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    checked(config)


def test_the_test_registry_passes_the_checks(config):
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    checked(config)


BAD_HOME_STORAGE = [
    # (id, home_storage, key path of the error)
    ("no-nfs-path", {"nfs": {"server": "nfs.example.org"}}, ".nfs"),
    ("unknown-kind", {"s3": {"bucket": "homes"}}, ".s3"),
    ("two-kinds", {**HOME_NFS, "pvc": {"claim": "homes"}}, ""),
    ("bad-claim", {"pvc": {"claim": "Homes!"}}, ".pvc.claim"),
    ("escaping-sub-path", nfs("/export", "../etc"), ".nfs.sub_path"),
    ("absolute-sub-path", nfs("/export", "/homes"), ".nfs.sub_path"),
    ("relative-nfs-path", nfs("export"), ".nfs.path"),
    ("system-host-path", {"host_path": "/etc/homes"}, ".host_path"),
    ("not-a-mapping", "nfs.example.org:/export", ""),
]


@pytest.mark.parametrize(
    ("home_storage", "suffix"),
    [case[1:] for case in BAD_HOME_STORAGE],
    ids=[case[0] for case in BAD_HOME_STORAGE],
)
async def test_bad_home_storage_is_refused(config, home_storage, suffix):
    config.CommunityKubeSpawner.home_storage = home_storage

    with pytest.raises(ConfigError) as info:
        checked(config)
    assert info.value.path == f"CommunityKubeSpawner.home_storage{suffix}"
    # and by the spawner itself
    with pytest.raises(TraitError):
        make_spawner(config)


# -- 8. a real spawn on the in-memory Kubernetes API -------------------------------


@pytest.fixture
def spawn_config(kube_spawner_config):
    config = kube_spawner_config(
        PROFILES, COMMUNITIES, on_cluster=True, uid=1000, fs_gid=100
    )
    config.CommunityKubeSpawner.home_storage = {"pvc": {"claim": "hubext-homes"}}
    return config


async def create_pvc(cluster, name: str) -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "10Gi"}},
        },
    }
    path = f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims"
    async with cluster.api.post(path, json=pvc) as response:
        response.raise_for_status()


async def test_spawn_with_shared_folders_and_home(cluster, spawn_config):
    spawner = make_spawner(
        spawn_config, "Alice@example.org", ["ocean-lab"], admin_of=["astro-101"]
    )
    await create_pvc(cluster, "hubext-homes")
    await create_pvc(cluster, spawner.pvc_name)  # as z2jh's dynamic storage would
    await spawner.apply_community_options({})

    url = await asyncio.wait_for(spawner.start(), TIMEOUT)

    assert url == "http://127.0.0.1:8888"
    sent = sent_pod(cluster, spawner)
    kubernetes_validate.validate(sent, K8S_VERSION, strict=True)
    check_volume_names(sent)
    pod = cluster.objects("pods", NAMESPACE)[spawner.pod_name]
    assert as_sent(pod) == sent
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["status"]["phase"] == "Running"

    mounts = hubext_mounts(pod)
    assert {p: "readOnly" in m for p, m in mounts.items()} == {
        HOME: False,
        DATASETS: True,
        WORKSHOP: False,
        SKY: True,  # astro-101's admins are read-only
    }
    home = mounts[HOME]
    assert home["subPath"] == safe_slug("Alice@example.org")
    assert volumes(pod)["hubext-home"]["persistentVolumeClaim"] == {
        "claimName": "hubext-homes"
    }
    init = init_containers(pod)[PREPARE]
    _, folders = prepare_args(init)
    assert ("700", f"{PREPARE_ROOT}/hubext-home/{home['subPath']}") in folders
    assert len(folders) == 4
    assert init["securityContext"]["runAsUser"] == 0
    assert pod_container(pod)["securityContext"]["runAsUser"] == 1000
    assert env(pod_container(pod))["PROJECT"] == "ocean-lab"

    assert await spawner.poll() is None
    await asyncio.wait_for(spawner.stop(), TIMEOUT)
    assert spawner.pod_name not in cluster.objects("pods")
    assert await spawner.poll() == 1

    # stopping, and even deleting the user, keeps every PVC
    await asyncio.wait_for(spawner.delete_forever(), TIMEOUT)
    assert cluster.requests("delete", "persistentvolumeclaims") == []
    assert set(cluster.objects("persistentvolumeclaims", NAMESPACE)) == {
        "hubext-homes",
        spawner.pvc_name,
    }

    # (the check above would see a delete: an admin who asks for one gets it)
    spawner.delete_pvc = True
    await asyncio.wait_for(spawner.delete_forever(), TIMEOUT)
    (delete,) = cluster.requests("delete", "persistentvolumeclaims")
    assert delete.name == spawner.pvc_name
    assert set(cluster.objects("persistentvolumeclaims", NAMESPACE)) == {"hubext-homes"}


@pytest.mark.parametrize(
    ("home_storage", "key", "reason"),
    [
        pytest.param(
            nfs("/export/ocean-lab"),
            "nfs.sub_path",
            "the NFS path nfs.example.org:/export/ocean-lab/datasets overlaps the "
            "homes (the NFS path nfs.example.org:/export/ocean-lab, "
            "CommunityKubeSpawner.home_storage)",
            id="folder-inside-the-homes",
        ),
        pytest.param(
            nfs("/export/ocean-lab", "datasets/homes"),
            "nfs.sub_path",
            "overlaps the homes (the NFS path "
            "nfs.example.org:/export/ocean-lab/datasets/homes",
            id="homes-inside-a-folder",
        ),
    ],
)
def test_folder_sharing_storage_with_the_homes_is_refused(
    config, home_storage, key, reason
):
    config.CommunityKubeSpawner.home_storage = home_storage
    with pytest.raises(ConfigError) as info:
        checked(config)
    assert info.value.path == (
        f"Communities.communities['ocean-lab'].shared_data[0].source.{key}"
    ), str(info.value)
    assert reason in info.value.reason, str(info.value)


def test_folders_beside_the_homes_are_accepted(config):
    config.CommunityKubeSpawner.home_storage = HOME_NFS
    checked(config)
