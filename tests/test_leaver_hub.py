"""A member by invitation removed from a community with a shared folder, on one
machine with real system users: through the real hub and OIDC provider, his
server stops, and his files in the folder become the folder's, so that the
hard link he kept in his home gives him nothing (recorded in the audit log)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from hubext.spawners.local_shared import group_name

from .harness import running_hub
from .hubclient import wait_until
from .test_invitations_hub import CONFIG, _audit, _confirm, _groups, _invite, _iso
from .test_leaver_files import run_as
from .test_shared_local import _folders, _let_users_run_python, _remove_user, run

pytestmark = pytest.mark.e2e

LEAD, IVY = "hxl-lead", "hxl-ivy"
PEOPLE = {LEAD: ["ocean-lab", "ocean-lab-admins"], IVY: ["astro-101"]}


@pytest.fixture
def machine():
    assert os.geteuid() == 0, "this test creates system users: run it as root"
    root = Path(tempfile.mkdtemp(prefix="hubext-leaver-hub-"))
    root.chmod(0o755)
    homes, shared = root / "homes", root / "shared"
    homes.mkdir(mode=0o755)
    for name in PEOPLE:
        _remove_user(name)
        run("useradd", "--no-create-home", "--home-dir", str(homes / name), name)
        (homes / name).mkdir(mode=0o700)
        os.chown(homes / name, pwd.getpwnam(name).pw_uid, pwd.getpwnam(name).pw_gid)
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
                subprocess.run(
                    ["groupdel", group_name(folder, access)],
                    check=False,
                    capture_output=True,
                )
        shutil.rmtree(root, ignore_errors=True)


def test_a_removed_members_hard_link_gives_nothing(tmp_path_factory, machine):
    from .test_shared_local import hub_config

    config = CONFIG + hub_config(machine["shared"])
    accounts = {
        name: {"preferred_username": name, "groups": groups}
        for name, groups in PEOPLE.items()
    }
    with running_hub(tmp_path_factory, "leaver-hub", config, accounts) as hub:
        lead = hub.signed_in(LEAD)
        made = _invite(
            lead, kind="code", max_uses=1, expires_at=_iso(timedelta(days=1))
        )
        ivy = hub.signed_in(IVY)
        assert "You are now a member" in _confirm(ivy, made["code"]).text
        assert _groups(hub, IVY) == ["astro-101", "ocean-lab"]
        # his server, charged to astro-101, has the workshop folder's group
        r = hub.api.request(
            "POST", f"/users/{IVY}/server", json={"profile": "standard"}
        )
        assert r.status_code in (201, 202), r.text
        hub.api.wait_for_server(IVY, timeout=90)
        workshop = machine["shared"] / "ocean-lab" / "workshop"
        rw = next(f for f in _folders(machine["shared"]) if f.name == "workshop")
        rw_gid = __import__("grp").getgrnam(group_name(rw, "read-write")).gr_gid
        home = machine["homes"] / IVY
        made = run_as(
            IVY,
            [rw_gid],
            f"echo ivy > {workshop}/ivy.txt && ln {workshop}/ivy.txt {home}/keep",
        )
        assert made.returncode == 0, made.stderr

        r = lead.api("DELETE", f"/hubext/communities/ocean-lab/members/{IVY}")
        assert r.status_code == 204, r.text
        assert wait_until(lambda: _groups(hub, IVY) == ["astro-101"], 60)
        assert wait_until(lambda: not hub.api.user(IVY)["servers"], 60)
        st = os.stat(workshop / "ivy.txt")
        assert st.st_uid == os.stat(workshop).st_uid == 0
        assert (workshop / "ivy.txt").read_text() == "ivy\n"  # nothing deleted
        wrote = run_as(IVY, [], f"echo again >> {home}/keep")
        assert wrote.returncode != 0 and "Permission denied" in wrote.stderr
        assert ("membership.files", None) in _audit(hub)
