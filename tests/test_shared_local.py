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

import contextlib
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
    # Leaves Ocean Lab during the tests (and stays in Astronomy 101).
    f"{PREFIX}-rex": ["ocean-lab", "astro-101"],
}
ALICE, OLGA, ZED, REX = PEOPLE


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


# -- root never follows a link ------------------------------------------------------


def _snapshot(tree: Path) -> dict:
    """Owner, mode and ACL of every entry under ``tree`` (links not followed)."""
    found = {}
    for path in [tree, *sorted(tree.rglob("*"))]:
        info = path.lstat()
        acl = run("getfacl", "--numeric", "--physical", "--absolute-names", str(path))
        found[str(path.relative_to(tree))] = (
            info.st_uid,
            info.st_gid,
            info.st_mode,
            acl.stdout,
        )
    return found


def _start(hub, name: str) -> requests.Response:
    return hub.api.request(
        "POST", f"/users/{name}/server", json={"profile": "standard"}
    )


def _stop(hub, name: str) -> None:
    hub.api.request("DELETE", f"/users/{name}/server")
    hub.api.wait_for_server(name, ready=False, timeout=30)


def _restart(hub, name: str) -> None:
    _stop(hub, name)
    r = _start(hub, name)
    assert r.status_code in (201, 202), r.text
    hub.api.wait_for_server(name, timeout=90)


def _running(hub, name: str) -> None:
    """Start ``name``'s server unless it runs (a test before may have stopped it)."""
    server = hub.api.user(name)["servers"].get("")
    if not (server and server.get("ready")):
        _restart(hub, name)


@contextlib.contextmanager
def _planted_link(place: Path, remainder: list[str]):
    """Replace ``place`` by a link to a root-only directory holding ``remainder``.

    Whatever follows the link finds the rest of the path there; the target's
    owner, mode and ACL are what a hub following the link would change.
    """
    target = Path(tempfile.mkdtemp(prefix="hubext-link-target-"))
    target.chmod(0o700)
    inner = target
    for part in remainder:
        inner = inner / part
        inner.mkdir(mode=0o700)
    aside = place.with_name(place.name + ".aside")
    place.rename(aside)
    place.symlink_to(target)
    try:
        yield target
    finally:
        place.unlink()
        aside.rename(place)
        shutil.rmtree(target, ignore_errors=True)


def _shared_places(machine) -> list[tuple[Path, list[str]]]:
    datasets = machine["shared"] / "ocean-lab" / "datasets"
    parts = datasets.relative_to(machine["shared"].parent).parts
    base = machine["shared"].parent
    return [
        (base.joinpath(*parts[: i + 1]), list(parts[i + 1 :]))
        for i in range(len(parts))
    ]


@pytest.mark.parametrize(
    "component", range(3), ids=["shared-root", "community", "folder"]
)
def test_spawn_refused_when_a_shared_folder_path_holds_a_link(hub, machine, component):
    """A link at any component of a folder's host path: refused, target unchanged."""
    place, remainder = _shared_places(machine)[component]
    _stop(hub, ALICE)
    with _planted_link(place, remainder) as target:
        before = _snapshot(target)
        r = _start(hub, ALICE)
        assert r.status_code == 409, (r.status_code, r.text)
        message = r.json()["message"]
        assert f"{place} is a symbolic link" in message, message
        assert "ocean-lab/datasets" in message, message
        assert _snapshot(target) == before
        # The hub stays up and serves others.
        assert hub.api.user(OLGA)["servers"][""]["ready"]


def test_spawn_refused_when_a_parent_is_writable_by_a_person(hub, machine):
    """Whoever can write a parent could swap the folder for a link after the walk."""
    community = machine["shared"] / "ocean-lab"
    _stop(hub, ALICE)
    os.chown(community, pwd.getpwnam(ALICE).pw_uid, 0)
    try:
        r = _start(hub, ALICE)
        assert r.status_code == 409, r.text
        assert (
            f"{community} belongs to uid {pwd.getpwnam(ALICE).pw_uid}, not root"
            in (r.json()["message"])
        )
    finally:
        os.chown(community, 0, 0)
    community.chmod(0o777)
    try:
        r = _start(hub, ALICE)
        assert r.status_code == 409, r.text
        assert "is writable by others (mode 0777)" in r.json()["message"]
    finally:
        community.chmod(0o755)


@pytest.mark.parametrize(
    "where",
    ["home", "home/shared", "home/shared/ocean-lab", "link"],
)
def test_links_in_a_home_are_never_followed_as_root(hub, machine, where):
    """Homes and link places: only the person (after dropping root) touches them."""
    home = machine["homes"] / ALICE
    places = {
        "home": (home, list(Path(DATASETS).parent.parts)),
        "home/shared": (home / "shared", ["ocean-lab"]),
        "home/shared/ocean-lab": (home / "shared" / "ocean-lab", []),
        "link": (home / DATASETS, []),
    }
    place, remainder = places[where]
    _stop(hub, ALICE)
    with _planted_link(place, remainder) as target:
        before = _snapshot(target)
        _start(hub, ALICE)
        # Started or not (a home that is a link to a closed directory cannot
        # be entered), nothing in the target changed.
        hub.api.wait_for_server(ALICE, timeout=90) if where != "home" else None
        assert _snapshot(target) == before
        _stop(hub, ALICE)


def test_nested_host_path_is_refused_at_start_up(machine):
    """The attack needs a folder inside another: the hub does not start."""
    outer = f"{machine['shared']}/ocean-lab"
    config = f"""
c.LocalCommunitySpawner.run_as_system_users = True
c.Communities.communities["ocean-lab"]["shared_data"] = [
    {{"name": "all", "mount_path": "/home/jovyan/shared/ocean", "members": "read-write",
      "source": {{"host_path": {outer!r}}}}},
]
c.Communities.communities["astro-101"]["shared_data"] = [
    {{"name": "sky", "mount_path": "/home/jovyan/shared/sky",
      "source": {{"host_path": {outer + "/sky"!r}}}}},
]
"""
    result = _check_config(config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "Communities.communities['astro-101'].shared_data[0].source.host_path: "
        f"the host path '{outer}/sky' overlaps the host path '{outer}' of ocean-lab/all"
    ) in result.stderr, result.stderr


def _check_config(extra: str) -> subprocess.CompletedProcess:
    from demo.services import DEMO_CONFIG

    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "jupyterhub_config.py"
        config.write_text(
            f"load_subconfig({str(DEMO_CONFIG)!r})\nc = get_config()\n{extra}"
        )
        return subprocess.run(
            [sys.executable, "-m", "hubext.cli", "check-config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HUBEXT_DEMO_DIR": directory},
        )


# -- no new privileges ----------------------------------------------------------------


def terminal(hub, user: str, command: str, timeout: float = 30) -> tuple[int, str]:
    """Run ``command`` in a new terminal of ``user``'s server, as in JupyterLab.

    Returns ``(exit status, output)``.
    """
    import asyncio
    import re

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    headers = {"Authorization": f"token {hub.tokens[user]}"}
    r = requests.post(
        f"{hub.url}/user/{user}/api/terminals", headers=headers, timeout=30
    )
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    url = hub.url.replace("http", "ws", 1) + f"/user/{user}/terminals/websocket/{name}"

    async def talk():
        ws = await websocket_connect(HTTPRequest(url, headers=headers))
        # The shell prints "RC=<status>:DONE"; the echoed command line does not
        # contain that text ("DO""NE").
        ws.write_message(json.dumps(["stdin", f'{command}; echo "RC=$?:DO""NE"\r']))
        output = ""
        while True:
            message = await ws.read_message()
            assert message is not None, output
            kind, *rest = json.loads(message)
            if kind == "stdout":
                output += rest[0]
                done = re.search(r"RC=(\d+):DONE", output)
                if done:
                    ws.close()
                    return int(done.group(1)), output

    try:
        return asyncio.run(asyncio.wait_for(talk(), timeout))
    finally:
        requests.delete(
            f"{hub.url}/user/{user}/api/terminals/{name}", headers=headers, timeout=30
        )


def test_server_runs_with_no_new_privileges(hub):
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{_server_pid(hub, REX)}/status")
        .read_text()
        .splitlines()
    )
    assert status["NoNewPrivs"].strip() == "1"


def test_removed_member_keeps_no_access_but_to_his_own_files(hub, machine):
    """Rex prepares, while in Ocean Lab, what would keep him in after removal.

    A setgid copy of ``touch`` gives nothing (no new privileges). Hard links:
    with ``fs.protected_hardlinks = 1`` he can link only files he owns or can
    read *and* write; after removal a link to another person's file gives no
    access (the file's ACL names the folder's groups, which he no longer
    has), but a link to a file he created keeps it his, readable and
    writable, while it is also in the folder. Homes on another filesystem
    than the folders cannot hold such links at all (EXDEV).
    """
    assert Path("/proc/sys/fs/protected_hardlinks").read_text().strip() == "1"
    workshop = machine["shared"] / "ocean-lab" / "workshop"
    datasets = machine["shared"] / "ocean-lab" / "datasets"
    folder = next(f for f in _folders(machine["shared"]) if f.name == "workshop")
    rw_group = group_name(folder, "read-write")
    assert write(hub, OLGA, f"{DATASETS}/curated.txt", "olga's").status_code == 201
    assert write(hub, OLGA, f"{WORKSHOP}/olga.txt", "olga's").status_code == 201
    elsewhere = Path(tempfile.mkdtemp(prefix="hubext-rex-", dir="/dev/shm"))
    os.chown(elsewhere, pwd.getpwnam(REX).pw_uid, 0)
    assert elsewhere.stat().st_dev != workshop.stat().st_dev
    try:
        # While a member: his server has the folders' groups.
        code, out = terminal(
            hub,
            REX,
            f"cp /usr/bin/touch ~/keep-touch && chgrp {rw_group} ~/keep-touch "
            f"&& chmod g+s ~/keep-touch && echo rex > {workshop}/rex.txt "
            f"&& ln {workshop}/rex.txt ~/link-own && ln {workshop}/olga.txt ~/link-olga",
        )
        assert code == 0, out
        copy = machine["homes"] / REX / "keep-touch"
        assert copy.stat().st_mode & 0o2000
        assert copy.stat().st_gid == grp.getgrnam(rw_group).gr_gid
        # Read-only: no link to a file he may only read.
        code, out = terminal(hub, REX, f"ln {datasets}/curated.txt ~/link-curated")
        assert code != 0 and "Operation not permitted" in out, out
        # Another filesystem: no link at all.
        code, out = terminal(hub, REX, f"ln {workshop}/rex.txt {elsewhere}/link")
        assert code != 0 and "Invalid cross-device link" in out, out
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
    assert "is on the mount / of the home" in hub.log()

    # Removed from Ocean Lab at the provider; the next sign-in resyncs.
    hub.idp_control(
        "PUT",
        f"accounts/{REX}",
        json={"preferred_username": REX, "groups": ["astro-101"]},
    )
    assert hub.session().login("demo", REX).status_code == 302
    assert "ocean-lab" not in hub.api.user(REX)["groups"]
    _restart(hub, REX)

    code, out = terminal(hub, REX, f"~/keep-touch {workshop}/rex-after-removal")
    assert code != 0 and "Permission denied" in out, out
    assert not (workshop / "rex-after-removal").exists()
    code, out = terminal(hub, REX, f"touch {workshop}/rex-plain")
    assert code != 0 and not (workshop / "rex-plain").exists(), out
    code, out = terminal(hub, REX, "cat ~/link-olga")
    assert code != 0 and "Permission denied" in out, out
    code, out = terminal(hub, REX, "echo more >> ~/link-olga")
    assert code != 0 and (workshop / "olga.txt").read_text() == "olga's"
    # The documented limitation: his own file stays his.
    code, out = terminal(hub, REX, "echo after >> ~/link-own")
    assert code == 0, out
    assert (workshop / "rex.txt").read_text() == "rex\nafter\n"


def test_deleting_a_user_keeps_shared_data_and_home(hub, machine):
    _running(hub, ALICE)
    r = write(hub, ALICE, "home-file.txt", "mine")
    assert r.status_code == 201, r.text
    hub.api.request("DELETE", f"/users/{ALICE}/server")
    hub.api.wait_for_server(ALICE, ready=False, timeout=30)
    r = hub.api.request("DELETE", f"/users/{ALICE}")
    assert r.status_code == 204, r.text
    assert (machine["homes"] / ALICE / "home-file.txt").read_text() == "mine"
    assert (machine["shared"] / "ocean-lab" / "workshop" / "notes.txt").exists()
    assert (machine["shared"] / "ocean-lab" / "datasets" / "readme.txt").exists()


# -- servers sharing the hub's user, the hub as root ---------------------------------

UNA = f"{PREFIX}-una"


@pytest.fixture(scope="module")
def root_hub(tmp_path_factory):
    """The demo's mode (one system user) with the hub as root: it makes the
    homes and places the links itself."""
    assert os.geteuid() == 0, "run as root (CI does)"
    accounts = {UNA: {"preferred_username": UNA, "groups": ["ocean-lab"]}}
    with running_hub(tmp_path_factory, "shared-root", "", accounts) as hub:
        assert hub.session().login("demo", UNA).status_code == 302
        # The home exists as the hub made it at a first start.
        assert _start(hub, UNA).status_code in (201, 202)
        hub.api.wait_for_server(UNA, timeout=90)
        _stop(hub, UNA)
        yield hub


@pytest.mark.parametrize(
    ("where", "refused"),
    [
        pytest.param("homes", True, id="home-root"),
        pytest.param("homes/hxs-una", True, id="home"),
        pytest.param("homes/hxs-una/shared", False, id="link-parent"),
        pytest.param("homes/hxs-una/shared/ocean-lab", False, id="link-grandparent"),
    ],
)
def test_root_hub_never_follows_a_link_in_homes(root_hub, where, refused):
    data = root_hub.env.data_dir
    place = data / where
    remainder = ["hxs-una", "shared", "ocean-lab"][len(Path(where).parts) :]
    assert (data / "homes" / UNA / "shared" / "ocean-lab").is_dir()
    with _planted_link(place, remainder) as target:
        before = _snapshot(target)
        r = _start(root_hub, UNA)
        if refused:
            assert r.status_code == 409, (r.status_code, r.text)
            assert f"{place} is a symbolic link" in r.json()["message"]
        else:
            assert r.status_code in (201, 202), r.text
            root_hub.api.wait_for_server(UNA, timeout=90)
            assert "hubext: hxs-una: cannot link" in root_hub.log()
        assert _snapshot(target) == before
        _stop(root_hub, UNA)


# -- the demo from a clone in root's home ---------------------------------------------


def test_demo_starts_with_its_state_in_roots_home():
    """A clone in /root/... (a cloud machine's usual place): its shared folders'
    host paths lie under /root, which is a system path for mount paths only."""
    from demo.services import DEMO_CONFIG

    from .harness import RunningHub

    clone = Path(tempfile.mkdtemp(prefix="hubext-clone-", dir="/root"))
    # The demo keeps its state in the clone (HUBEXT_DEMO_DIR, as the harness).
    state = clone / "hub"
    try:
        checked = subprocess.run(
            [sys.executable, "-m", "hubext.cli", "check-config", str(DEMO_CONFIG)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HUBEXT_DEMO_DIR": str(state)},
        )
        assert checked.returncode == 0, checked.stderr
        assert "configuration is valid" in checked.stdout
        accounts = clone / "accounts.json"
        accounts.write_text(
            json.dumps({UNA: {"preferred_username": UNA, "groups": ["ocean-lab"]}})
        )
        hub = RunningHub(clone, accounts=accounts)
        assert hub.env.data_dir == state
        hub.start()
        try:
            assert hub.session().login("demo", UNA).status_code == 302
            assert _start(hub, UNA).status_code in (201, 202)
            hub.api.wait_for_server(UNA, timeout=90)
            datasets = state / "shared" / "ocean-lab" / "datasets"
            assert datasets.is_dir()
            link = state / "homes" / UNA / "shared" / "ocean-lab" / "datasets"
            assert os.readlink(link) == str(datasets)
        finally:
            hub.stop()
    finally:
        shutil.rmtree(clone, ignore_errors=True)
