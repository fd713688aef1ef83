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
from traitlets.config import Config

from .._validation import KeyPath
from ..communities import Communities
from ..profiles import UNLISTED_SUFFIX, check_default_profiles, check_profile_list
from .options import CommunityOptionsMixin

PROFILE_LIST_PATH = KeyPath("KubeSpawner.profile_list")


class CommunityKubeSpawner(CommunityOptionsMixin, KubeSpawner):
    """KubeSpawner whose profiles follow the user's communities."""

    @classmethod
    def check_hub_config(cls, config: Config, communities: Communities) -> None:
        """Start-up checks of the profile list (called by the authenticator)."""
        profile_list = _configured_value(cls, config, "profile_list", [])
        if callable(profile_list):
            return
        check_profile_list(profile_list, PROFILE_LIST_PATH)
        check_default_profiles(communities, profile_list)

    def _configured(self):
        # The configured list, kept before this instance's profile_list is
        # replaced by the user's own list in apply_profile().
        try:
            return self._hubext_configured_profiles
        except AttributeError:
            self._hubext_configured_profiles = self.profile_list
            return self._hubext_configured_profiles

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
        for entry in _chosen_entries(profile, user_options):
            override = entry.get("kubespawner_override") or {}
            for key, value in list(override.items()):
                if callable(value):
                    result = value(self)
                    if inspect.isawaitable(result):
                        result = await result
                    override[key] = result
        # Instance-level: KubeSpawner's load_user_options() in start() reads it.
        self.profile_list = visible


def _chosen_entries(profile: dict, user_options: dict) -> list[dict]:
    entries = [profile]
    for name, option in (profile.get("profile_options") or {}).items():
        if name + UNLISTED_SUFFIX in user_options:
            entries.append(option.get("unlisted_choice") or {})
        elif name in user_options:
            entries.append(option["choices"][user_options[name]])
    return entries


def _configured_value(cls, config: Config, name: str, default):
    """A trait's configured value for ``cls``, as traitlets resolves it (by MRO)."""
    value = default
    for klass in reversed(cls.__mro__):
        section = config.get(klass.__name__) if hasattr(config, "get") else None
        if section is not None and name in section:
            value = section[name]
    return value
