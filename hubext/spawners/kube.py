"""hubext-kube: KubeSpawner with per-community profiles.

``c.KubeSpawner.profile_list`` (z2jh: ``singleuser.profileList``) stays in
KubeSpawner's format, with ``allowed_groups`` on profiles, choices and
unlisted choices. For each spawn this spawner

- computes the user's own list from their groups and gives KubeSpawner that
  list (on this spawner instance only: the configured list is never changed),
  so the form, jupyterhub-fancy-profiles and KubeSpawner's own
  ``load_user_options()`` all see only what the user may use;
- validates the submission before ``start()`` (form and REST API) and hands
  KubeSpawner explicit ``user_options``;
- resolves ``kubespawner_override`` callables of the chosen profile, awaiting
  async ones (KubeSpawner 7.1 does not await them);
- refuses (403) a user with no profile, also when a callable
  ``profile_list`` returns an empty list for them.
"""

from __future__ import annotations

import inspect

from jupyterhub.utils import maybe_future
from kubespawner import KubeSpawner
from traitlets import Bool, Dict, Unicode, validate
from traitlets.config import Config

from .._validation import ConfigError, ErrorCollector, KeyPath
from ..communities import ROOT_PATH, Communities
from ..config_reading import configured_section, configured_value
from ..delegated import check_spawner_delegation
from ..kube_identity import (
    account_for,
    check_default_account,
    check_profile_overrides,
    names_accounts,
)
from ..kube_volumes import pod_storage, prepare_container
from ..profiles import (
    COMMUNITY_OPTION,
    check_default_profiles,
    check_profile_list,
    chosen_entries,
)
from ..shared_data import Source, check_apart_from_homes, folder_paths, parse_source
from ..usage.model import Resources
from .limits import LimitsMixin
from .options import CommunityOptionsMixin
from .shared import SharedDataMixin
from .usage import UsageRecordingMixin

PROFILE_LIST_PATH = KeyPath("KubeSpawner.profile_list")


class CommunityKubeSpawner(
    UsageRecordingMixin,
    LimitsMixin,
    SharedDataMixin,
    CommunityOptionsMixin,
    KubeSpawner,
):
    """KubeSpawner whose profiles, shared folders and homes follow the user's communities."""

    #: a community's admins offer container images (their ``self_service``)
    delegated_kind = "kube"

    @classmethod
    def check_hub_config(cls, config: Config, communities: Communities) -> None:
        """Start-up checks (called by the authenticator).

        Independent checks are all made and their errors raised together, so
        a profile error does not hide a shared-data error of the same spawner.
        """
        errors = ErrorCollector()
        with errors.check():
            cls.check_limits_config(config, communities)
        with errors.check():
            cls.check_shared_data(config, communities)
        with errors.check():
            section = (
                configured_section(cls, config, "service_account") or "KubeSpawner"
            )
            account = configured_value(cls, config, "service_account", None)
            check_default_account(communities, account, f"{section}.service_account")
        with errors.check():
            key = f"{cls.__name__}.home_storage"
            homes = _home_source(configured_value(cls, config, "home_storage", {}), key)
            if homes is not None:
                check_apart_from_homes(
                    folder_paths(communities.registry, ROOT_PATH), homes, key
                )
        profile_list = configured_value(cls, config, "profile_list", [])
        with errors.check():
            check_spawner_delegation(
                communities.registry,
                cls.delegated_kind,
                profile_list,
                str(PROFILE_LIST_PATH),
            )
        if not callable(profile_list):
            with errors.check():
                check_profile_list(profile_list, PROFILE_LIST_PATH)
                # Only a well-formed list can be checked against the communities.
                check_default_profiles(communities, profile_list)
                check_profile_overrides(communities, profile_list, PROFILE_LIST_PATH)
        errors.raise_errors()

    # -- storage --------------------------------------------------------------------

    home_storage = Dict(
        config=True,
        help="""
        Homes on shared storage: each user's home is a folder of this
        storage, mounted at ``home_mount_path``. One of
        ``{"nfs": {"server": ..., "path": ..., "sub_path": ...}}``,
        ``{"pvc": {"claim": ..., "sub_path": ...}}`` or (one node)
        ``{"host_path": "/srv/..."}``; ``sub_path`` is optional.

        The user's folder is ``<sub_path>/<user slug>``, where the slug is
        the username when it is already lowercase letters, digits and single
        hyphens, else a readable prefix, ``---`` and a hash of the username
        (:func:`hubext.slugs.safe_slug`): the same across upgrades, distinct
        for distinct users, and never able to leave the folder. A missing
        folder is created (owner ``folder_owner``, mode 700) by the
        ``hubext-prepare-folders`` init container.

        Empty (the default): hubext adds no home; use KubeSpawner's own
        per-user PVCs (z2jh ``singleuser.storage.type: dynamic``) or none.

        Example::

            c.CommunityKubeSpawner.home_storage = {
                "nfs": {"server": "nfs.example.org", "path": "/export", "sub_path": "homes"}
            }

        .. versionadded:: 0.1
        """,
    )

    @validate("home_storage")
    def _validate_home_storage(self, proposal):
        _home_source(proposal["value"], f"{type(self).__name__}.home_storage")
        return proposal["value"]

    folder_owner = Unicode(
        "1000:100",
        config=True,
        help="""
        ``uid:gid`` given to shared folders and homes that the
        ``hubext-prepare-folders`` init container creates (z2jh's default
        user ``jovyan`` is 1000:100). Existing folders are never changed.

        .. versionadded:: 0.1
        """,
    )

    @validate("folder_owner")
    def _validate_folder_owner(self, proposal):
        value = proposal["value"]
        uid, _, gid = value.partition(":") if isinstance(value, str) else ("", "", "")
        if not (uid.isdigit() and gid.isdigit()):
            raise ConfigError(
                f"{type(self).__name__}.folder_owner",
                f"must be 'uid:gid' in numbers, got {value!r}",
            )
        return value

    prepare_folders_image = Unicode(
        "",
        config=True,
        help="""
        Image of the ``hubext-prepare-folders`` init container, which needs
        only ``sh``, ``mkdir``, ``chown`` and ``chmod``. Empty (the
        default): the server's own image, so nothing more is pulled.

        .. versionadded:: 0.1
        """,
    )

    delete_pvc = Bool(
        False,
        config=True,
        help="""
        Delete the user's PersistentVolumeClaim (with
        ``singleuser.storage.type: dynamic``, their home) when the user is
        deleted from the hub.

        False here (KubeSpawner's default is True): deleting a user, by an
        admin or by the culler's ``--cull-users``, keeps their home until you
        remove it. Set True to make deleting a user delete their home.

        .. versionchanged:: 0.1
            Defaults to False, unlike KubeSpawner.
        """,
    )

    def pod_storage(self):
        """The user's shared folders and home as dict-form volumes and mounts."""
        return pod_storage(
            self.shared_mounts(),
            username=self.user.name,
            home_source=_home_source(
                self.home_storage, f"{type(self).__name__}.home_storage"
            ),
            home_mount_path=self.home_mount_path,
        )

    #: KubeSpawner applies the overrides in load_user_options(), inside start()
    usage_begins_in_start = False

    async def load_user_options(self):
        # The profile's overrides first (they may set volumes too), then the
        # user's storage merged in: dict-form, keyed by volume name.
        await super().load_user_options()
        self._apply_service_account()
        self._add_storage()
        # the resources are final: the session begins (before the pod exists)
        self.begin_usage_session_in_start()

    def _apply_service_account(self) -> None:
        """The pod's service account: its charged community's, else the configured one.

        Only when communities name accounts (:mod:`hubext.kube_identity`).
        The account is then decided here at each start, after the profile's
        overrides: no override (a callable's included) chooses it, and a
        spawner started again forgets its previous start's account.
        ``automount_service_account_token`` is left as configured
        (KubeSpawner's default mounts the token when an account is given).
        """
        if not names_accounts(self.communities):
            return
        member_of, admin_of = self.community_access()
        charged = (self.user_options or {}).get(COMMUNITY_OPTION)
        account = account_for(self.communities.registry, charged, member_of, admin_of)
        configured = configured_value(type(self), self.config, "service_account", None)
        if account is None:
            account = configured
        previous = self.__dict__.get("_hubext_service_account", configured)
        if self.service_account not in (configured, account, previous):
            self.log.warning(
                "hubext: %s: service_account %r (from a profile override or a "
                "hook) is replaced by %r: it follows the community charged",
                self._log_name,
                self.service_account,
                account,
            )
        self.service_account = self._hubext_service_account = account
        self.log.info(
            "hubext: %s (charged to %s) runs as service account %s",
            self._log_name,
            charged or "the hub-wide account",
            account or "(the namespace's default)",
        )

    def _add_storage(self) -> None:
        storage = self.pod_storage()
        if not storage.volumes:
            return
        self.volumes = {**_keyed(self.volumes), **storage.volumes}
        self.volume_mounts = {**_keyed(self.volume_mounts), **storage.volume_mounts}
        init = prepare_container(
            storage.folders,
            image=self.prepare_folders_image or self.image,
            owner=self.folder_owner,
            image_pull_policy=self.image_pull_policy,
        )
        if init is not None:
            self.init_containers = {**_keyed(self.init_containers), init["name"]: init}

    def _configured(self):
        # The configured list, kept before this instance's profile_list is
        # replaced by the user's own list in apply_profile().
        try:
            return self._hubext_configured_profiles
        except AttributeError:
            self._hubext_configured_profiles = self.profile_list
            return self._hubext_configured_profiles

    def configured_profile_object(self):
        return self._configured()

    def profile_list_is_dynamic(self) -> bool:
        return callable(self._configured())

    async def configured_profile_list(self) -> list:
        configured = self._configured()
        if callable(configured):
            return list(await maybe_future(configured(self)) or [])
        return self._sorted_dict_values(configured)

    def render_profiles_form(self, profiles: list[dict]) -> str:
        if self.profile_form_template or self.additional_profile_form_template_paths:
            # The admin's own template: KubeSpawner renders it, with our list.
            return self._render_options_form(profiles)
        return super().render_profiles_form(profiles)

    async def apply_profile(
        self, profile: dict, user_options: dict, visible: list
    ) -> None:
        """Give KubeSpawner the user's own list, with override callables resolved."""
        for entry in chosen_entries(profile, user_options):
            override = entry.get("kubespawner_override") or {}
            for key, value in list(override.items()):
                if callable(value):
                    result = value(self)
                    if inspect.isawaitable(result):
                        result = await result
                    override[key] = result
        # Instance-level: KubeSpawner's load_user_options() in start() reads it.
        self.profile_list = visible
        # what start() will apply, for the limits checked before it
        self._hubext_overrides = self.selected_overrides(profile, user_options)

    def applied_resources(self) -> Resources | None:
        """The resources after the chosen overrides, before start() applies them."""
        return self.resources_after(getattr(self, "_hubext_overrides", ()))


def _keyed(value) -> dict:
    """A KubeSpawner list-or-dict trait value as a dict (list order kept in keys)."""
    if isinstance(value, dict):
        return dict(value)
    return {
        f"{i:03d}-{item.get('name', '')}": item for i, item in enumerate(value or [])
    }


def _home_source(value, key: str) -> Source | None:
    """The parsed ``home_storage`` (None when empty); ConfigError naming ``key``."""
    return parse_source(value, KeyPath(key)) if value else None
