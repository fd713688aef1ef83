"""Shared folders: definitions, mount checks and access (hubext.shared_data).

Covers hubext.shared_data (pure) and its registration in the community
registry; hubext-local's side is in test_local_shared.py. Every refusal names
the exact key path of the bad value, the way an admin would type it.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hubext._validation import ConfigError, KeyPath
from hubext.communities import parse_communities
from hubext.shared_data import (
    NONE,
    Mount,
    SharedFolder,
    Source,
    check_overlaps,
    mounts_for,
)

from .shared_data_kit import (
    ENTRY,
    OCEAN,
    RO,
    ROOT,
    RW,
    entry,
    folder_entry,
    ocean,
    refusal,
    source,
)

# -- 1. bad configurations -----------------------------------------------------------

BAD = [
    # mount_path
    pytest.param(
        ocean(entry(mount_path="home/jovyan/data")),
        f"{ENTRY}.mount_path",
        "must be an absolute path (starting with '/'), got 'home/jovyan/data'",
        id="mount-relative",
    ),
    pytest.param(
        ocean(entry(mount_path="/home/jovyan/../../etc")),
        f"{ENTRY}.mount_path",
        "must not contain '..'",
        id="mount-dotdot",
    ),
    pytest.param(
        ocean(entry(mount_path="/home/jovyan/data/")),
        f"{ENTRY}.mount_path",
        "must be written without '.', '//' or a trailing '/' ('/home/jovyan/data')",
        id="mount-trailing-slash",
    ),
    pytest.param(
        ocean(entry(mount_path="/home//jovyan/data")),
        f"{ENTRY}.mount_path",
        "must be written without '.', '//' or a trailing '/' ('/home/jovyan/data')",
        id="mount-double-slash",
    ),
    pytest.param(
        ocean(entry(mount_path="/home/./jovyan")),
        f"{ENTRY}.mount_path",
        "must be written without '.', '//' or a trailing '/' ('/home/jovyan')",
        id="mount-dot",
    ),
    pytest.param(
        ocean(entry(mount_path="/")),
        f"{ENTRY}.mount_path",
        "'/' must not be '/'",
        id="mount-root",
    ),
    pytest.param(
        ocean(entry(mount_path="/etc")),
        f"{ENTRY}.mount_path",
        "'/etc' is inside the system path /etc",
        id="mount-etc",
    ),
    pytest.param(
        ocean(entry(mount_path="/usr/lib/x")),
        f"{ENTRY}.mount_path",
        "'/usr/lib/x' is inside the system path /usr",
        id="mount-usr-lib",
    ),
    pytest.param(
        ocean(entry(mount_path="/var")),
        f"{ENTRY}.mount_path",
        "'/var' is inside the system path /var",
        id="mount-var",
    ),
    pytest.param(
        ocean(entry(mount_path="/opt")),
        f"{ENTRY}.mount_path",
        "'/opt' would hide the system path /opt/conda",
        id="mount-hides-opt-conda",
    ),
    pytest.param(
        ocean(entry(mount_path="/srv")),
        f"{ENTRY}.mount_path",
        "'/srv' would hide the system path /srv/conda",
        id="mount-hides-srv-conda",
    ),
    pytest.param(
        ocean(entry(mount_path="/home/jovyan/a\0b")),
        f"{ENTRY}.mount_path",
        "contains control characters: '/home/jovyan/a\\x00b'",
        id="mount-nul",
    ),
    pytest.param(
        ocean(entry(mount_path=42)),
        f"{ENTRY}.mount_path",
        "expected a string, got 42 (int)",
        id="mount-not-a-string",
    ),
    # name
    pytest.param(
        ocean(entry(), entry(mount_path="/home/jovyan/other")),
        f"{OCEAN}.shared_data[1].name",
        "duplicate name 'datasets' (also entry 0)",
        id="duplicate-name",
    ),
    pytest.param(
        ocean(entry(name="Datasets")),
        f"{ENTRY}.name",
        "must match '[a-z0-9]([a-z0-9-]*[a-z0-9])?'",
        id="name-uppercase",
    ),
    pytest.param(
        ocean(entry(name="")),
        f"{ENTRY}.name",
        "must not be empty",
        id="name-empty",
    ),
    # access
    pytest.param(
        ocean(entry(members="readonly")),
        f"{ENTRY}.members",
        "must be one of read-only, read-write, none, got 'readonly'",
        id="members-readonly",
    ),
    pytest.param(
        ocean(entry(admins="rw")),
        f"{ENTRY}.admins",
        "must be one of read-only, read-write, none, got 'rw'",
        id="admins-rw",
    ),
    pytest.param(
        ocean(entry(members=True)),
        f"{ENTRY}.members",
        "must be one of read-only, read-write, none, got True",
        id="members-true",
    ),
    pytest.param(
        ocean(entry(admins=["read-write"])),
        f"{ENTRY}.admins",
        "must be one of read-only, read-write, none, got ['read-write']",
        id="admins-list",
    ),
    # keys
    pytest.param(
        ocean({**entry(mount_path=None), "mountpath": "/home/jovyan/x"}),
        f"{ENTRY}.mountpath",
        "unknown key (did you mean 'mount_path'?); known keys: admins, members, "
        "mount_path, name, source",
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        ocean(entry(source=None)),
        ENTRY,
        "missing required key 'source'",
        id="missing-source",
    ),
    pytest.param(
        ocean(entry(name=None)),
        ENTRY,
        "missing required key 'name'",
        id="missing-name",
    ),
    pytest.param(
        ocean("datasets"),
        ENTRY,
        "expected a mapping (dict), got 'datasets' (str)",
        id="entry-not-a-mapping",
    ),
    pytest.param(
        {"ocean-lab": {"shared_data": entry()}},
        f"{OCEAN}.shared_data",
        "expected a list",
        id="shared-data-not-a-list",
    ),
    # source
    pytest.param(
        source({"nfs": {"server": "n", "path": "/e"}, "pvc": {"claim": "c"}}),
        f"{ENTRY}.source",
        "must have exactly one of 'nfs', 'pvc' or 'host_path'",
        id="source-two-kinds",
    ),
    pytest.param(
        source({}),
        f"{ENTRY}.source",
        "must have exactly one of 'nfs', 'pvc' or 'host_path'",
        id="source-no-kind",
    ),
    pytest.param(
        source({"s3": {"bucket": "b"}}),
        f"{ENTRY}.source.s3",
        "unknown key; known keys: host_path, nfs, pvc",
        id="source-unknown-kind",
    ),
    pytest.param(
        source({"nsf": {"server": "n", "path": "/e"}}),
        f"{ENTRY}.source.nsf",
        "unknown key (did you mean 'nfs'?)",
        id="source-misspelt-kind",
    ),
    pytest.param(
        source("/srv/data/ocean"),
        f"{ENTRY}.source",
        "expected a mapping (dict), got '/srv/data/ocean' (str)",
        id="source-not-a-mapping",
    ),
    pytest.param(
        source({"nfs": {"path": "/export/ocean"}}),
        f"{ENTRY}.source.nfs",
        "missing required key 'server'",
        id="nfs-without-server",
    ),
    pytest.param(
        source({"nfs": {"server": "nfs.example.org/export", "path": "/e"}}),
        f"{ENTRY}.source.nfs.server",
        "must be a host name or address, got 'nfs.example.org/export'",
        id="nfs-server-slash",
    ),
    pytest.param(
        source({"nfs": {"server": "nfs example", "path": "/e"}}),
        f"{ENTRY}.source.nfs.server",
        "must be a host name or address",
        id="nfs-server-space",
    ),
    pytest.param(
        source({"nfs": {"server": "n", "path": "export/ocean"}}),
        f"{ENTRY}.source.nfs.path",
        "must be an absolute path",
        id="nfs-path-relative",
    ),
    pytest.param(
        source({"nfs": {"server": "n", "path": "/e", "subpath": "x"}}),
        f"{ENTRY}.source.nfs.subpath",
        "unknown key (did you mean 'sub_path'?)",
        id="nfs-unknown-key",
    ),
    pytest.param(
        source({"pvc": {"claim": "Ocean-Data"}}),
        f"{ENTRY}.source.pvc.claim",
        "must be a Kubernetes object name (lowercase letters, digits, '-' and '.'), "
        "got 'Ocean-Data'",
        id="pvc-claim-uppercase",
    ),
    pytest.param(
        source({"pvc": {"claim": "ocean", "sub_path": "../astro"}}),
        f"{ENTRY}.source.pvc.sub_path",
        "must not contain '..', got '../astro'",
        id="pvc-sub-path-dotdot",
    ),
    pytest.param(
        source({"nfs": {"server": "n", "path": "/e", "sub_path": "a/../../b"}}),
        f"{ENTRY}.source.nfs.sub_path",
        "must not contain '..'",
        id="nfs-sub-path-inner-dotdot",
    ),
    pytest.param(
        source({"nfs": {"server": "n", "path": "/e", "sub_path": "/ocean"}}),
        f"{ENTRY}.source.nfs.sub_path",
        "must be a relative path (no leading '/'), got '/ocean'",
        id="nfs-sub-path-leading-slash",
    ),
    pytest.param(
        source({"pvc": {"claim": "ocean", "sub_path": "a//b"}}),
        f"{ENTRY}.source.pvc.sub_path",
        "must be written without '.', '//' or a trailing '/'",
        id="pvc-sub-path-double-slash",
    ),
    pytest.param(
        source({"pvc": {"claim": "ocean", "sub_path": ""}}),
        f"{ENTRY}.source.pvc.sub_path",
        "must not be empty",
        id="pvc-sub-path-empty",
    ),
    pytest.param(
        source({"host_path": "/data"}),
        f"{ENTRY}.source.host_path",
        "'/data' must be at least two levels deep, e.g. '/srv/data'",
        id="host-path-too-shallow",
    ),
    pytest.param(
        source({"host_path": "/etc/x"}),
        f"{ENTRY}.source.host_path",
        "'/etc/x' is inside the system path /etc",
        id="host-path-etc",
    ),
    pytest.param(
        source({"host_path": "/"}),
        f"{ENTRY}.source.host_path",
        "'/' must not be '/'",
        id="host-path-root",
    ),
    pytest.param(
        source({"host_path": "srv/data"}),
        f"{ENTRY}.source.host_path",
        "must be an absolute path",
        id="host-path-relative",
    ),
    pytest.param(
        source({"host_path": "/srv/data/../../etc"}),
        f"{ENTRY}.source.host_path",
        "must not contain '..'",
        id="host-path-dotdot",
    ),
    # environment
    pytest.param(
        {"ocean-lab": {"environment": {"1X": "v"}}},
        f"{OCEAN}.environment",
        "'1X' is not an environment variable name",
        id="env-name-digit-first",
    ),
    pytest.param(
        {"ocean-lab": {"environment": {"A-B": "v"}}},
        f"{OCEAN}.environment",
        "'A-B' is not an environment variable name",
        id="env-name-hyphen",
    ),
    pytest.param(
        {"ocean-lab": {"environment": {"": "v"}}},
        f"{OCEAN}.environment",
        "'' is not an environment variable name",
        id="env-name-empty",
    ),
    pytest.param(
        {"ocean-lab": {"environment": {1: "v"}}},
        f"{OCEAN}.environment",
        "1 is not an environment variable name",
        id="env-name-int",
    ),
    pytest.param(
        {"ocean-lab": {"environment": {"JUPYTERHUB_API_TOKEN": "x"}}},
        f"{OCEAN}.environment['JUPYTERHUB_API_TOKEN']",
        "is set by JupyterHub or the spawner; choose another name",
        id="env-reserved-jupyterhub",
    ),
    pytest.param(
        {"ocean-lab": {"environment": {"HOME": "/tmp"}}},
        f"{OCEAN}.environment['HOME']",
        "is set by JupyterHub or the spawner",
        id="env-reserved-home",
    ),
    pytest.param(
        {"ocean-lab": {"environment": {"JPY_API_TOKEN": "x"}}},
        f"{OCEAN}.environment['JPY_API_TOKEN']",
        "is set by JupyterHub",
        id="env-reserved-jpy",
    ),
    pytest.param(
        {"ocean-lab": {"environment": {"THREADS": 8}}},
        f"{OCEAN}.environment['THREADS']",
        "expected a string, got 8 (int)",
        id="env-value-int",
    ),
    pytest.param(
        {"ocean-lab": {"environment": {"THREADS": None}}},
        f"{OCEAN}.environment['THREADS']",
        "expected a string, got None (NoneType)",
        id="env-value-none",
    ),
    pytest.param(
        {"ocean-lab": {"environment": {"KEY": "a\nb"}}},
        f"{OCEAN}.environment['KEY']",
        "contains control characters",
        id="env-value-newline",
    ),
    pytest.param(
        {"ocean-lab": {"environment": ["A=b"]}},
        f"{OCEAN}.environment",
        "expected a mapping (dict), got ['A=b'] (list)",
        id="env-not-a-mapping",
    ),
]


@pytest.mark.parametrize(("raw", "path", "reason"), BAD)
def test_bad_definitions_name_the_key_path(raw, path, reason):
    error = refusal(raw)
    assert str(error).startswith(f"{path}: "), str(error)
    assert error.path == path
    assert reason in error.reason, str(error)
    assert "\n" not in str(error)


OVERLAPS = [
    pytest.param(
        "/home/jovyan/shared",
        "/home/jovyan/shared",
        "'/home/jovyan/shared' overlaps the mount path '/home/jovyan/shared' of ocean-lab/a",
        id="equal",
    ),
    pytest.param(
        "/home/jovyan/shared",
        "/home/jovyan/shared/astro",
        "'/home/jovyan/shared/astro' overlaps the mount path '/home/jovyan/shared' "
        "of ocean-lab/a",
        id="second-inside-first",
    ),
    pytest.param(
        "/home/jovyan/shared/ocean",
        "/home/jovyan/shared",
        "overlaps the mount path",
        id="second-above-first",
    ),
]


@pytest.mark.parametrize(("first", "second", "reason"), OVERLAPS)
def test_overlaps_across_communities_name_the_second_mount_path(first, second, reason):
    error = refusal(
        {
            "ocean-lab": {"shared_data": [folder_entry("a", first)]},
            "astro-101": {"shared_data": [folder_entry("b", second)]},
        }
    )
    # The community added later is the one whose mount path conflicts with
    # what is there already (as for duplicate names).
    assert error.path == f"{ROOT}['astro-101'].shared_data[0].mount_path", str(error)
    assert reason in error.reason
    assert first in error.reason and second in error.reason


def test_overlap_inside_one_community():
    error = refusal(
        ocean(
            folder_entry("a", "/home/jovyan/shared"),
            folder_entry("b", "/home/jovyan/shared/inner"),
        )
    )
    assert error.path == f"{OCEAN}.shared_data[1].mount_path"


def test_nested_overlap_is_found_past_a_sibling_that_sorts_between():
    # '-' and '.' sort before '/': '/home/jovyan/shared-old' sorts between
    # '/home/jovyan/shared' and '/home/jovyan/shared/astro'.
    error = refusal(
        {
            "ocean-lab": {
                "shared_data": [
                    folder_entry("a", "/home/jovyan/shared"),
                    folder_entry("old", "/home/jovyan/shared-old"),
                ]
            },
            "astro-101": {
                "shared_data": [folder_entry("b", "/home/jovyan/shared/astro")]
            },
        }
    )
    assert error.path == f"{ROOT}['astro-101'].shared_data[0].mount_path", str(error)
    assert "overlaps the mount path '/home/jovyan/shared'" in error.reason


SOURCE_OVERLAPS = [
    pytest.param(
        {"host_path": "/srv/shared/ocean"},
        {"host_path": "/srv/shared/ocean/datasets"},
        "source.host_path",
        "the host path '/srv/shared/ocean/datasets' overlaps the host path "
        "'/srv/shared/ocean' of ocean-lab/a",
        id="host-path-inside",
    ),
    pytest.param(
        {"host_path": "/srv/shared/ocean/datasets"},
        {"host_path": "/srv/shared"},
        "source.host_path",
        "the host path '/srv/shared' overlaps the host path "
        "'/srv/shared/ocean/datasets' of ocean-lab/a",
        id="host-path-above",
    ),
    pytest.param(
        {"host_path": "/srv/shared/ocean"},
        {"host_path": "/srv/shared/ocean"},
        "source.host_path",
        "overlaps the host path '/srv/shared/ocean'",
        id="host-path-equal",
    ),
    pytest.param(
        {"nfs": {"server": "nfs.example.org", "path": "/export", "sub_path": "a"}},
        {"nfs": {"server": "NFS.example.org", "path": "/export/a/b"}},
        "source.nfs.path",
        "the NFS path NFS.example.org:/export/a/b overlaps the NFS path "
        "nfs.example.org:/export/a of ocean-lab/a",
        id="nfs-inside-same-server",
    ),
    pytest.param(
        {"pvc": {"claim": "data"}},
        {"pvc": {"claim": "data", "sub_path": "astro"}},
        "source.pvc.sub_path",
        "the claim data's path '/astro' overlaps the claim data's path '/' of ocean-lab/a",
        id="pvc-root-and-sub-path",
    ),
]


@pytest.mark.parametrize(("first", "second", "key", "reason"), SOURCE_OVERLAPS)
def test_nested_sources_across_communities_are_refused(first, second, key, reason):
    error = refusal(
        {
            "ocean-lab": {
                "shared_data": [
                    {"name": "a", "mount_path": "/home/jovyan/a", "source": first}
                ]
            },
            "astro-101": {
                "shared_data": [
                    {"name": "b", "mount_path": "/home/jovyan/b", "source": second}
                ]
            },
        }
    )
    assert error.path == f"{ROOT}['astro-101'].shared_data[0].{key}", str(error)
    assert reason in error.reason, error.reason


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            {"host_path": "/srv/shared/ocean"},
            {"host_path": "/srv/shared/ocean-old"},
            id="host-path-sibling-prefix",
        ),
        pytest.param(
            {"nfs": {"server": "a.example.org", "path": "/export"}},
            {"nfs": {"server": "b.example.org", "path": "/export/x"}},
            id="nfs-other-server",
        ),
        pytest.param(
            {"pvc": {"claim": "data"}},
            {"pvc": {"claim": "data-2", "sub_path": "x"}},
            id="pvc-other-claim",
        ),
        pytest.param(
            {"host_path": "/srv/export/x"},
            {"nfs": {"server": "a.example.org", "path": "/srv/export"}},
            id="host-path-and-nfs",
        ),
    ],
)
def test_separate_sources_are_accepted(first, second):
    registry = parse_communities(
        ocean(
            {"name": "a", "mount_path": "/home/jovyan/a", "source": first},
            {"name": "b", "mount_path": "/home/jovyan/b", "source": second},
        )
    )
    assert len(registry["ocean-lab"].get("shared_data")) == 2


def test_host_path_may_lie_in_roots_home_but_a_mount_path_may_not():
    # A clone in /root (a cloud machine's usual place) keeps its demo data there.
    registry = parse_communities(
        source({"host_path": "/root/hubext/.hubext-demo/shared/ocean-lab/datasets"})
    )
    assert registry["ocean-lab"].get("shared_data")[0].source.path == (
        "/root/hubext/.hubext-demo/shared/ocean-lab/datasets"
    )
    error = refusal(source({"host_path": "/root"}))
    assert error.path == f"{ENTRY}.source.host_path"
    assert "system path /root" in error.reason
    error = refusal(ocean(entry(mount_path="/root/data")))
    assert error.path == f"{ENTRY}.mount_path"
    assert "is inside the system path /root" in error.reason


# Path components chosen so that siblings sort between a folder and its children.
_components = st.sampled_from(["a", "a-b", "a.b", "a b", "a0", "b"])
_mount_paths = st.lists(_components, min_size=1, max_size=3).map(
    lambda parts: "/home/jovyan/" + "/".join(parts)
)


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


@settings(max_examples=300, deadline=None)
@given(st.lists(_mount_paths, min_size=1, max_size=6))
@example(["/home/jovyan/a", "/home/jovyan/a-b", "/home/jovyan/a/b"])
def test_check_overlaps_refuses_exactly_the_nested_sets(paths):
    folders = [
        (
            SharedFolder("c", f"f{i}", p, Source("host_path", path=f"/srv/x/f{i}")),
            KeyPath("x")[i],
        )
        for i, p in enumerate(paths)
    ]
    expected = any(_nested(a, b) for a, b in itertools.combinations(paths, 2))
    if expected:
        with pytest.raises(ConfigError):
            check_overlaps(folders)
    else:
        check_overlaps(folders)


# -- 2. good configurations ------------------------------------------------------------


def test_defaults_and_normalized_folders():
    registry = parse_communities(
        ocean(
            entry(),
            entry(
                name="models",
                mount_path="/home/jovyan/shared/ocean-lab/models",
                source={"pvc": {"claim": "ocean-models.v2", "sub_path": "runs/2024"}},
                members="read-write",
                admins="none",
            ),
            entry(
                name="scratch",
                mount_path="/scratch/ocean",
                source={"host_path": "/srv/hubext/ocean-scratch"},
                members="none",
                admins="read-only",
            ),
        )
    )
    folders = registry["ocean-lab"].get("shared_data")
    assert isinstance(folders, tuple)
    assert folders == (
        SharedFolder(
            community="ocean-lab",
            name="datasets",
            mount_path="/home/jovyan/shared/ocean-lab/datasets",
            source=Source("nfs", path="/export/ocean", server="nfs.example.org"),
            members=RO,
            admins=RW,
        ),
        SharedFolder(
            community="ocean-lab",
            name="models",
            mount_path="/home/jovyan/shared/ocean-lab/models",
            source=Source("pvc", claim="ocean-models.v2", sub_path="runs/2024"),
            members=RW,
            admins=NONE,
        ),
        SharedFolder(
            community="ocean-lab",
            name="scratch",
            mount_path="/scratch/ocean",
            source=Source("host_path", path="/srv/hubext/ocean-scratch"),
            members=NONE,
            admins=RO,
        ),
    )
    assert folders[0].key == "ocean-lab/datasets"
    assert folders[0].source.sub_path == ""
    with pytest.raises(AttributeError):
        folders[0].mount_path = "/"  # frozen


def test_nfs_sub_path_is_kept():
    registry = parse_communities(
        source({"nfs": {"server": "10.0.0.2", "path": "/export", "sub_path": "a/b"}})
    )
    (folder,) = registry["ocean-lab"].get("shared_data")
    assert folder.source == Source(
        "nfs", server="10.0.0.2", path="/export", sub_path="a/b"
    )


@pytest.mark.parametrize(
    "mount_path",
    [
        "/home/jovyan/shared",
        "/data/ocean",
        "/opt/data",  # beside /opt/conda
        "/srv/data",  # beside /srv/conda
        "/usr2/x",  # a prefix of a system path, not inside it
        "/variable",
        "/home/jovyan/a b",
    ],
)
def test_mount_paths_that_are_accepted(mount_path):
    registry = parse_communities(ocean(entry(mount_path=mount_path)))
    assert registry["ocean-lab"].get("shared_data")[0].mount_path == mount_path


def test_siblings_that_share_a_prefix_do_not_overlap():
    registry = parse_communities(
        {
            "ocean-lab": {"shared_data": [folder_entry("a", "/home/jovyan/shared")]},
            "astro-101": {
                "shared_data": [folder_entry("b", "/home/jovyan/shared-astro")]
            },
        }
    )
    assert len(registry) == 2


def test_empty_shared_data_and_environment():
    registry = parse_communities({"ocean-lab": {"shared_data": [], "environment": {}}})
    assert registry["ocean-lab"].get("shared_data") == ()
    assert registry["ocean-lab"].get("environment") == {}


# -- 3. access ---------------------------------------------------------------------------

#: (members, admins) of a folder -> access of a person who is
#: (member only, admin only, both, neither).
ACCESS_TABLE = {
    (RO, RO): (RO, RO, RO, NONE),
    (RO, RW): (RO, RW, RW, NONE),
    (RO, NONE): (RO, NONE, RO, NONE),
    (RW, RO): (RW, RO, RW, NONE),
    (RW, RW): (RW, RW, RW, NONE),
    (RW, NONE): (RW, NONE, RW, NONE),
    (NONE, RO): (NONE, RO, RO, NONE),
    (NONE, RW): (NONE, RW, RW, NONE),
    (NONE, NONE): (NONE, NONE, NONE, NONE),
}
PEOPLE = {
    "member": (True, False),
    "admin": (False, True),
    "both": (True, True),
    "neither": (False, False),
}
ACCESS_CASES = [
    pytest.param(
        members,
        admins,
        person,
        expected[i],
        id=f"members={members},admins={admins},{person}",
    )
    for (members, admins), expected in ACCESS_TABLE.items()
    for i, person in enumerate(PEOPLE)
]


@pytest.mark.parametrize(("members", "admins", "person", "expected"), ACCESS_CASES)
def test_access_table(members, admins, person, expected):
    registry = parse_communities(ocean(entry(members=members, admins=admins)))
    (folder,) = registry["ocean-lab"].get("shared_data")
    member, admin = PEOPLE[person]
    assert folder.access(member=member, admin=admin) == expected
    mounts = mounts_for(
        registry.values(),
        ["ocean-lab"] if member else ["other"],
        ["ocean-lab"] if admin else [],
    )
    if expected == NONE:
        assert mounts == []
    else:
        assert mounts == [Mount(folder, expected)]
        assert mounts[0].read_only is (expected != RW)


def test_mounts_follow_registry_order_then_list_order():
    registry = parse_communities(
        {
            "zeta": {
                "shared_data": [
                    folder_entry("z2", "/home/jovyan/z2"),
                    folder_entry("z1", "/home/jovyan/z1"),
                ]
            },
            "alpha": {"shared_data": [folder_entry("a1", "/home/jovyan/a1")]},
            "mid": {
                "shared_data": [
                    folder_entry("m2", "/home/jovyan/m2"),
                    folder_entry("m1", "/home/jovyan/m1"),
                ]
            },
        }
    )
    mounts = mounts_for(registry.values(), {"mid", "alpha", "zeta"}, set())
    assert [m.folder.key for m in mounts] == [
        "zeta/z2",
        "zeta/z1",
        "alpha/a1",
        "mid/m2",
        "mid/m1",
    ]
    assert {m.access for m in mounts} == {RO}


def test_admin_of_one_community_and_member_of_another():
    registry = parse_communities(
        {
            "ocean-lab": {
                "shared_data": [
                    folder_entry("data", "/home/jovyan/ocean/data"),
                    {
                        **folder_entry("admin", "/home/jovyan/ocean/admin"),
                        "members": NONE,
                    },
                    {
                        **folder_entry("public", "/home/jovyan/ocean/pub"),
                        "admins": NONE,
                    },
                ]
            },
            "astro-101": {
                "shared_data": [
                    folder_entry("data", "/home/jovyan/astro/data"),
                    {
                        **folder_entry("admin", "/home/jovyan/astro/admin"),
                        "members": NONE,
                    },
                ]
            },
            "unrelated": {"shared_data": [folder_entry("x", "/home/jovyan/x")]},
        }
    )
    # Admin of ocean-lab only (not in its group), member of astro-101 only.
    mounts = mounts_for(
        registry.values(), ["astro-101", "not-a-community"], ["ocean-lab"]
    )
    assert [(m.folder.key, m.access) for m in mounts] == [
        ("ocean-lab/data", RW),
        ("ocean-lab/admin", RW),
        # ocean-lab/public: admins none, and not a member
        ("astro-101/data", RO),
        # astro-101/admin: members none, and not an admin
    ]


def test_nobody_gets_anything_without_communities():
    registry = parse_communities(ocean(entry()))
    assert mounts_for(registry.values(), [], []) == []
    assert mounts_for([], ["ocean-lab"], ["ocean-lab"]) == []
