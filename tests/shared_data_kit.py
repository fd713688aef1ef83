"""Builders shared by the shared-data tests (definitions, folders, a machine)."""

from __future__ import annotations

import re

import pytest
from hypothesis import strategies as st

from hubext._validation import ConfigError
from hubext.communities import parse_communities
from hubext.shared_data import (
    READ_ONLY,
    READ_WRITE,
    SharedFolder,
    Source,
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


def shared_folder(community: str, name: str, mount_path: str = "", target: str = ""):
    return SharedFolder(
        community=community,
        name=name,
        mount_path=mount_path or f"/home/jovyan/shared/{community}/{name}",
        source=Source("host_path", path=target or f"/srv/hubext/{community}/{name}"),
    )


slugs = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)


def folder_entry(name: str, mount_path: str) -> dict:
    return {
        "name": name,
        "mount_path": mount_path,
        # One host path per mount path: two folders never share their data.
        "source": {"host_path": f"/srv/hubext{mount_path}"},
    }
