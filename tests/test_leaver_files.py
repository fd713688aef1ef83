"""A leaver's files in a shared folder, with real system users (hubext-local as root).

A member who made a hard link, in his home, to a file he created in a
shared folder could still write it after leaving the community (homes and
folders on one filesystem). :func:`hubext.leaver_files.hand_over`
makes his files in the folder the folder's: owner, group and ACL as the
folder gives, nothing deleted; the hard link then gives him nothing.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from hubext import nofollow
from hubext.leaver_files import hand_over
from hubext.spawners.local_shared import prepare_folder

from .shared_data_kit import shared_folder

LEAVER, STAYER = "hx-leaver", "hx-stayer"


@pytest.fixture
def machine():
    root = Path(tempfile.mkdtemp(prefix="hubext-leaver-"))
    root.chmod(0o755)
    homes = root / "homes"
    homes.mkdir()
    for name in (LEAVER, STAYER):
        subprocess.run(["userdel", name], capture_output=True, check=False)
        subprocess.run(
            ["useradd", "--no-create-home", "--home-dir", str(homes / name), name],
            check=True,
        )
        (homes / name).mkdir()
        entry = pwd.getpwnam(name)
        os.chown(homes / name, entry.pw_uid, entry.pw_gid)
        (homes / name).chmod(0o700)
    folder = shared_folder("ocean-lab", "workshop", target=str(root / "data" / "ws"))
    (root / "data").mkdir()
    gids = prepare_folder(folder, enforce=True)
    try:
        yield root, homes, folder, gids
    finally:
        for name in (LEAVER, STAYER):
            subprocess.run(["userdel", name], capture_output=True, check=False)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def run_as(name: str, gids: list[int], script: str) -> subprocess.CompletedProcess:
    """``script`` in a shell as system user ``name`` with only these
    supplementary groups (a server's groups)."""
    entry = pwd.getpwnam(name)
    groups = ",".join(str(g) for g in gids) if gids else None
    command = [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        f"--groups={groups}" if groups else "--clear-groups",
        "--",
        "sh",
        "-c",
        script,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, env={"HOME": entry.pw_dir}
    )


def test_a_leavers_hard_link_gives_nothing_after_hand_over(machine):
    _, homes, folder, gids = machine
    rw = gids["read-write"]
    data = Path(folder.source.path)
    home = homes / LEAVER
    # as a member: files and a directory in the folder, a hard link in the
    # home, his own ACL entry, a link out of the folder, a set-group bit
    made = run_as(
        LEAVER,
        [rw],
        f"echo mine > {data}/notes.txt && mkdir {data}/runs && "
        f"echo run > {data}/runs/1.csv && ln {data}/notes.txt {home}/keep && "
        f"setfacl -m u:{LEAVER}:rw {data}/notes.txt && "
        f"ln -s /etc/shadow {data}/runs/shadow && chmod g+s {data}/runs/1.csv",
    )
    assert made.returncode == 0, made.stderr
    other = run_as(STAYER, [rw], f"echo theirs > {data}/theirs.txt")
    assert other.returncode == 0, other.stderr
    # the hole: left the community (no group), he still writes through the link
    wrote = run_as(LEAVER, [], f"echo still >> {home}/keep")
    assert wrote.returncode == 0, wrote.stderr
    shadow_before = os.stat("/etc/shadow")
    stayer_before = os.stat(data / "theirs.txt")

    changed = hand_over(str(data), pwd.getpwnam(LEAVER).pw_uid)

    assert sorted(changed) == ["notes.txt", "runs/", "runs/1.csv", "runs/shadow"]
    folder_stat = os.stat(data)
    for relative in ("notes.txt", "runs", "runs/1.csv"):
        st = os.stat(data / relative)
        assert (st.st_uid, st.st_gid) == (folder_stat.st_uid, folder_stat.st_gid)
        assert not st.st_mode & stat.S_ISUID
    assert not os.stat(data / "runs" / "1.csv").st_mode & stat.S_ISGID
    link = os.lstat(data / "runs" / "shadow")
    assert link.st_uid == folder_stat.st_uid
    # nothing deleted, the link's target untouched, another's file untouched
    assert (data / "notes.txt").read_text() == "mine\nstill\n"
    assert os.stat("/etc/shadow") == shadow_before
    assert os.stat(data / "theirs.txt") == stayer_before
    # the ACL is the folder's: his own entry is gone, the groups' are there
    fd = os.open(data / "notes.txt", os.O_RDONLY)
    try:
        acl = nofollow.read_acl(fd, nofollow.ACCESS_XATTR)
    finally:
        os.close(fd)
    assert (nofollow.USER, pwd.getpwnam(LEAVER).pw_uid) not in acl
    assert acl[(nofollow.GROUP, rw)] == 0o6
    assert acl[(nofollow.GROUP, gids["read-only"])] == 0o4
    # the hard link gives him nothing now
    wrote = run_as(LEAVER, [], f"echo again >> {home}/keep")
    assert wrote.returncode != 0 and "Permission denied" in wrote.stderr
    read = run_as(LEAVER, [], f"cat {home}/keep")
    assert read.returncode != 0
    # the members still read and write it, through the folder's group
    member = run_as(STAYER, [rw], f"echo member >> {data}/notes.txt")
    assert member.returncode == 0, member.stderr
    reader = run_as(STAYER, [gids["read-only"]], f"cat {data}/runs/1.csv")
    assert reader.returncode == 0 and reader.stdout == "run\n"
