"""hubext-local: single-user servers as local processes, for one machine.

The embedded default for trying hubext and for its end-to-end tests. It has
two modes:

- ``run_as_system_users = False`` (default): every server runs as the hub's
  own system user, in a per-user home under :attr:`home_root`. Nothing is
  isolated between users: use it for a demo or a test, not for real people.
- ``run_as_system_users = True``: JupyterHub's LocalProcessSpawner behaviour,
  each server runs as the system user of the same name (the hub runs as root).
"""

from __future__ import annotations

import os
import sys

from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import Bool, List, Unicode, default, validate
from traitlets.config import Config

from .._validation import ConfigError, ErrorCollector, KeyPath
from ..communities import ROOT_PATH, Communities
from ..config_reading import configured_value
from ..kube_identity import check_not_on_kubernetes
from ..profile_tree import profile_entries
from ..profiles import check_default_profiles, check_profile_list
from ..shared_data import (
    check_host_paths_hold_no_home,
    check_host_paths_outside,
    contains,
    folder_paths,
)
from ..slugs import safe_slug
from . import local_shared, nofollow
from .limits import LimitsMixin
from .options import CommunityOptionsMixin
from .shared import SharedDataMixin
from .usage import UsageRecordingMixin

PROFILE_LIST_PATH = KeyPath("LocalCommunitySpawner.profile_list")

#: Spawner traits a profile may override on this spawner (``kubespawner_override``).
LOCAL_OVERRIDES = (
    "environment",
    "cmd",
    "args",
    "default_url",
    "mem_limit",
    "cpu_limit",
    "mem_guarantee",
    "cpu_guarantee",
)


def check_local_overrides(profile_list, path: KeyPath = PROFILE_LIST_PATH) -> None:
    """Only generic Spawner traits can be overridden on a local spawner."""

    def check(override, opath):
        for key in override or {}:
            if key not in LOCAL_OVERRIDES:
                raise ConfigError(
                    opath.attr(key),
                    f"cannot be overridden on hubext-local; it takes {', '.join(LOCAL_OVERRIDES)}",
                )

    for entry, epath in profile_entries(list(profile_list), path):
        check(entry.get("kubespawner_override"), epath.attr("kubespawner_override"))


def system_homes() -> dict[str, str]:
    """``{home directory: user name}`` of the machine's users (not ``/``)."""
    import pwd

    return {u.pw_dir: u.pw_name for u in pwd.getpwall() if u.pw_dir not in ("", "/")}


class LocalCommunitySpawner(
    UsageRecordingMixin,
    LimitsMixin,
    SharedDataMixin,
    CommunityOptionsMixin,
    LocalProcessSpawner,
):
    """Local single-user servers that know the hub's communities.

    Shared folders (``host_path`` sources only) appear in each home as links,
    at the place their ``mount_path`` has relative to ``home_mount_path``.
    With ``run_as_system_users`` and the hub running as root, access to them
    is enforced by the operating system (see
    :mod:`hubext.spawners.local_shared`); otherwise it is not.
    """

    profile_list = List(
        config=True,
        help="""
        Server options, in KubeSpawner's ``profile_list`` format, with
        ``allowed_groups`` (community slugs: checked at start-up) on a
        profile, a choice, or an ``unlisted_choice``; no ``allowed_groups``
        means everyone. Each person sees, and may start, only what their
        groups allow; every submission is validated before the server starts.

        On this spawner, ``kubespawner_override`` may set the generic
        Spawner traits ``environment`` (merged), ``cmd``, ``args``,
        ``default_url``, ``mem_limit``, ``cpu_limit``, ``mem_guarantee``
        and ``cpu_guarantee``. The resources are not enforced on one
        machine (the server gets them as ``MEM_LIMIT``, ``CPU_GUARANTEE``,
        ... variables); the usage ledger records them and community limits
        count them, as on Kubernetes.

        Example::

            c.LocalCommunitySpawner.profile_list = [
                {"display_name": "Standard", "slug": "standard", "default": True},
                {
                    "display_name": "Ocean model run",
                    "slug": "ocean",
                    "allowed_groups": ["ocean-lab"],
                    "kubespawner_override": {"environment": {"OMP_NUM_THREADS": "8"}},
                },
            ]

        .. versionadded:: 0.1
        """,
    )

    @validate("profile_list")
    def _validate_profile_list(self, proposal):
        check_profile_list(proposal["value"], PROFILE_LIST_PATH)
        check_local_overrides(proposal["value"])
        return proposal["value"]

    @classmethod
    def check_hub_config(cls, config: Config, communities: Communities) -> None:
        """Start-up checks of this spawner's configuration (called by the authenticator).

        Independent checks are all made and their errors raised together.
        """
        errors = ErrorCollector()
        with errors.check():
            check_not_on_kubernetes(
                communities, ROOT_PATH, f"hubext-local ({cls.__name__})"
            )
        with errors.check():
            cls.check_limits_config(config, communities)
        with errors.check():
            check_default_profiles(communities, cls(config=config).profile_list)
        home = None
        with errors.check():
            cls.check_shared_data(config, communities)
            # Folders are placed in the home only when it is a home they
            # leave visible (the check above).
            home = cls.configured_home_mount_path(config)
        folders = [f for c in communities for f in c.shared_data]
        for community in communities:
            for i, folder in enumerate(community.shared_data):
                path = ROOT_PATH[community.slug].attr("shared_data")[i]
                if folder.source.kind != "host_path":
                    errors.add(
                        ConfigError(
                            path.attr("source"),
                            "hubext-local can use only host_path sources, "
                            f"not {folder.source.kind}",
                        )
                    )
                elif home is not None and (
                    not contains(home, folder.mount_path) or folder.mount_path == home
                ):
                    errors.add(
                        ConfigError(
                            path.attr("mount_path"),
                            f"{folder.mount_path!r} must be inside {cls.__name__}."
                            f"home_mount_path ({home!r}): hubext-local links shared "
                            "folders into the home",
                        )
                    )
        run_as = configured_value(cls, config, "run_as_system_users", False)
        if run_as and config.get("JupyterHub", {}).get("internal_ssl", False):
            # LocalProcessSpawner.move_certs copies the certificates into the
            # user's home and chowns them as root, following links there.
            errors.add(
                ConfigError(
                    "JupyterHub.internal_ssl",
                    f"cannot be used with {cls.__name__}.run_as_system_users: "
                    "JupyterHub would write the certificates into each home as root",
                )
            )
        with errors.check():
            if folders and run_as:
                check_host_paths_hold_no_home(
                    folder_paths(communities.registry, ROOT_PATH), system_homes()
                )
            if folders and not run_as:
                home_root = cls(config=config).home_root
                check_host_paths_outside(
                    folder_paths(communities.registry, ROOT_PATH),
                    home_root,
                    f"{cls.__name__}.home_root",
                )
        errors.raise_errors()

    def configured_profile_list(self) -> list:
        return self.profile_list

    def apply_profile(self, profile: dict, user_options: dict, visible: list) -> None:
        for override in self.selected_overrides(profile, user_options):
            for key, value in override.items():
                if key == "environment":
                    self.environment = {**self.environment, **value}
                else:
                    setattr(self, key, value)

    run_as_system_users = Bool(
        False,
        config=True,
        help="""
        Run each server as the system user with the same name as the hub user
        (the hub must run as root and the users must exist), as JupyterHub's
        LocalProcessSpawner does.

        When False (the default), every server runs as the hub's own system
        user, with its working directory and ``$HOME`` in
        ``home_root/<user slug>``. Nothing is then isolated between users.

        .. versionadded:: 0.1
        """,
    )

    home_root = Unicode(
        "hubext-homes",
        config=True,
        help="""
        Directory that holds the per-user homes when ``run_as_system_users``
        is False. A relative path is relative to the hub's working directory.

        Each user's home is ``home_root/<slug>``, where the slug is the
        username if it is already lowercase letters, digits and single
        hyphens, or else a readable prefix and a hash of the username
        (see :func:`hubext.slugs.safe_slug`): stable and collision-free.

        Example::

            c.LocalCommunitySpawner.home_root = "/srv/hubext/homes"

        .. versionadded:: 0.1
        """,
    )

    @validate("home_root")
    def _validate_home_root(self, proposal):
        value = proposal["value"]
        if not value or "\0" in value:
            raise ValueError(
                f"LocalCommunitySpawner.home_root must be a directory path, got {value!r}"
            )
        return os.path.abspath(value)

    @default("cmd")
    def _cmd_default(self):
        # The hub's own Python, so a hub installed in a virtualenv finds
        # jupyterhub-singleuser without PATH changes.
        return [sys.executable, "-m", "jupyterhub.singleuser"]

    @property
    def home_dir(self) -> str:
        """The user's home when not running as system users."""
        return os.path.join(os.path.abspath(self.home_root), safe_slug(self.user.name))

    def get_args(self):
        args = super().get_args()
        if not self.run_as_system_users and os.geteuid() == 0:
            # A hub run as root starts the servers as root in this mode.
            args.append("--allow-root")
        return args

    @property
    def enforces_shared_access(self) -> bool:
        """True when the operating system enforces shared-folder access."""
        return self.run_as_system_users and os.geteuid() == 0

    def _server_home(self) -> str:
        if self.run_as_system_users:
            import pwd

            return pwd.getpwnam(self.user.name).pw_dir
        return self.home_dir

    def prepare_shared_folders(self):
        """Create the user's folders; return ``(extra gids, (links, stale links))``."""
        mounts = self.shared_mounts()
        enforce = self.enforces_shared_access
        home = self._server_home()
        gids = set()
        for mount in mounts:
            if contains(mount.folder.source.path, home):
                self._refuse(mount, f"it holds the home {home}")
            try:
                groups = local_shared.prepare_folder(mount.folder, enforce=enforce)
            except nofollow.UnsafePath as e:
                self._refuse(mount, str(e))
            if enforce:
                gids.add(groups[mount.access])
                self._warn_shared_filesystem(mount.folder, home)
        links = local_shared.link_plan(
            home,
            self.home_mount_path,
            mounts,
            [f for c in self.communities for f in c.shared_data],
        )
        self.log.info(
            "hubext: %s gets shared folders %s (access %s)",
            self._log_name,
            ", ".join(f"{m.folder.key}:{m.access}" for m in mounts) or "none",
            "enforced" if enforce else "NOT enforced: servers share one system user",
        )
        return gids, links

    #: ``(folder key, device)`` pairs already warned about by this hub process.
    _warned_filesystems: set = set()

    def _warn_shared_filesystem(self, folder, home: str) -> None:
        """Say once per folder and mount that hard links can outlive access.

        ``link(2)`` fails (EXDEV) between two mounts, even two bind mounts of
        one filesystem, so a folder on another mount than the home is safe.
        """
        mount = local_shared.mount_point(folder.source.path)
        if mount is None or mount != local_shared.mount_point(home):
            return
        if (folder.key, mount) in self._warned_filesystems:
            return
        self._warned_filesystems.add((folder.key, mount))
        self.log.warning(
            "hubext: shared folder %s (%s) is on the mount %s of the home %s: "
            "a hard link kept in a home keeps its owner's own files of the folder "
            "after removal from the community; put the shared folders on another "
            "mount (docs: shared-data, what is enforced where)",
            folder.key,
            folder.source.path,
            mount,
            home,
        )

    def _refuse(self, mount, problem: str):
        """Fail the spawn with a message for the person and the log (no traceback)."""
        message = (
            f"Cannot prepare the shared folder {mount.folder.key} "
            f"({mount.folder.source.path}): {problem}. Ask the hub's admins."
        )
        self.log.error("hubext: %s: %s", self._log_name, message)
        raise web.HTTPError(409, "%s", message)

    def make_preexec_fn(self, name):
        if self.run_as_system_users:
            gids, links = self._hubext_shared
            return local_shared.system_user_preexec(name, gids, links)
        home = self.home_dir
        no_new_privileges = local_shared.no_new_privileges_fn()

        def preexec():
            os.chdir(home)
            no_new_privileges()

        return preexec

    def user_env(self, env):
        if self.run_as_system_users:
            return super().user_env(env)
        env["USER"] = self.user.name
        env["HOME"] = self.home_dir
        return env

    async def move_certs(self, paths):
        if self.run_as_system_users:
            return await super().move_certs(paths)
        return paths

    def _make_home(self) -> None:
        """Create ``home_root/<slug>``; as root, following no link on the way."""
        if os.geteuid() != 0:
            os.makedirs(self.home_dir, mode=0o700, exist_ok=True)
            return
        try:
            fd, _ = nofollow.open_dir(self.home_dir, create_mode=0o755, last_mode=0o700)
        except nofollow.UnsafePath as e:
            message = f"Cannot prepare the home of {self.user.name}: {e}"
            self.log.error("hubext: %s", message)
            raise web.HTTPError(409, "%s", message) from None
        os.close(fd)

    async def start(self):
        if not self.run_as_system_users:
            self._make_home()
        self._hubext_shared = self.prepare_shared_folders()
        if not self.run_as_system_users:
            for problem in local_shared.place_links(*self._hubext_shared[1]):
                self.log.warning("hubext: %s: %s", self._log_name, problem)
        return await super().start()
