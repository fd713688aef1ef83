"""Per-community server options, shared by hubext's spawners.

:class:`CommunityOptionsMixin` gives a spawner

- the user's own profile list, computed from their JupyterHub groups (their
  communities) without touching the configured list;
- KubeSpawner's options form, rendered from that list;
- validation of every submission before the server starts: the HTML form
  (``options_from_form``) and the REST API (through JupyterHub's
  ``apply_user_options`` hook), with HTTP 400 or 403 and a message naming the
  option;
- a 403 page for a user who may use no profile at all.

The profiles are the configured ones followed by the environments the
communities' admins stored (:mod:`hubext.spawners.delegation`), read at
each form and each spawn; both kinds go through the same code from there.
The spawner then starts from explicit, validated ``user_options``: the
profile and every option's choice.
"""

from __future__ import annotations

import collections
import copy
import functools
import logging
import time
from typing import ClassVar

from jinja2 import ChoiceLoader, Environment, PackageLoader
from jupyterhub.utils import maybe_future
from tornado import web
from tornado.log import app_log
from traitlets import Bool, HasTraits, Unicode, default

from ..browser_pattern import browser_pattern
from ..communities import Communities
from ..config_reading import configured_value
from ..profile_tree import Kind, options_of, walk
from ..profiles import (
    COMMUNITY_OPTION,
    MAX_UNLISTED_LENGTH,
    UNLISTED_SUFFIX,
    OptionsError,
    charge_candidates,
    check_profile_list,
    choose_charged,
    chosen,
    find_profile,
    initialize_profile_list,
    validate_user_options,
    visible_profile_list,
)
from .delegation import (
    NONE,
    EnvironmentProfiles,
    StoredEnvironments,
    delegating_communities,
)


@functools.cache
def _form_template():
    """KubeSpawner's form template, compiled once."""
    env = Environment(loader=ChoiceLoader([PackageLoader("kubespawner", "templates")]))
    # keep the admin's order of profiles and options in |tojson output
    env.policies["json.dumps_kwargs"] = {"sort_keys": False}
    return env.get_template("form.html")


def options_http_error(error: OptionsError) -> web.HTTPError:
    """An HTTPError that JupyterHub shows with our message, as is."""
    http_error = web.HTTPError(error.status, "%s", error.message)
    # JupyterHub's spawn page and error page show this text to the person.
    http_error.jupyterhub_message = error.message
    # hubext has logged it in one line; see _OneLineRefusals
    refused(http_error)
    return http_error


#: The texts of the latest refusals (what JupyterHub's own error lines
#: about them contain), for :class:`_OneLineRefusals`.
_recent_refusals: collections.deque[str] = collections.deque(maxlen=256)


def refused(error: Exception) -> Exception:
    """Mark ``error``, a refusal hubext has logged in one line, and return it.

    JupyterHub logs an error raised while it starts a server again, at
    ERROR level, sometimes with a traceback (``Failed to spawn
    single-user server with form``, ``Not starting <user>'s server``,
    ``Error starting ...``): a person's refused choice or a community's
    spent limit is not a hub error. :class:`_OneLineRefusals` drops those
    lines: the records whose exception is marked, and the ERROR records of
    the hub's logger that quote a marked refusal.
    """
    error.hubext_refusal = True
    _recent_refusals.append(str(error))
    return error


class _OneLineRefusals(logging.Filter):
    """Drop JupyterHub's error lines and tracebacks of a refusal hubext logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if getattr(error, "hubext_refusal", False):
            return False
        if record.levelno >= logging.ERROR and _recent_refusals:
            text = record.getMessage()
            return not any(refusal in text for refusal in _recent_refusals)
        return True


def install_one_line_refusals(log: logging.Logger | logging.LoggerAdapter) -> None:
    """Install :class:`_OneLineRefusals` where JupyterHub logs a spawn's errors, once.

    On ``log`` (the hub's logger, its handlers' and spawners') and on
    tornado's application logger, which JupyterHub's ``User`` logs with
    (a logger's filters do not see its children's records).
    """
    for logger in (getattr(log, "logger", log), app_log):  # a LoggerAdapter's logger
        if not any(isinstance(f, _OneLineRefusals) for f in logger.filters):
            logger.addFilter(_OneLineRefusals())


def form_profile_list(profiles: list[dict]) -> list[dict]:
    """The list the form renders: each ``validation_regex`` as a browser pattern.

    KubeSpawner's template puts ``validation_regex`` in the free-text
    field's ``pattern`` attribute; a Python regex there is often not a valid
    browser pattern (``v`` flag). It becomes its translation, or is left out
    when it has none (the hub checks every value anyway).
    """
    rendered = copy.deepcopy(profiles)
    for at in walk(rendered):
        if at.kind is Kind.UNLISTED_CHOICE and at.entry.get("validation_regex"):
            at.entry["validation_regex"] = browser_pattern(at.entry["validation_regex"])
    return rendered


def resubmitted_options(profiles: list[dict], submitted: dict) -> dict:
    """What a refused form submission chose and typed, to show it again.

    Only what the form can show: a profile of the person's list, choices it
    offers, and free text (at most MAX_UNLISTED_LENGTH characters).
    """
    slug = submitted.get("profile")
    profile = find_profile(profiles, slug) if isinstance(slug, str) else None
    if profile is None:
        return {}
    shown = {"profile": slug}
    for at in options_of(profile):
        name, option = at.key, at.entry
        text = submitted.get(name + UNLISTED_SUFFIX)
        choice = submitted.get(name)
        if isinstance(text, str) and (option.get("unlisted_choice") or {}).get(
            "enabled"
        ):
            shown[name + UNLISTED_SUFFIX] = text[:MAX_UNLISTED_LENGTH]
        elif isinstance(choice, str) and choice in (option.get("choices") or {}):
            shown[name] = choice
    return shown


class CommunityOptionsMixin(HasTraits):
    """Profiles filtered by community, validated before start.

    The class using it provides ``configured_profile_list()`` (the full,
    configured list; may be async) and ``apply_profile(profile, user_options)``,
    and says in :attr:`delegated_kind` which environments of communities it
    runs.
    """

    #: The environments a community's admins may offer on this spawner:
    #: ``"kube"`` (container images), ``"local"`` (software environments on
    #: the machine), or None (none). The console reads it from the hub's
    #: ``spawner_class``.
    delegated_kind: ClassVar[str | None] = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # traitlets gives each spawner a deep copy of the configured list:
        # the configuration's own object, the same for every spawner of the
        # hub, keys the class's cache of the initialized list
        if "profile_list" not in kwargs:
            raw = configured_value(type(self), self.config, "profile_list", None)
            if raw is not None:
                self._hubext_loaded_profile_list = (self.profile_list, raw)

    def configured_profile_object(self):
        """The configured list as this spawner holds it (may be a callable)."""
        return self.profile_list

    def configured_profile_key(self):
        """What the configured list is, for the class's cache: the
        configuration's object while this spawner holds the copy it was
        given, else its own."""
        current = self.configured_profile_object()
        loaded = self.__dict__.get("_hubext_loaded_profile_list")
        return loaded[1] if loaded is not None and loaded[0] is current else current

    admins_see_all_profiles = Bool(
        True,
        config=True,
        help="""
        Hub admins see and may start every profile, whatever its
        ``allowed_groups``. Set False to give admins only the profiles of
        their communities.

        .. versionadded:: 0.1
        """,
    )

    no_profile_message = Unicode(
        "Your communities ({communities}) have no server options on this hub, "
        "so you cannot start a server. Ask the administrators of your "
        "community or of this hub.",
        config=True,
        help="""
        The 403 message for a user allowed no profile at all.
        ``{communities}`` is replaced by their communities (or "none").

        .. versionadded:: 0.1
        """,
    )

    charge_option_label = Unicode(
        "Usage charged to",
        config=True,
        help="""
        Label of the choice of community a server is charged to, shown on
        the form for a profile that several of the user's communities offer
        (see the usage ledger).

        Example::

            c.CommunityKubeSpawner.charge_option_label = "Charge to"

        .. versionadded:: 0.1
        """,
    )

    @property
    def communities(self) -> Communities:
        """The hub's communities (validated when the hub started).

        Parsed once per configuration: every spawner of a hub shares one
        configuration, so the parsed registry is kept on the spawner class
        and reused while the configured value is the same object.
        """
        try:
            return self._communities
        except AttributeError:
            pass
        raw = configured_value(Communities, self.config, "communities", None)
        cls = type(self)
        cached = cls.__dict__.get("_hubext_communities")
        if raw is not None and cached is not None and cached[0] is raw:
            self._communities = cached[1]
        else:
            # not parent=self: the class keeps it, not this spawner
            self._communities = Communities(config=self.config, log=self.log)
            cls._hubext_communities = (raw, self._communities)
        return self._communities

    # -- the user's list ----------------------------------------------------------

    def user_groups(self) -> list[str]:
        return sorted(g.name for g in self.user.groups)

    def default_profile_for(self, groups) -> str | None:
        """The default of the user's first community that has one.

        "First" is the order of ``c.Communities.communities``. A
        community's default is the environment its admins made the default,
        else its configured ``default_profile``.
        """
        member_of = set(groups)
        stored = self.__dict__.get("_hubext_environments", NONE).defaults
        for community in self.communities:
            if community.slug not in member_of:
                continue
            default = stored.get(community.slug) or community.default_profile
            if default:
                return default
        return None

    async def uses_profiles(self) -> bool:
        """False when no profile list is configured at all (a plain spawner)."""
        configured = await maybe_future(self.configured_profile_list())
        return bool(configured) or self.profile_list_is_dynamic()

    def profile_list_is_dynamic(self) -> bool:
        """A callable profile list: an empty result then means "no profile"."""
        return False

    async def full_profile_list(self) -> list[dict]:
        """The initialized list: configured, then the communities' environments.

        Shared; never modify it.
        """
        configured = await maybe_future(self.configured_profile_list())
        environments = await self.environment_profiles()
        # for the defaults and the checks of this spawn
        self._hubext_environments = environments
        # the environments' profiles come initialized, without a default
        if self.profile_list_is_dynamic():
            return [*initialize_profile_list(configured), *environments.profiles]
        # A configured list is fixed for the hub's lifetime: initialized once
        # per spawner class; the stored environments change with their
        # versions: the merged list is kept per set of versions (the
        # class's own caches).
        cls = type(self)
        key = self.configured_profile_key()
        initialized = cls.__dict__.get("_hubext_initialized")
        if initialized is None or initialized[0] is not key:
            initialized = (key, initialize_profile_list(configured))
            cls._hubext_initialized = initialized
        if not environments.profiles:
            return initialized[1]
        merged = cls.__dict__.get("_hubext_merged")
        if (
            merged is None
            or merged[0] is not initialized
            or merged[1] is not environments
        ):
            merged = (
                initialized,
                environments,
                [*initialized[1], *environments.profiles],
            )
            cls._hubext_merged = merged
        return merged[2]

    # -- the communities' own environments ----------------------------------------

    def check_environment_profiles(self, profiles: list, path) -> None:
        """Check the profiles made of a community's environments, as the
        configured list is checked (ConfigError); a spawner adds its own."""
        check_profile_list(profiles, path)

    async def environment_profiles(self) -> EnvironmentProfiles:
        """The environments the communities' admins stored, as profiles.

        None without a :attr:`delegated_kind` or a community whose admins
        may offer environments (then the delegated state is not read).
        """
        kind = self.delegated_kind
        if kind is None:
            return NONE
        cls = type(self)
        communities = self.communities
        found = cls.__dict__.get("_hubext_delegating")
        if found is None or found[0] is not communities:
            found = (communities, delegating_communities(communities))
            cls._hubext_delegating = found
        if not found[1]:
            return NONE
        reader = cls.__dict__.get("_hubext_stored_environments")
        if reader is None:
            reader = cls._hubext_stored_environments = StoredEnvironments()
        return await reader.profiles(
            self, found[1], kind, self.check_environment_profiles
        )

    async def check_chosen_environment(self, options: dict) -> None:
        """More checks of a community's environment chosen (``options`` explicit).

        Raise an HTTPError (made with :func:`options_http_error`) to refuse
        it; hubext-local checks the software environment on the machine.
        """

    async def visible_profiles(self, full: list[dict] | None = None) -> list[dict]:
        """This user's profile list (a new list; the configuration is untouched)."""
        groups = self.user_groups()
        return visible_profile_list(
            await self.full_profile_list() if full is None else full,
            groups,
            see_all=bool(self.user.admin and self.admins_see_all_profiles),
            default_profile=self.default_profile_for(groups),
        )

    def no_profile_error(self) -> web.HTTPError:
        """The 403 for a person whose communities have no profile."""
        communities = ", ".join(self.user_groups()) or "none"
        return options_http_error(
            OptionsError(403, self.no_profile_message.format(communities=communities))
        )

    # -- the form ------------------------------------------------------------------

    def render_profiles_form(self, profiles: list[dict]) -> str:
        # After a refusal, the form shows what was submitted; else the last
        # options used.
        submitted_at, submitted = self.__dict__.pop("_hubext_submitted", (0, None))
        # JupyterHub renders the form again in the request that was refused;
        # a submission from longer ago (never shown again) is forgotten
        if submitted is not None and time.monotonic() - submitted_at < 60:
            selected = resubmitted_options(profiles, submitted)
        else:
            selected = self._preselect(profiles)
        return _form_template().render(
            profile_list=form_profile_list(profiles), user_options=selected
        )

    def _preselect(self, profiles) -> dict:
        """Last options, if still valid for this user (else none).

        The community charged last time is kept only where the form offers
        a choice of community.
        """
        last = dict(self.user_options or {})
        profile = find_profile(profiles, last.get("profile"))
        if COMMUNITY_OPTION not in ((profile or {}).get("profile_options") or {}):
            last.pop(COMMUNITY_OPTION, None)
        try:
            return validate_user_options(profiles, profiles, last)
        except OptionsError:
            return {}

    async def community_options_form(self, spawner=None):
        if not await self.uses_profiles():
            return ""
        full = await self.full_profile_list()
        profiles = await self.visible_profiles(full)
        if not profiles:
            raise self.no_profile_error()
        return self.render_profiles_form(self.with_charge_choice(profiles, full))

    def with_charge_choice(self, profiles: list[dict], full: list[dict]) -> list[dict]:
        """``profiles`` with a "Charged to" option where several communities may pay.

        For each profile that two or more of the user's communities grant,
        an option named ``community`` (see
        :data:`~hubext.profiles.COMMUNITY_OPTION`) lists them, in registry
        order, the first as default; the form then sends it like any
        other option, and it is validated like the REST API's.
        """
        member_of = self.member_communities()
        shown = []
        for profile in profiles:
            configured = find_profile(full, profile["slug"]) or profile
            candidates = charge_candidates(configured, {}, member_of)
            if len(candidates) < 2:
                shown.append(profile)
                continue
            choice = {
                "display_name": self.charge_option_label,
                "choices": {
                    slug: {
                        "display_name": self.communities[slug].display_name,
                        "default": i == 0,
                    }
                    for i, slug in enumerate(candidates)
                },
                "unlisted_choice": {"enabled": False},
            }
            options = {
                **(profile.get("profile_options") or {}),
                COMMUNITY_OPTION: choice,
            }
            shown.append({**profile, "profile_options": options})
        return shown

    @default("options_form")
    def _options_form_default(self):
        # A callable: JupyterHub calls it for each user, just in time.
        return self.community_options_form

    @default("options_from_form")
    def _options_from_form_default(self):
        return self.community_options_from_form

    async def community_options_from_form(self, formdata: dict) -> dict:
        """Form fields to validated user_options (KubeSpawner's field names)."""
        if not await self.uses_profiles():
            return {}
        slug = (formdata.get("profile") or [None])[0]
        options = {}
        if slug:
            options["profile"] = slug
            prefix = f"profile-option-{slug}--"
            for key, values in formdata.items():
                if key.startswith(prefix) and values:
                    options[key[len(prefix) :]] = values[0]
        # kept for the form JupyterHub renders again if this is refused
        self._hubext_submitted = (time.monotonic(), options)
        explicit, visible = await self._check_options(options)
        # what the spawn will apply (validated again when it begins)
        self._hubext_checked = (explicit, visible)
        await self.check_form_options(explicit)
        self.__dict__.pop("_hubext_submitted", None)
        return explicit

    async def check_form_options(self, options: dict) -> None:
        """More checks of the form's validated options, in the request.

        Raise an HTTPError (marked with :func:`refused`) to refuse them:
        the form is shown again with the submitted choices and the message.
        """

    # -- validation before start -----------------------------------------------------

    async def check_before_spawn(self) -> None:
        """Validate ``user_options`` as JupyterHub's spawn begins.

        Called by hubext's authenticator from ``pre_spawn_start``, the
        earliest hook of a spawn that has the options, before anything
        in the spawn waits (JupyterHub answers a start with 202 "pending"
        once its ``slow_spawn_timeout`` passes): a refusal is the answer
        to the request, whatever the hub's load. ``user_options`` become
        the explicit, validated options, which the REST API then shows and
        the database keeps (with the community charged) across restarts;
        :meth:`apply_community_options` applies them without validating
        again. With another authenticator, the options are validated in
        ``apply_user_options``, later in the spawn.
        """
        await self._validate_for_spawn(self.user_options)

    async def _validate_for_spawn(self, user_options) -> None:
        """Validate ``user_options``; keep the explicit ones (and save them)."""
        if not await self.uses_profiles():
            self._check_charge_without_profiles(user_options)
            self._hubext_checked = (self.user_options, None)
        else:
            explicit, visible = await self._check_options(user_options)
            self.user_options = explicit
            self._hubext_checked = (explicit, visible)
        # JupyterHub saved the options as requested: keep the explicit
        # ones, so that the REST API names the community charged after a
        # hub restart too (the hub commits once start() is called)
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is not None:
            orm_spawner.user_options = self.user_options

    async def validated_options(self, user_options) -> dict:
        """Explicit user_options, or an HTTPError (400/403) naming the option."""
        explicit, _ = await self._check_options(user_options)
        return explicit

    def member_communities(self) -> list[str]:
        """The user's communities, in registry order (the order of charging)."""
        groups = {g.name for g in self.user.groups}
        return [c.slug for c in self.communities if c.slug in groups]

    async def _check_options(self, user_options) -> tuple[dict, list[dict]]:
        """``(explicit user_options, the user's visible profiles)``.

        The explicit options name the community charged (``community``)
        unless the hub-wide account is.
        """
        full = await self.full_profile_list()
        visible = await self.visible_profiles(full)
        install_one_line_refusals(self.log)
        if not visible:
            error = self.no_profile_error()
            self.log.warning(
                "hubext: refusing a server for %s: %s",
                self._log_name,
                error.jupyterhub_message,
            )
            raise error
        try:
            rest = user_options
            requested = None
            if isinstance(user_options, dict):
                rest = {k: v for k, v in user_options.items() if k != COMMUNITY_OPTION}
                requested = user_options.get(COMMUNITY_OPTION)
            explicit = validate_user_options(full, visible, rest)
            charged = self._charged(
                find_profile(full, explicit["profile"]), explicit, requested
            )
        except OptionsError as e:
            self.log.warning(
                "hubext: refusing server options for %s: %s", self._log_name, e.message
            )
            raise options_http_error(e) from None
        if charged is not None:
            explicit[COMMUNITY_OPTION] = charged
        await self.check_chosen_environment(explicit)
        return explicit, visible

    def _charged(self, profile, explicit: dict, requested) -> str | None:
        member_of = self.member_communities()
        return choose_charged(
            charge_candidates(profile, explicit, member_of),
            requested,
            member_of,
            (c.slug for c in self.communities),
        )

    @default("apply_user_options")
    def _apply_user_options_default(self):
        return type(self).apply_community_options

    async def apply_community_options(self, user_options) -> None:
        """JupyterHub's ``apply_user_options`` hook: validate, then apply.

        Runs before ``start()`` for every spawn (form, REST API, saved
        options). Options validated by :meth:`check_before_spawn` are
        applied as they are. If you configure your own
        ``apply_user_options``, call
        ``await spawner.apply_community_options(user_options)`` first.
        """
        checked = self.__dict__.pop("_hubext_checked", None)
        if checked is None or checked[0] != user_options:
            await self._validate_for_spawn(user_options)
            checked = self.__dict__.pop("_hubext_checked")
        explicit, visible = checked
        self.user_options = explicit
        if visible is None:  # no profile list
            return
        await maybe_future(
            self.apply_profile(
                find_profile(visible, explicit["profile"]), explicit, visible
            )
        )

    def _check_charge_without_profiles(self, user_options) -> None:
        """No profile list: charge the first community, or the one asked for."""
        requested = (
            user_options.get(COMMUNITY_OPTION)
            if isinstance(user_options, dict)
            else None
        )
        try:
            charged = self._charged(None, {}, requested)
        except OptionsError as e:
            install_one_line_refusals(self.log)
            self.log.warning(
                "hubext: refusing server options for %s: %s", self._log_name, e.message
            )
            raise options_http_error(e) from None
        options = dict(user_options) if isinstance(user_options, dict) else {}
        options.pop(COMMUNITY_OPTION, None)
        if charged is not None:
            options[COMMUNITY_OPTION] = charged
        self.user_options = options

    # -- helpers for apply_profile ------------------------------------------------------

    @staticmethod
    def selected_overrides(profile: dict, user_options: dict) -> list[dict]:
        """The overrides to apply, in order: the profile's, then each option's.

        An unlisted value is substituted for ``{value}`` in its overrides;
        validation has refused braces in the value, so it cannot inject
        other template fields.
        """
        return [
            _format_value(entry.get("kubespawner_override") or {}, text)
            if text is not None
            else entry.get("kubespawner_override") or {}
            for entry, text in chosen(profile, user_options)
        ]


def _format_value(obj, value: str):
    if isinstance(obj, str):
        return obj.replace("{value}", value)
    if isinstance(obj, list):
        return [_format_value(o, value) for o in obj]
    if isinstance(obj, dict):
        return {k: _format_value(v, value) for k, v in obj.items()}
    return obj
