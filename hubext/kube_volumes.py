"""Kubernetes volumes for shared folders and homes. Pure: dicts in, dicts out.

Builds KubeSpawner's dict-form ``volumes`` / ``volume_mounts`` entries (keyed
by volume name, so they merge with the admin's and the profiles' own) and the
init container that creates missing folders with the right owner and mode.

Volume names are ``hubext-`` + a readable part + a hash of the folder's
``<community>/<name>`` (:func:`hubext.slugs.stable_name`): valid
DNS-1123 labels of at most 63 characters that never collide, whatever the
community and folder names.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from .shared_data import Mount, SharedFolder, Source
from .slugs import home_sub_path, stable_name

HOME_VOLUME = "hubext-home"
PREPARE_CONTAINER = "hubext-prepare-folders"
#: Where the init container sees the storage it prepares.
PREPARE_ROOT = "/hubext-prepare"
#: Mode of a shared folder created by the init container: setgid, group-writable.
SHARED_FOLDER_MODE = "2775"
#: Mode of a home folder created by the init container.
HOME_FOLDER_MODE = "700"

# Creates each missing folder, then gives it to the owner; never touches a
# folder that exists. Arguments: owner, then (mode, path) pairs.
_PREPARE_SCRIPT = """\
set -eu
owner="$1"; shift
while [ "$#" -gt 1 ]; do
  mode="$1"; dir="$2"; shift 2
  if [ ! -e "$dir" ]; then
    mkdir -p "$dir"
    # chmod first: without CAP_FSETID, a chmod after the chown would drop
    # the setgid bit (root is not in the new group).
    chmod "$mode" "$dir"
    chown "$owner" "$dir"
    echo "hubext: created $dir"
  fi
done
"""


def volume_name(folder: SharedFolder) -> str:
    return stable_name("hubext-", folder.key, 63)


@dataclass(frozen=True)
class Storage:
    """A volume and the path inside it that a container mounts."""

    volume: dict
    sub_path: str


def storage(name: str, source: Source, sub_path: str = "") -> Storage:
    """The volume of ``source`` and the sub path (``source.sub_path/sub_path``)."""
    inner = posixpath.join(source.sub_path, sub_path) if sub_path else source.sub_path
    if source.kind == "nfs":
        return Storage(
            {"name": name, "nfs": {"server": source.server, "path": source.path}}, inner
        )
    if source.kind == "pvc":
        return Storage(
            {"name": name, "persistentVolumeClaim": {"claimName": source.claim}}, inner
        )
    # host_path: the parent directory is the volume, the folder its sub path,
    # so the init container can create the folder before the server mounts it.
    parent, base = posixpath.split(source.path)
    return Storage(
        {"name": name, "hostPath": {"path": parent, "type": "DirectoryOrCreate"}},
        posixpath.join(base, sub_path) if sub_path else base,
    )


def _mount(name: str, mount_path: str, sub_path: str, read_only: bool) -> dict:
    mount = {"name": name, "mountPath": mount_path}
    if sub_path:
        mount["subPath"] = sub_path
    if read_only:
        mount["readOnly"] = True
    return mount


@dataclass(frozen=True)
class PodStorage:
    """What a server's pod gets: dict-form volumes and mounts, and folders to create."""

    volumes: dict
    volume_mounts: dict
    #: ``(volume name, path inside the volume, mode)`` of folders to create if missing.
    folders: tuple


def pod_storage(
    mounts: Iterable[Mount],
    *,
    username: str,
    home_source: Source | None,
    home_mount_path: str,
) -> PodStorage:
    volumes: dict = {}
    volume_mounts: dict = {}
    folders = []
    if home_source is not None:
        home = storage(HOME_VOLUME, home_source, home_sub_path(username))
        volumes[HOME_VOLUME] = home.volume
        volume_mounts[HOME_VOLUME] = _mount(
            HOME_VOLUME, home_mount_path, home.sub_path, False
        )
        folders.append((HOME_VOLUME, home.sub_path, HOME_FOLDER_MODE))
    for mount in mounts:
        name = volume_name(mount.folder)
        shared = storage(name, mount.folder.source)
        volumes[name] = shared.volume
        volume_mounts[name] = _mount(
            name, mount.folder.mount_path, shared.sub_path, mount.read_only
        )
        if shared.sub_path:
            folders.append((name, shared.sub_path, SHARED_FOLDER_MODE))
    return PodStorage(volumes, volume_mounts, tuple(folders))


def prepare_container(
    folders: Iterable[tuple[str, str, str]],
    *,
    image: str,
    owner: str,
    image_pull_policy: str | None = None,
) -> dict | None:
    """The init container that creates missing folders, or None if none to create.

    It runs as root with only the capabilities it needs (chown and writing
    into folders it does not own), no privilege escalation, and sees only the
    volumes it prepares; the server's own container is left as configured.
    """
    folders = list(folders)
    if not folders:
        return None
    args = [owner]
    mounts = {}
    for volume, sub_path, mode in folders:
        mounts[volume] = {
            "name": volume,
            "mountPath": f"{PREPARE_ROOT}/{volume}",
        }
        args += [mode, f"{PREPARE_ROOT}/{volume}/{sub_path}"]
    container = {
        "name": PREPARE_CONTAINER,
        "image": image,
        "command": ["sh", "-c", _PREPARE_SCRIPT, PREPARE_CONTAINER, *args],
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {
                "drop": ["ALL"],
                "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER"],
            },
        },
        "volumeMounts": list(mounts.values()),
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"memory": "64Mi"},
        },
    }
    if image_pull_policy:
        container["imagePullPolicy"] = image_pull_policy
    return container
