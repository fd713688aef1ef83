"""What both hubext spawners share about storage: homes, folders, variables.

The user's communities come from the hub: their JupyterHub groups (members)
and their ``community-admin-<slug>`` roles (admins), both kept by
:class:`hubext.CommunityAuthenticator`. There is no second list to maintain.
"""

from __future__ import annotations

from traitlets import HasTraits, Unicode, validate
from traitlets.config import Config

from .._validation import ConfigError
from ..communities import ROOT_PATH, Communities
from ..config_reading import configured_section, configured_value
from ..environment import environment_for
from ..roles import community_of_admin_role
from ..shared_data import Mount, check_home, folder_paths, mounts_for, path_problem

#: Where the user's home is inside a server unless configured (z2jh's default).
DEFAULT_HOME_MOUNT_PATH = "/home/jovyan"


def check_home_mount_path(value, key: str) -> None:
    problem = path_problem(value) if isinstance(value, str) else "must be a string"
    if problem or value == "/":
        raise ConfigError(key, f"{problem or 'must not be /'}, got {value!r}")


class SharedDataMixin(HasTraits):
    """Per-community shared folders and environment for a spawner.

    The class using it provides ``communities`` (a
    :class:`~hubext.communities.Communities`).
    """

    home_mount_path = Unicode(
        DEFAULT_HOME_MOUNT_PATH,
        config=True,
        help="""
        Where the user's home is inside the server (z2jh:
        ``singleuser.storage.homeMountPath``). Shared folders may be mounted
        inside it (so JupyterLab's file browser shows them), never on it or
        above it: the hub refuses to start otherwise.

        Example::

            c.CommunityKubeSpawner.home_mount_path = "/home/jovyan"

        .. versionadded:: 0.1
        """,
    )

    @validate("home_mount_path")
    def _validate_home_mount_path(self, proposal):
        check_home_mount_path(
            proposal["value"], f"{type(self).__name__}.home_mount_path"
        )
        return proposal["value"]

    def community_access(self) -> tuple[set[str], set[str]]:
        """``(member of, admin of)``: community slugs, from the hub's groups and roles."""
        member_of = {g.name for g in self.user.groups}
        admin_of = {
            community_of_admin_role(role.name)
            for role in getattr(self.user, "roles", ())
        } - {None}
        known = set(self.communities.registry)
        return member_of & known, admin_of & known

    def shared_mounts(self) -> list[Mount]:
        """The user's shared folders with their access, in a fixed order."""
        member_of, admin_of = self.community_access()
        return mounts_for(self.communities, member_of, admin_of)

    def get_env(self):
        env = super().get_env()
        member_of, _ = self.community_access()
        env.update(environment_for(self.communities, member_of))
        return env

    @classmethod
    def check_shared_data(cls, config: Config, communities: Communities) -> None:
        """Start-up check: no shared folder on or above the home."""
        home = cls.configured_home_mount_path(config)
        check_home(
            folder_paths(communities.registry, ROOT_PATH),
            home,
            cls._home_mount_path_key(config),
        )

    @classmethod
    def configured_home_mount_path(cls, config: Config) -> str:
        """``home_mount_path`` as configured for ``cls``, checked (start-up)."""
        home = configured_value(cls, config, "home_mount_path", DEFAULT_HOME_MOUNT_PATH)
        check_home_mount_path(home, cls._home_mount_path_key(config))
        return home

    @classmethod
    def _home_mount_path_key(cls, config: Config) -> str:
        # As the admin wrote it (c.KubeSpawner.home_mount_path applies too).
        section = configured_section(cls, config, "home_mount_path") or cls.__name__
        return f"{section}.home_mount_path"
