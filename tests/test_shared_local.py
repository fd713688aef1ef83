"""Shared folders on one machine, enforced by the operating system, end to end.

The hub runs as root; hubext-local runs each server as a real system user
created here. People sign in through the OpenID Connect provider; their
servers are started through the REST API; every read and write goes through
each server's Jupyter contents API, as the person would do it from
JupyterLab. The folders are checked on disk too.

Ocean Lab has two folders: ``datasets`` (members read-only, admins
read-write) and ``workshop`` (members read-write). Zed belongs to Astronomy
101 only.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from hubext.communities import parse_communities
from hubext.spawners.local_shared import group_name

from .harness import running_hub

pytestmark = pytest.mark.e2e

PREFIX = "hxs"
PEOPLE = {
    # hub username: groups claim
    f"{PREFIX}-alice": ["ocean-lab"],
    f"{PREFIX}-olga": ["ocean-lab", "ocean-lab-admins"],
    f"{PREFIX}-zed": ["astro-101"],
}
ALICE, OLGA, ZED = PEOPLE


def shared_data(shared: Path) -> list[dict]:
    return [
        {
            "name": "datasets",
            "mount_path": "/home/jovyan/shared/ocean-lab/datasets",
            "source": {"host_path": f"{shared}/ocean-lab/datasets"},
        },
        {
            "name": "workshop",
            "mount_path": "/home/jovyan/shared/ocean-lab/workshop",
            "source": {"host_path": f"{shared}/ocean-lab/workshop"},
            "members": "read-write",
        },
    ]


def hub_config(shared: Path) -> str:
    return f"""
c.LocalCommunitySpawner.run_as_system_users = True
c.LocalCommunitySpawner.home_mount_path = "/home/jovyan"
ocean = c.Communities.communities["ocean-lab"]
ocean["shared_data"] = {shared_data(shared)!r}
ocean["environment"] = {{"SCRATCH_BUCKET": "s3://scratch/ocean-lab"}}
"""


def _folders(shared: Path):
    registry = parse_communities({"ocean-lab": {"shared_data": shared_data(shared)}})
    return registry["ocean-lab"].get("shared_data")


DATASETS = "shared/ocean-lab/datasets"
WORKSHOP = "shared/ocean-lab/workshop"


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def machine():
    """System users with homes, and an empty place for the shared folders."""
    assert os.geteuid() == 0, (
        "this test creates system users and runs the hub as root; run it as root "
        "(CI does)"
    )
    assert shutil.which("setfacl"), "setfacl missing: run ci/system-packages.sh"
    # Servers run as other users: every directory on the way must be searchable.
    root = Path(tempfile.mkdtemp(prefix="hubext-shared-"))
    root.chmod(0o755)
    homes, shared = root / "homes", root / "shared"
    homes.mkdir(mode=0o755)
    for name in PEOPLE:
        _remove_user(name)
        run("useradd", "--no-create-home", "--home-dir", str(homes / name), name)
        home = homes / name
        home.mkdir(mode=0o700)
        os.chown(home, pwd.getpwnam(name).pw_uid, pwd.getpwnam(name).pw_gid)
    opened = _let_users_run_python(list(PEOPLE))
    try:
        yield {"homes": homes, "shared": shared}
    finally:
        for directory, had_acl in opened:
            if had_acl:
                for name in PEOPLE:
                    subprocess.run(
                        ["setfacl", "-x", f"u:{name}", directory], check=False
                    )
            else:
                subprocess.run(["setfacl", "--remove-all", directory], check=False)
        for name in PEOPLE:
            _remove_user(name)
        for folder in _folders(shared):
            for access in ("read-only", "read-write"):
                subprocess.run(["groupdel", group_name(folder, access)], check=False)
        shutil.rmtree(root, ignore_errors=True)


def _let_users_run_python(names: list[str]) -> list[tuple[str, bool]]:
    """Let the users search the directories above the hub's Python and packages.

    The servers run with the hub's own Python (``sys.executable``), which
    may live under a private directory such as ``/root/.pyenv``. Each
    directory on the way that others cannot search gets an ACL entry for the
    test's users only, removed at the end.
    """
    opened = []
    paths = {os.path.realpath(sys.executable), sys.prefix, sys.base_prefix}
    for path in paths:
        directory = os.path.dirname(path) if os.path.isfile(path) else path
        while directory != "/":
            done = [d for d, _ in opened]
            if not os.stat(directory).st_mode & 0o001 and directory not in done:
                had_acl = bool(
                    run(
                        "getfacl", "--skip-base", "--omit-header", directory
                    ).stdout.strip()
                )
                for name in names:
                    run("setfacl", "-m", f"u:{name}:x", directory)
                opened.append((directory, had_acl))
            directory = os.path.dirname(directory)
    return opened


def _remove_user(name: str) -> None:
    subprocess.run(["pkill", "-KILL", "-u", name], check=False)
    subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture(scope="module")
def hub(tmp_path_factory, machine):
    accounts = {
        name: {"preferred_username": name, "groups": groups}
        for name, groups in PEOPLE.items()
    }
    config = hub_config(machine["shared"])
    with running_hub(tmp_path_factory, "shared-local", config, accounts) as hub:
        hub.tokens = {}
        for name in PEOPLE:
            assert hub.session().login("demo", name).status_code == 302
            r = hub.api.request(
                "POST", f"/users/{name}/server", json={"profile": "standard"}
            )
            assert r.status_code in (201, 202), r.text
        for name in PEOPLE:
            hub.api.wait_for_server(name, timeout=90)
            hub.tokens[name] = hub.token_for(name)
        yield hub
        for name in PEOPLE:
            hub.api.request("DELETE", f"/users/{name}/server")


def contents(hub, user: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(
        method,
        f"{hub.url}/user/{user}/api/contents/{path}",
        headers={"Authorization": f"token {hub.tokens[user]}"},
        timeout=30,
        **kwargs,
    )


def write(hub, user: str, path: str, text: str) -> requests.Response:
    body = {"type": "file", "format": "text", "content": text}
    return contents(hub, user, "PUT", path, data=json.dumps(body))


def read(hub, user: str, path: str) -> requests.Response:
    return contents(hub, user, "GET", path, params={"content": "1"})


def test_folders_created_with_owner_mode_and_acl(hub, machine):
    datasets = machine["shared"] / "ocean-lab" / "datasets"
    info = datasets.stat()
    assert (info.st_uid, info.st_gid) == (0, 0)
    assert info.st_mode & 0o007 == 0, "others must have no access"
    acl = run("getfacl", "--numeric", "--omit-header", str(datasets)).stdout
    folder = next(f for f in _folders(machine["shared"]) if f.name == "datasets")
    ro = grp.getgrnam(group_name(folder, "read-only")).gr_gid
    rw = grp.getgrnam(group_name(folder, "read-write")).gr_gid
    for entry in (f"group:{ro}:r-x", f"group:{rw}:rwx", f"default:group:{rw}:rwx"):
        assert entry in acl.splitlines(), acl


def test_admin_writes_member_reads_but_cannot_write(hub):
    r = write(hub, OLGA, f"{DATASETS}/readme.txt", "curated by olga")
    assert r.status_code == 201, r.text
    r = read(hub, ALICE, f"{DATASETS}/readme.txt")
    assert r.status_code == 200, r.text
    assert r.json()["content"] == "curated by olga"
    r = write(hub, ALICE, f"{DATASETS}/mine.txt", "alice was here")
    assert r.status_code == 403, r.text
    r = write(hub, ALICE, f"{DATASETS}/readme.txt", "overwritten")
    assert r.status_code == 403, r.text
    assert read(hub, OLGA, f"{DATASETS}/readme.txt").json()["content"] == (
        "curated by olga"
    )


def test_workshop_folder_is_writable_by_members_and_shared(hub):
    r = write(hub, ALICE, f"{WORKSHOP}/notes.txt", "from alice")
    assert r.status_code == 201, r.text
    # The default ACL lets the other members change what alice created.
    r = write(hub, OLGA, f"{WORKSHOP}/notes.txt", "alice, then olga")
    assert r.status_code == 200, r.text
    assert read(hub, ALICE, f"{WORKSHOP}/notes.txt").json()["content"] == (
        "alice, then olga"
    )


def test_non_member_has_no_link_and_cannot_enter(hub, machine):
    assert read(hub, ZED, "shared/ocean-lab").status_code == 404
    # Zed makes their own link to the folder: the operating system refuses.
    sneaky = machine["homes"] / ZED / "sneaky"
    sneaky.symlink_to(machine["shared"] / "ocean-lab" / "datasets")
    # jupyter_server 2 answers a folder it may not enter with 404 (it treats
    # it as hidden) and a file inside it with 404, 403 or 500 depending on
    # the call; what matters here is that nothing is read or written.
    r = read(hub, ZED, "sneaky")
    assert r.status_code == 404, r.text
    r = read(hub, ZED, "sneaky/readme.txt")
    assert r.status_code >= 400, r.text
    assert "curated" not in r.text
    r = write(hub, ZED, "sneaky/zed.txt", "zed")
    assert r.status_code >= 400, r.text
    assert not (machine["shared"] / "ocean-lab" / "datasets" / "zed.txt").exists()


def _credentials(pid: int) -> tuple[int, int, list[int]]:
    """``(uid, gid, supplementary groups)`` of process ``pid``, from /proc."""
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    uid, gid = int(status["Uid"].split()[0]), int(status["Gid"].split()[0])
    return uid, gid, [int(g) for g in status["Groups"].split()]


def _as_server(pid: int, *command: str) -> subprocess.CompletedProcess:
    """Run ``command`` with exactly the uid, gid and groups of process ``pid``."""
    uid, gid, groups = _credentials(pid)

    def become():
        os.setgid(gid)
        os.setgroups(groups)
        os.setuid(uid)

    return subprocess.run(
        command, preexec_fn=become, capture_output=True, text=True, cwd="/"
    )


@pytest.mark.parametrize(
    ("name", "can_read", "can_write"),
    [
        pytest.param(ALICE, True, False, id="member"),
        pytest.param(OLGA, True, True, id="admin"),
        pytest.param(ZED, False, False, id="non-member"),
    ],
)
def test_operating_system_enforces_access_of_each_server(
    hub, machine, name, can_read, can_write
):
    """Whatever a server runs (a kernel, a terminal), its credentials decide."""
    datasets = machine["shared"] / "ocean-lab" / "datasets"
    write(hub, OLGA, f"{DATASETS}/readme.txt", "curated by olga")
    pid = _server_pid(hub, name)
    listed = _as_server(pid, "ls", str(datasets))
    assert (listed.returncode == 0) is can_read, listed.stderr
    shown = _as_server(pid, "cat", str(datasets / "readme.txt"))
    assert (shown.returncode == 0) is can_read, shown.stderr
    if not can_read:
        assert "Permission denied" in shown.stderr
    target = datasets / f"by-{name}.txt"
    made = _as_server(pid, "touch", str(target))
    assert (made.returncode == 0) is can_write, made.stderr
    assert target.exists() is can_write


def test_links_in_homes(hub, machine):
    for name, expected in ((ALICE, True), (OLGA, True), (ZED, False)):
        link = machine["homes"] / name / DATASETS
        assert link.is_symlink() is expected, name
    link = machine["homes"] / ALICE / DATASETS
    assert os.readlink(link) == str(machine["shared"] / "ocean-lab" / "datasets")
    # The link and its parents belong to the user (placed after dropping root).
    assert (machine["homes"] / ALICE / "shared").stat().st_uid == pwd.getpwnam(
        ALICE
    ).pw_uid


def _server_pid(hub, name: str) -> int:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            uid, _, _ = _credentials(int(proc.name))
        except OSError:
            continue
        if (
            uid == pwd.getpwnam(name).pw_uid
            and f"JUPYTERHUB_USER={name}".encode() in environ
        ):
            return int(proc.name)
    raise AssertionError(f"no server process of {name}")


@pytest.mark.parametrize(
    ("name", "access"),
    [
        pytest.param(
            ALICE, {"datasets": "read-only", "workshop": "read-write"}, id="member"
        ),
        pytest.param(
            OLGA, {"datasets": "read-write", "workshop": "read-write"}, id="admin"
        ),
        pytest.param(ZED, {}, id="non-member"),
    ],
)
def test_server_groups_and_environment(hub, machine, name, access):
    pid = _server_pid(hub, name)
    groups = set(_credentials(pid)[2])
    folders = {f.name: f for f in _folders(machine["shared"])}
    expected = set()
    for folder_name, folder in folders.items():
        for level in ("read-only", "read-write"):
            gid = grp.getgrnam(group_name(folder, level)).gr_gid
            if access.get(folder_name) == level:
                expected.add(gid)
                assert gid in groups, (name, folder_name, level)
            else:
                assert gid not in groups, (name, folder_name, level)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    has_scratch = b"SCRATCH_BUCKET=s3://scratch/ocean-lab" in environ
    assert has_scratch is (name != ZED)


def test_deleting_a_user_keeps_shared_data_and_home(hub, machine):
    r = write(hub, ALICE, "home-file.txt", "mine")
    assert r.status_code == 201, r.text
    hub.api.request("DELETE", f"/users/{ALICE}/server")
    hub.api.wait_for_server(ALICE, ready=False, timeout=30)
    r = hub.api.request("DELETE", f"/users/{ALICE}")
    assert r.status_code == 204, r.text
    assert (machine["homes"] / ALICE / "home-file.txt").read_text() == "mine"
    assert (machine["shared"] / "ocean-lab" / "workshop" / "notes.txt").exists()
    assert (machine["shared"] / "ocean-lab" / "datasets" / "readme.txt").exists()
