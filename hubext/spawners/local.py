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
from traitlets import Bool, Unicode, default, validate

from ..communities import Communities
from ..slugs import safe_slug


class LocalCommunitySpawner(LocalProcessSpawner):
    """Local single-user servers that know the hub's communities."""

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
    def communities(self) -> Communities:
        """The hub's communities (validated when the hub started)."""
        try:
            return self._communities
        except AttributeError:
            self._communities = Communities(parent=self)
            return self._communities

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

    def make_preexec_fn(self, name):
        if self.run_as_system_users:
            return super().make_preexec_fn(name)
        home = self.home_dir

        def preexec():
            os.chdir(home)

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

    async def start(self):
        if not self.run_as_system_users:
            os.makedirs(self.home_dir, mode=0o700, exist_ok=True)
        return await super().start()
