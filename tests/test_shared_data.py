"""Shared data: folder definitions, mount checks, access, names and links.

Covers hubext.shared_data (pure), its registration in the community registry,
the pure parts of hubext.spawners.local_shared and the start-up checks of
LocalCommunitySpawner. Every refusal names the exact key path of the bad
value, the way an admin would type it.
"""

from __future__ import annotations

import itertools
import os
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from traitlets.config import Config

from hubext import Communities
from hubext._validation import ConfigError, KeyPath
from hubext.communities import parse_communities
from hubext.environment import environment_for
from hubext.shared_data import (
    NONE,
    READ_ONLY,
    READ_WRITE,
    Mount,
    SharedFolder,
    Source,
    check_overlaps,
    mounts_for,
)
from hubext.slugs import home_sub_path, stable_name
from hubext.spawners import nofollow
from hubext.spawners.local import LocalCommunitySpawner
from hubext.spawners.local_shared import (
    GROUP_NAME_MAX,
    group_name,
    link_path,
    link_plan,
    place_links,
)

RO, RW = READ_ONLY, READ_WRITE
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LINUX_GROUP = re.compile(r"[a-z_][a-z0-9_-]*")

ROOT = "Communities.communities"
OCEAN = f"{ROOT}['ocean-lab']"
ENTRY = f"{OCEAN}.shared_data[0]"
HOME = "/home/jovyan"


def entry(**changes) -> dict:
    """A valid shared_data entry of ocean-lab, with ``changes`` (None: key left out)."""
    raw = {
        "name": "datasets",
        "mount_path": "/home/jovyan/shared/ocean-lab/datasets",
        "source": {"nfs": {"server": "nfs.example.org", "path": "/export/ocean"}},
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def ocean(*entries, **keys) -> dict:
    """A registry with only ocean-lab, holding ``entries``."""
    return {"ocean-lab": {"shared_data": list(entries), **keys}}


def source(raw) -> dict:
    return ocean(entry(source=raw))


def refusal(raw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_communities(raw)
    return info.value


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


def folder_entry(name: str, mount_path: str) -> dict:
    return {
        "name": name,
        "mount_path": mount_path,
        # One host path per mount path: two folders never share their data.
        "source": {"host_path": f"/srv/hubext{mount_path}"},
    }


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


def test_environment_is_normalized_and_first_community_wins():
    registry = parse_communities(
        {
            "ocean-lab": {
                "environment": {"SCRATCH_BUCKET": "gs://ocean/scratch", "EMPTY": ""}
            },
            "astro-101": {
                "environment": {"SCRATCH_BUCKET": "gs://astro", "_ASTRO": "1"}
            },
        }
    )
    assert registry["ocean-lab"].get("environment") == {
        "SCRATCH_BUCKET": "gs://ocean/scratch",
        "EMPTY": "",
    }
    communities = list(registry.values())
    assert environment_for(communities, {"astro-101", "ocean-lab"}) == {
        "SCRATCH_BUCKET": "gs://ocean/scratch",
        "EMPTY": "",
        "_ASTRO": "1",
    }
    assert environment_for(communities, ["astro-101"]) == {
        "SCRATCH_BUCKET": "gs://astro",
        "_ASTRO": "1",
    }
    assert environment_for(communities, []) == {}


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


# -- 4. names ----------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["", "hx-", "hubext-", "a"]),
    st.text(max_size=200),
    st.integers(min_value=24, max_value=63),
)
def test_stable_name_is_a_short_dns_label(prefix, key, max_length):
    name = stable_name(prefix, key, max_length)
    assert DNS_LABEL.fullmatch(name), name
    assert len(name) <= max_length
    assert name.startswith(prefix)
    assert stable_name(prefix, key, max_length) == name


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.from_regex(r"[a-z0-9-]{1,63}/[a-z0-9-]{1,63}", fullmatch=True),
        ),
        min_size=2,
        max_size=30,
        unique=True,
    ),
    st.sampled_from([("hubext-", 63), ("hx-", 29), ("", 20)]),
)
def test_stable_names_of_distinct_keys_are_distinct(keys, shape):
    prefix, max_length = shape
    names = [stable_name(prefix, k, max_length) for k in keys]
    assert len(set(names)) == len(names)


def test_stable_name_never_exceeds_max_length():
    # Like safe_slug: either the name fits, or the length is refused.
    try:
        name = stable_name("hx-", "ocean-lab/datasets", 18)
    except ValueError:
        return
    assert len(name) <= 18, name


# Usernames as hubext makes them: the provider's name, then the default
# username_template "{username}@{provider}" (or a template without @provider).
github_logins = st.from_regex(
    r"[A-Za-z0-9]([A-Za-z0-9]|-[A-Za-z0-9]){0,19}", fullmatch=True
)
eppns = st.one_of(
    st.emails(),
    st.from_regex(
        r"[a-zA-Z0-9._%+-]{1,30}@[a-z0-9-]{1,20}\.(edu|org|ac\.uk)", fullmatch=True
    ),
)
look_alikes = st.text(
    st.sampled_from(
        "aliceALICE"
        "\uff41\uff4c\uff49\uff43\uff45"  # fullwidth alice
        "\u0430\u0435\u0441"  # Cyrillic a, e, c
        "\u212a\u0131\u0130"  # Kelvin sign, dotless i, dotted I
        "\u00e9e\u0301"  # precomposed and combining e-acute
        "./\\\0 @-_~"
    ),
    min_size=1,
    max_size=40,
)
oidc_names = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(categories=["Cs", "Cc", "Zs", "Lo"]), max_size=20),
    look_alikes,
    st.sampled_from(["..", ".", "../..", "a/../b", "/", "a\0b", "x" * 1000, ""]),
)
providers = st.sampled_from(["github", "cilogon", "uni", "keycloak-2"])
usernames = st.one_of(
    st.tuples(github_logins, st.just("github")).map("{0[0]}@{0[1]}".format),
    st.tuples(eppns, st.just("cilogon")).map("{0[0]}@{0[1]}".format),
    st.tuples(oidc_names, providers).map("{0[0]}@{0[1]}".format),
    github_logins,
    eppns,
    oidc_names,
)


def assert_one_safe_component(sub_path: str) -> None:
    assert "/" not in sub_path and "\\" not in sub_path
    assert sub_path not in ("", ".", "..")
    assert "\0" not in sub_path
    assert sub_path.isascii() and sub_path.isprintable()
    assert len(sub_path) <= 63
    assert DNS_LABEL.fullmatch(sub_path), sub_path


@settings(max_examples=1000, deadline=None)
@given(usernames)
def test_home_sub_path_is_one_safe_component(username):
    sub_path = home_sub_path(username)
    assert_one_safe_component(sub_path)
    assert home_sub_path(username) == sub_path
    assert home_sub_path(username, "homes") == f"homes/{sub_path}"


@settings(max_examples=500, deadline=None)
@given(st.lists(usernames, min_size=2, max_size=30, unique=True))
def test_home_sub_paths_of_distinct_usernames_are_distinct(names):
    sub_paths = [home_sub_path(n) for n in names]
    assert len(set(sub_paths)) == len(sub_paths)


def test_look_alikes_and_case_get_their_own_homes():
    names = [
        "alice@uni",
        "Alice@uni",
        "ALICE@uni",
        "\uff41\uff4c\uff49\uff43\uff45@uni",  # fullwidth
        "\u0430lice@uni",  # Cyrillic a
        unicodedata.normalize("NFC", "ren\u00e9@uni"),
        unicodedata.normalize("NFD", "ren\u00e9@uni"),
        "alice",
        "alice-uni",
    ]
    sub_paths = [home_sub_path(n) for n in names]
    assert len(set(sub_paths)) == len(names)
    for sub_path in sub_paths:
        assert_one_safe_component(sub_path)


#: The storage contract: homes on shared storage live under these names.
#: They must NEVER change (an upgrade would lose people's homes); a change of
#: scheme needs a migration, not an edit of this table.
HOME_SUB_PATHS = {
    "alice": "alice",
    "alice-smith": "alice-smith",
    "alice@github": "alice-github---326c8a9f4a37aa04",
    "Alice-Smith@github": "alice-smith-github---2960e6f9a50a5d11",
    "jdoe@ocean.example.org@cilogon": "jdoe-ocean-example-org-cilogon---29d984b791928ffb",
    "\uff41\uff4c\uff49\uff43\uff45@uni": "uni---965b8eb4522f20da",
    "../../etc@uni": "etc-uni---fd06f22432e69ebd",
}


@pytest.mark.parametrize(("username", "sub_path"), HOME_SUB_PATHS.items())
def test_home_sub_path_golden_values(username, sub_path):
    assert home_sub_path(username) == sub_path


# -- 5. group names ----------------------------------------------------------------------


def shared_folder(community: str, name: str, mount_path: str = "", target: str = ""):
    return SharedFolder(
        community=community,
        name=name,
        mount_path=mount_path or f"/home/jovyan/shared/{community}/{name}",
        source=Source("host_path", path=target or f"/srv/hubext/{community}/{name}"),
    )


slugs = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(slugs, slugs), min_size=1, max_size=20, unique=True))
def test_group_names(keys):
    names = []
    for community, name in keys:
        folder = shared_folder(community, name)
        for access in (RO, RW):
            group = group_name(folder, access)
            assert len(group) <= GROUP_NAME_MAX == 32
            assert LINUX_GROUP.fullmatch(group), group
            names.append(group)
        assert group_name(folder, RO) != group_name(folder, RW)
    assert len(set(names)) == len(names)


def test_group_names_are_stable():
    # Groups and the folders' ACL entries exist on the machine under these
    # names: they must never change.
    folder = shared_folder("ocean-lab", "datasets")
    assert group_name(folder, RO) == "hx-ocean-lab-9efba7f8ac6c1a0c-ro"
    assert group_name(folder, RW) == "hx-ocean-lab-9efba7f8ac6c1a0c-rw"
    # Only the folder's key counts, not where it is mounted or stored.
    moved = shared_folder("ocean-lab", "datasets", "/home/jovyan/d", "/srv/b/d")
    assert group_name(moved, RO) == group_name(folder, RO)


# -- 6. links in the home ----------------------------------------------------------------


def test_link_path():
    folder = shared_folder("ocean-lab", "datasets")
    assert (
        link_path("/home/alice", HOME, folder)
        == "/home/alice/shared/ocean-lab/datasets"
    )


@pytest.fixture
def machine(tmp_path):
    """A home and the data folders of three shared folders."""
    home = tmp_path / "home"
    home.mkdir()
    folders = {}
    for community, name in [
        ("ocean-lab", "datasets"),
        ("ocean-lab", "models"),
        ("astro-101", "sky"),
    ]:
        target = tmp_path / "data" / community / name
        target.mkdir(parents=True)
        (target / "README").write_text(f"{community}/{name}")
        folders[name] = shared_folder(community, name, target=str(target))
    return home, folders


def plan(home, folders, have):
    return link_plan(
        str(home),
        HOME,
        [Mount(folders[n], RO) for n in have],
        list(folders.values()),
    )


def test_links_are_created(machine):
    home, folders = machine
    wanted, stale = plan(home, folders, ["datasets", "sky"])
    assert wanted == {
        str(home / "shared/ocean-lab/datasets"): folders["datasets"].source.path,
        str(home / "shared/astro-101/sky"): folders["sky"].source.path,
    }
    assert stale == {
        str(home / "shared/ocean-lab/models"): folders["models"].source.path
    }
    assert place_links(wanted, stale) == []
    link = home / "shared/ocean-lab/datasets"
    assert link.is_symlink()
    assert os.readlink(link) == folders["datasets"].source.path
    assert (link / "README").read_text() == "ocean-lab/datasets"
    assert not (home / "shared/ocean-lab/models").exists()
    # Again: nothing to do, nothing wrong.
    assert place_links(wanted, stale) == []
    assert os.readlink(link) == folders["datasets"].source.path


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_an_existing_file_or_directory_is_never_replaced(machine, kind):
    home, folders = machine
    where = home / "shared/ocean-lab/datasets"
    where.parent.mkdir(parents=True)
    if kind == "file":
        where.write_text("my notes")
    else:
        where.mkdir()
        (where / "mine.ipynb").write_text("{}")
    wanted, stale = plan(home, folders, ["datasets", "sky"])
    problems = place_links(wanted, stale)
    assert problems == [f"{where} exists and is not a link; not replaced"]
    assert not where.is_symlink()
    if kind == "file":
        assert where.read_text() == "my notes"
    else:
        assert (where / "mine.ipynb").read_text() == "{}"
    # The other folder is still linked.
    assert (home / "shared/astro-101/sky").is_symlink()


def test_a_link_that_cannot_be_made_is_reported(machine):
    home, folders = machine
    (home / "shared").write_text("a file where a folder should be")
    problems = place_links(*plan(home, folders, ["datasets"]))
    assert len(problems) == 1
    assert problems[0].startswith(f"cannot link {home / 'shared/ocean-lab/datasets'}: ")
    assert (home / "shared").read_text() == "a file where a folder should be"


def test_a_stale_link_to_a_lost_folder_is_removed(machine):
    home, folders = machine
    assert place_links(*plan(home, folders, ["datasets", "models"])) == []
    assert (home / "shared/ocean-lab/models").is_symlink()
    # The person lost access to models.
    assert place_links(*plan(home, folders, ["datasets"])) == []
    assert not os.path.lexists(home / "shared/ocean-lab/models")
    assert (home / "shared/ocean-lab/datasets").is_symlink()
    # Only the link went; the data is where it was.
    assert (Path(folders["models"].source.path) / "README").read_text() == (
        "ocean-lab/models"
    )


def test_the_users_own_links_and_files_are_untouched(machine, tmp_path):
    home, folders = machine
    mine = tmp_path / "mine"
    mine.mkdir()
    (home / "shared/ocean-lab").mkdir(parents=True)
    # At the place of a folder the user has no access to, pointing elsewhere.
    (home / "shared/ocean-lab/models").symlink_to(mine)
    # Somewhere else in the home, even pointing at a shared folder's data.
    (home / "datasets").symlink_to(folders["datasets"].source.path)
    (home / "shared/astro-101").mkdir(parents=True)
    (home / "shared/astro-101/sky").write_text("not a link")
    assert place_links(*plan(home, folders, ["datasets"])) == []
    assert os.readlink(home / "shared/ocean-lab/models") == str(mine)
    assert os.readlink(home / "datasets") == folders["datasets"].source.path
    assert (home / "shared/astro-101/sky").read_text() == "not a link"


def test_a_link_to_an_old_target_is_updated(machine, tmp_path):
    # The folder's host_path changed in the configuration.
    home, folders = machine
    where = home / "shared/ocean-lab/datasets"
    where.parent.mkdir(parents=True)
    where.symlink_to(tmp_path / "old-place")
    assert place_links(*plan(home, folders, ["datasets"])) == []
    assert os.readlink(where) == folders["datasets"].source.path


# -- 7. start-up checks of hubext-local --------------------------------------------------


def local_check(communities: dict, **spawner) -> None:
    config = Config()
    config.Communities.communities = communities
    for key, value in spawner.items():
        setattr(config.LocalCommunitySpawner, key, value)
    LocalCommunitySpawner.check_hub_config(config, Communities(config=config))


LOCAL_REFUSALS = [
    pytest.param(
        ocean(entry(mount_path="/home/jovyan/ocean")),
        {},
        f"{ENTRY}.source",
        "hubext-local can use only host_path sources, not nfs",
        id="nfs",
    ),
    pytest.param(
        source({"pvc": {"claim": "ocean"}}),
        {},
        f"{ENTRY}.source",
        "hubext-local can use only host_path sources, not pvc",
        id="pvc",
    ),
    pytest.param(
        ocean(folder_entry("data", "/data/ocean")),
        {},
        f"{ENTRY}.mount_path",
        "'/data/ocean' must be inside LocalCommunitySpawner.home_mount_path "
        "('/home/jovyan'): hubext-local links shared folders into the home",
        id="outside-home",
    ),
    pytest.param(
        ocean(folder_entry("data", "/home/jovyan2/ocean")),
        {},
        f"{ENTRY}.mount_path",
        "must be inside LocalCommunitySpawner.home_mount_path",
        id="beside-home-with-a-common-prefix",
    ),
    pytest.param(
        ocean(folder_entry("data", "/home/jovyan")),
        {},
        f"{ENTRY}.mount_path",
        "'/home/jovyan' would hide the home directory '/home/jovyan' "
        "(LocalCommunitySpawner.home_mount_path)",
        id="on-home",
    ),
    pytest.param(
        ocean(folder_entry("data", "/home")),
        {},
        f"{ENTRY}.mount_path",
        "'/home' would hide the home directory",
        id="above-home",
    ),
    pytest.param(
        ocean(folder_entry("data", "/home/jovyan/ocean")),
        {"home_mount_path": "/home/user"},
        f"{ENTRY}.mount_path",
        "must be inside LocalCommunitySpawner.home_mount_path ('/home/user')",
        id="configured-home",
    ),
    pytest.param(
        {
            "astro-101": {"shared_data": [folder_entry("a", "/home/jovyan/astro")]},
            "ocean-lab": {
                "shared_data": [
                    folder_entry("ok", "/home/jovyan/ocean"),
                    folder_entry("bad", "/scratch/ocean"),
                ]
            },
        },
        {},
        f"{OCEAN}.shared_data[1].mount_path",
        "must be inside",
        id="second-entry-of-second-community",
    ),
    pytest.param(
        source({"host_path": "/srv/hubext/homes/alice/data"}),
        {"home_root": "/srv/hubext/homes"},
        f"{ENTRY}.source.host_path",
        "'/srv/hubext/homes/alice/data' overlaps the homes in '/srv/hubext/homes' "
        "(LocalCommunitySpawner.home_root)",
        id="host-path-in-the-homes",
    ),
    pytest.param(
        source({"host_path": "/srv/hubext"}),
        {"home_root": "/srv/hubext/homes"},
        f"{ENTRY}.source.host_path",
        "overlaps the homes in '/srv/hubext/homes'",
        id="host-path-above-the-homes",
    ),
]


@pytest.mark.parametrize(("communities", "spawner", "path", "reason"), LOCAL_REFUSALS)
def test_local_spawner_refuses(communities, spawner, path, reason):
    with pytest.raises(ConfigError) as info:
        local_check(communities, **spawner)
    assert str(info.value).startswith(f"{path}: "), str(info.value)
    assert reason in info.value.reason, str(info.value)


def test_internal_ssl_is_refused_with_system_users():
    # JupyterHub's LocalProcessSpawner.move_certs chowns in the home as root.
    config = Config()
    config.Communities.communities = ocean()
    config.JupyterHub.internal_ssl = True
    LocalCommunitySpawner.check_hub_config(config, Communities(config=config))
    config.LocalCommunitySpawner.run_as_system_users = True
    with pytest.raises(ConfigError) as info:
        LocalCommunitySpawner.check_hub_config(config, Communities(config=config))
    assert str(info.value).startswith("JupyterHub.internal_ssl: cannot be used with ")


def test_home_root_is_not_checked_with_system_users():
    # Each system user's home is their own (/home/<name>), not in home_root.
    local_check(
        source({"host_path": "/srv/hubext/homes/alice/data"}),
        home_root="/srv/hubext/homes",
        run_as_system_users=True,
    )


@pytest.fixture
def system_user(tmp_path):
    """A system user whose home is ``tmp_path/homes/hx-home-test``."""
    import subprocess

    name = "hx-home-test"
    home = tmp_path / "homes" / name
    subprocess.run(["userdel", name], capture_output=True, check=False)
    subprocess.run(
        ["useradd", "--no-create-home", "--home-dir", str(home), name], check=True
    )
    try:
        yield name, home
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)


def test_host_path_holding_a_system_users_home_is_refused(system_user):
    name, home = system_user
    homes = str(home.parent)
    with pytest.raises(ConfigError) as info:
        local_check(source({"host_path": homes}), run_as_system_users=True)
    assert str(info.value) == (
        f"{ENTRY}.source.host_path: {homes!r} holds the home {str(home)!r} of the "
        f"system user {name}; keep shared folders and homes apart"
    )
    # Beside the homes is fine; inside a home is refused at the spawn (its
    # parents are not root's alone).
    local_check(source({"host_path": f"{homes}-shared/x"}), run_as_system_users=True)


def test_local_spawner_accepts_folders_inside_the_home():
    local_check(
        {
            "ocean-lab": {
                "shared_data": [
                    folder_entry("data", "/home/jovyan/shared/ocean"),
                    folder_entry("deep", "/home/jovyan/a/b/c"),
                ]
            },
            "astro-101": {},
        }
    )
    local_check(
        ocean(folder_entry("sky", "/home/user/sky")), home_mount_path="/home/user"
    )


def test_local_spawner_refuses_a_bad_home_mount_path():
    with pytest.raises(ConfigError) as info:
        local_check(ocean(), home_mount_path="/home/jovyan/")
    assert str(info.value).startswith("LocalCommunitySpawner.home_mount_path: ")


# -- root follows no link (hubext.spawners.nofollow; the suite runs as root) ------------


def test_acl_set_on_a_descriptor_reads_back_with_getfacl(tmp_path):
    import subprocess

    folder = tmp_path / "data"
    folder.mkdir(mode=0o750)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mode = folder.stat().st_mode & 0o7777
        nofollow.merge_acl(
            fd,
            nofollow.ACCESS_XATTR,
            {
                (nofollow.GROUP, 4242): 0o5,
                (nofollow.GROUP, 4241): 0o7,
                (nofollow.MASK, None): 0o7,
            },
            mode,
        )
        # Merged, not replaced: a second call keeps the first entries.
        nofollow.merge_acl(
            fd, nofollow.ACCESS_XATTR, {(nofollow.USER, 4243): 0o4}, mode
        )
        acl = nofollow.read_acl(fd, nofollow.ACCESS_XATTR)
    finally:
        os.close(fd)
    shown = subprocess.run(
        ["getfacl", "--numeric", "--omit-header", str(folder)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown == [
        "user::rwx",
        "user:4243:r--",
        "group::r-x",
        "group:4241:rwx",
        "group:4242:r-x",
        "mask::rwx",
        "other::---",
    ]
    assert nofollow.decode_acl(nofollow.encode_acl(acl)) == acl


@pytest.mark.parametrize("component", ["a", "a/b", "a/b/c"])
def test_open_dir_refuses_a_link_at_any_component(tmp_path, component):
    base = tmp_path / "base"
    (base / "a" / "b" / "c").mkdir(parents=True)
    # The link leads to a place where the rest of the path exists.
    target = tmp_path / "target"
    target.joinpath(*Path("a/b/c").parts[len(Path(component).parts) :]).mkdir(
        parents=True
    )
    place = base / component
    place.rename(tmp_path / "aside")
    place.symlink_to(target)
    with pytest.raises(nofollow.UnsafePath) as info:
        nofollow.open_dir(str(base / "a/b/c"), create_mode=0o755)
    assert str(info.value).startswith(f"{place} is a symbolic link"), str(info.value)


def test_open_dir_creates_missing_directories_without_following(tmp_path):
    fd, created = nofollow.open_dir(
        str(tmp_path / "x" / "y"), create_mode=0o755, last_mode=0o700
    )
    os.close(fd)
    assert created
    assert (tmp_path / "x" / "y").stat().st_mode & 0o777 == 0o700
    # A dangling link where a directory would be made: refused, nothing made.
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(nofollow.UnsafePath, match="is a symbolic link"):
        nofollow.open_dir(str(tmp_path / "dangling" / "z"), create_mode=0o755)
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(nofollow.UnsafePath, match="is not a directory"):
        nofollow.open_dir(str(tmp_path / "file" / "z"), create_mode=0o755)


@pytest.mark.parametrize(
    ("owner", "mode", "reason"),
    [
        pytest.param(1234, 0o755, "belongs to uid 1234, not root", id="owned"),
        pytest.param(
            0, 0o775, "is writable by others (mode 0775)", id="group-writable"
        ),
        pytest.param(0, 0o1777, None, id="sticky-root-child"),
    ],
)
def test_trusted_parents(tmp_path, owner, mode, reason):
    tmp_path.chmod(0o755)
    parent = tmp_path / "parent"
    (parent / "folder").mkdir(parents=True)
    os.chown(parent, owner, 0)
    parent.chmod(mode)
    path = str(parent / "folder")
    if reason is None:
        fd, _ = nofollow.open_dir(path, trusted_parents=True)
        os.close(fd)
        # In a sticky directory the child must be root's too.
        os.chown(parent / "folder", 1234, 0)
        reason = "is writable by others (mode 1777)"
    with pytest.raises(nofollow.UnsafePath) as info:
        nofollow.open_dir(path, trusted_parents=True)
    assert reason in str(info.value)


def test_links_placed_as_root_follow_no_link(machine, tmp_path):
    home, folders = machine
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / "shared").symlink_to(elsewhere)
    problems = place_links(*plan(home, folders, ["datasets"]))
    assert len(problems) == 1 and "is a symbolic link" in problems[0], problems
    assert list(elsewhere.iterdir()) == []


def test_mount_point_is_the_longest_mount_containing_the_path(tmp_path):
    from hubext.spawners.local_shared import mount_point

    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 252:0 / / rw,relatime - ext4 /dev/vda1 rw\n"
        "30 22 0:27 / /srv/hubext/shared rw - ext4 /dev/vda1 rw\n"
        "31 22 0:28 / /srv/my\\040data rw - tmpfs tmpfs rw\n"
    )
    assert mount_point("/home/alice", str(info)) == "/"
    assert mount_point("/srv/hubext/shared/ocean", str(info)) == "/srv/hubext/shared"
    assert mount_point("/srv/hubext/shared-old", str(info)) == "/"
    assert mount_point("/srv/my data/x", str(info)) == "/srv/my data"
    assert mount_point("/x", str(tmp_path / "missing")) is None
