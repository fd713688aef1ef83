"""hubext-local's shared folders: group names, links in the home, start-up checks
and root following no link (hubext.spawners.local_shared, local, nofollow)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from traitlets.config import Config

from hubext import Communities, nofollow
from hubext._validation import ConfigError
from hubext.shared_data import (
    Mount,
)
from hubext.spawners.local import LocalCommunitySpawner
from hubext.spawners.local_shared import (
    GROUP_NAME_MAX,
    group_name,
    link_path,
    link_plan,
    place_links,
)

from .shared_data_kit import (
    ENTRY,
    HOME,
    LINUX_GROUP,
    OCEAN,
    RO,
    RW,
    entry,
    folder_entry,
    ocean,
    shared_folder,
    slugs,
    source,
)

# -- 5. group names ----------------------------------------------------------------------


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


# -- root follows no link (hubext.nofollow; the suite runs as root) ------------


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
