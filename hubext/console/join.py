"""Invitations in the hub: the join page, the community admins' REST API, and ends.

- ``/hub/hubext/join``: the join page. ``GET /hub/hubext/join?code=...``
  (the personal link, or a code typed into the page's form) shows which
  community the code is for and changes nothing; a signed-in person joins
  with the page's confirmed POST (the hub's XSRF check). A person not
  signed in (or in no community yet) confirms on the page with "Sign in
  with <provider> and join": the code is kept in a short-lived signed
  cookie and redeemed as they sign in, bound to the provider and subject
  the sign-in gives (:meth:`HubInvitations.redeem_at_sign_in`). A link
  followed (a mail scanner prefetching it) joins nobody. The code never
  appears in the hub's log (JupyterHub scrubs a ``code`` parameter; the
  sign-in's ``next`` carries no code).
- ``/hub/api/hubext/communities/<slug>/invitations`` (GET: the
  invitations with their uses and who redeemed them; POST: make one, its
  code shown once), ``.../invitations/<id>`` (DELETE: revoke),
  ``.../invitations/members`` (GET: who is a member and where each
  membership comes from: the provider's claims, an invitation), ``.../members/<name>`` (DELETE: remove a member by invitation; a
  member through the provider's claims is governed by the rules: 409).
  Authorized by JupyterHub's ``needs_scope`` on
  ``custom:hubext-console:admin`` with the community as ``group_name``:
  community admins hold it filtered ``!group=<slug>``, hub admins
  unfiltered (:mod:`hubext.roles`).
- Ends: every :data:`END_PERIOD` seconds, and at once after a removal, the
  memberships that ended (end date reached, removed) are taken away like
  any loss of membership: the group goes unless the provider's rules give
  it too, servers charged to the community stop (recorded as stopped by an
  admin), and with no community left every credential ends
  (``revoke_access``).

Attempts with a code that is no invitation (guesses) are limited per
account and per address (:data:`hubext.invitations.ACCOUNT_ATTEMPTS`,
``ADDRESS_ATTEMPTS`` per ``ATTEMPT_WINDOW``); once over the limit, every
attempt waits out the window (429), a valid code too. Every redemption
attempt (joined or refused, throttled included) is recorded and logged in
the audit log; a look-up on the join page (GET) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import pwd
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import ChoiceLoader, FileSystemLoader
from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.ioloop import PeriodicCallback

from .. import invitations as pure
from .._validation import show
from ..accounts import AUTH_STATE_KEY, stored_binding
from ..communities import Community
from ..config_reading import configured_value
from ..leaver_files import hand_over
from ..profiles import COMMUNITY_OPTION
from ..slugs import community_slug_problem
from ..usage.model import EndReason
from ..usage.model import stop_reason as usage_stop_reason
from .access import ADMIN_SCOPE
from .invitations import HUB_ACTOR, InvitationStore, MembershipCache, NotFound
from .store import StateStore

#: How often the hub applies the memberships that ended, in seconds.
END_PERIOD = 15

JOIN_PATH = "hubext/join"
#: The cookie that carries a confirmed code through the sign-in.
JOIN_COOKIE = "hubext-join"
#: How long a confirmed code waits for the sign-in, in days (15 minutes).
_JOIN_DAYS = 15 / (24 * 60)

TEMPLATES = Path(__file__).with_name("join_templates")

log = logging.getLogger("hubext.invitations")


class Attempts:
    """Failed attempts per key (an account, an address) in a sliding window."""

    def __init__(self, limit: int, window: float = pure.ATTEMPT_WINDOW, clock=None):
        self.limit = limit
        self.window = window
        self.clock = clock or time.monotonic
        self._seen: dict[str, deque] = defaultdict(deque)

    def _trim(self, key: str) -> deque:
        seen = self._seen[key]
        horizon = self.clock() - self.window
        while seen and seen[0] <= horizon:
            seen.popleft()
        if not seen:
            del self._seen[key]
            return deque()
        return seen

    def purge(self) -> None:
        """Forget the keys with no attempt left in the window (memory)."""
        for key in list(self._seen):
            self._trim(key)

    def blocked(self, key: str) -> bool:
        return len(self._trim(key)) >= self.limit

    def failed(self, key: str) -> None:
        self._trim(key)
        self._seen[key].append(self.clock())


class HubInvitations:
    """What the hub's invitation handlers and its authenticator work with."""

    def __init__(
        self, app, communities: Mapping[str, Community], store: InvitationStore
    ) -> None:
        self.app = app
        self.communities = communities
        self.store = store
        self.cache = MembershipCache(store)
        self.accounts = Attempts(pure.ACCOUNT_ATTEMPTS)
        self.addresses = Attempts(pure.ADDRESS_ATTEMPTS)
        self.authenticator = None
        #: the hub's log (hubext's lines beside JupyterHub's)
        self.log = getattr(app, "log", log)
        self._ending = asyncio.Lock()
        self._periodic: PeriodicCallback | None = None

    # -- what the authenticator asks --------------------------------------------

    def offered(self) -> set[str]:
        """The communities whose bounds allow invitations today."""
        return {
            slug
            for slug, c in self.communities.items()
            if c.self_service.invitations is not None
        }

    async def invited(self, username: str) -> frozenset[str]:
        """``username``'s configured communities by invitation now."""
        if self.cache.is_fresh():
            held = self.cache.of(username)
        else:
            held = await asyncio.to_thread(self.cache.of, username)
        return frozenset(c for c in held if c in self.communities)

    def invited_now(self) -> dict[str, frozenset[str]]:
        """Every account's communities by invitation (blocking: start-up)."""
        return {
            name: frozenset(c for c in held if c in self.communities)
            for name, held in self.store.active().items()
        }

    # -- redemption -----------------------------------------------------------

    def throttled(self, username: str | None, address: str) -> bool:
        return self.addresses.blocked(address) or (
            username is not None and self.accounts.blocked(username)
        )

    def note_failure(self, username: str | None, address: str) -> None:
        self.addresses.failed(address)
        if username is not None:
            self.accounts.failed(username)

    async def redeem(
        self, code: str, *, username: str, provider: str, subject: str, address: str
    ) -> Any:
        """Redeem ``code`` for the account (throttled first), recorded."""
        if self.throttled(username, address):
            self.log.warning(
                "hubext: invitation attempts by %s from %s throttled",
                show(username),
                address,
            )
            await asyncio.to_thread(
                self.store.record_refusal,
                username=username,
                result="throttled",
                provider=provider,
                subject=subject,
            )
            return _Refused("throttled")
        result = await asyncio.to_thread(
            self.store.redeem,
            code,
            username=username,
            provider=provider,
            subject=subject,
            offered=self.offered(),
        )
        if result.result == "unknown":
            # a guess: only codes that are no invitation count (a class
            # behind one address, late for a used-up code, is not guessing)
            self.note_failure(username, address)
        self.log.info(
            "hubext: invitation %s by %s: %s%s",
            result.invitation_id if result.invitation_id is not None else "(none)",
            show(username),
            result.result,
            f" ({result.community})" if result.community else "",
        )
        return result

    async def redeem_at_sign_in(self, handler, model: dict) -> str | None:
        """Redeem the code confirmed before a sign-in (its cookie), for the
        account ``model`` signs in as; the community is added to its groups.

        Returns why it gave no membership (the message shown), or None.
        """
        raw = handler.get_secure_cookie(JOIN_COOKIE, max_age_days=_JOIN_DAYS)
        if not raw:
            return None
        handler.clear_cookie(JOIN_COOKIE, path=handler.hub.base_url)
        code = pure.normalize(raw.decode("ascii", "replace"))
        binding = stored_binding(model.get("auth_state"))
        if code is None or binding is None:
            return None
        result = await self.redeem(
            code,
            username=model["name"],
            provider=binding.provider,
            subject=binding.subject,
            address=handler.request.remote_ip,
        )
        outcome = {
            "result": result.result,
            "community": result.community,
            "ends_at": _when(result.membership_ends_at),
        }
        handler.set_secure_cookie(
            JOIN_COOKIE + "-result",
            json.dumps(outcome),
            expires_days=_JOIN_DAYS,
            path=handler.hub.base_url,
            httponly=True,
        )
        if result.result == pure.JOINED:
            self.cache_changed()
            model["groups"] = sorted(
                set(model.get("groups") or ()) | {result.community}
            )
            return None
        return pure.REFUSALS.get(result.result)

    def cache_changed(self) -> None:
        self.store._changed()

    # -- ends -----------------------------------------------------------------

    def start(self, authenticator) -> None:
        """Apply ended memberships every :data:`END_PERIOD` seconds (in the hub)."""
        self.authenticator = authenticator
        if self._periodic is None:
            self._periodic = PeriodicCallback(self.apply_ends, END_PERIOD * 1000)
            self._periodic.start()

    async def apply_ends(self) -> None:
        """End the memberships whose date has come, and take away every
        ended one not taken away yet."""
        started = getattr(self.app, "_start_future", None)
        if started is not None and not started.done():
            # the hub is still starting (JupyterHub's own future): its
            # start-up does the same work however long it takes
            return
        self.accounts.purge()
        self.addresses.purge()
        async with self._ending:
            try:
                await asyncio.to_thread(self.store.end_due)
                pending = await asyncio.to_thread(self.store.unapplied)
            except Exception as e:
                self.log.error("hubext: invitations: cannot read the ends: %s", e)
                return
            if not pending:
                return
            self.cache_changed()
            invited = await asyncio.to_thread(self.store.active)
            done = []
            for membership_id, username, community in pending:
                try:
                    await self._take_away(
                        username, community, invited.get(username, frozenset())
                    )
                except Exception:
                    self.log.exception(
                        "hubext: ending %s's membership of %s failed; tried again "
                        "in %d s",
                        show(username),
                        community,
                        END_PERIOD,
                    )
                    continue
                done.append(membership_id)
            await asyncio.to_thread(self.store.mark_applied, done)

    async def _take_away(
        self, username: str, community: str, invited: frozenset[str]
    ) -> None:
        app = self.app
        orm_user = orm.User.find(app.db, username)
        if orm_user is None:
            return
        user = app.users[orm_user]
        if community in invited:
            return  # a member by another invitation
        state = ((await user.get_auth_state()) or {}).get(AUTH_STATE_KEY) or {}
        if community in (state.get("member_of") or ()):
            return  # the provider's rules give it too
        kept = [g for g in orm_user.groups if g.name != community]
        if len(kept) != len(orm_user.groups):
            orm_user.groups = kept
            app.db.commit()
            self.log.info(
                "hubext: %s is no longer a member of %s (invitation ended)",
                show(username),
                community,
            )
        found = self.communities.get(community)
        # a server started with the community's shared folders keeps their
        # access (groups, mounts): it stops too, as one charged to it does
        folders = bool(found is not None and found.shared_data)
        for name, spawner in list(user.spawners.items()):
            charged = (spawner.user_options or {}).get(COMMUNITY_OPTION)
            if (charged == community or folders) and (
                spawner.active and not spawner.pending
            ):
                self.log.info(
                    "hubext: stopping %s's server %r (community %s)",
                    show(username),
                    name,
                    community,
                )
                context = contextvars.copy_context()
                context.run(usage_stop_reason.set, EndReason.STOPPED_BY_ADMIN)
                await asyncio.get_running_loop().create_task(
                    user.stop(name), context=context
                )
        # once no server of theirs holds the folders' groups
        await self._hand_over_files(username, community)
        if not kept and not orm_user.admin and self.authenticator is not None:
            self.log.info(
                "hubext: %s is no longer in any community; ending their access",
                show(username),
            )
            await self.authenticator.revoke_access(user)

    def _folders(self, community: str) -> list:
        """The community's folders on this machine (``host_path``)."""
        found = self.communities.get(community)
        if found is None:
            return []
        return [f for f in found.shared_data if f.source.kind == "host_path"]

    async def _hand_over_files(self, username: str, community: str) -> None:
        """On one machine with system users: the leaver's files in the
        community's folders become the folders' (recorded in the audit log)."""
        if not self._enforced or not self._folders(community):
            return
        try:
            uid = pwd.getpwnam(username).pw_uid
        except KeyError:
            return
        for folder in self._folders(community):
            changed = await asyncio.to_thread(hand_over, folder.source.path, uid)
            if not changed:
                continue
            self.log.info(
                "hubext: %d files of %s in %s's folder %s handed over to the folder",
                len(changed),
                show(username),
                community,
                folder.name,
            )
            await asyncio.to_thread(
                self.store.state.record,
                actor=HUB_ACTOR,
                actor_kind="service",
                community=community,
                action="membership.files",
                before={"user": username, "folder": folder.name},
                after={"files": len(changed), "first": changed[:100]},
            )

    @property
    def _enforced(self) -> bool:
        """Whether servers run as system users on this machine, as root."""
        spawner = getattr(self.app, "spawner_class", None)
        return bool(
            os.geteuid() == 0
            and getattr(spawner, "delegated_kind", None) == "local"
            and configured_value(spawner, self.app.config, "run_as_system_users", False)
        )


class _Refused:
    """A refusal decided before the store was asked."""

    def __init__(self, result: str) -> None:
        self.result = result
        self.community = None
        self.invitation_id = None
        self.membership_ends_at = None


def hub_invitations(
    app, communities: Mapping[str, Community], state: StateStore | None
) -> HubInvitations | None:
    """At hub start-up: the invitations, in the delegated state's database
    (``state``, the hub's store opened by the console's start); None when it
    could not be opened (the console's start logged why)."""
    if state is None:
        app.log.error(
            "hubext: invitations are off: the delegated state cannot be opened"
        )
        return None
    return HubInvitations(app, communities, InvitationStore(state))


# -- the join page --------------------------------------------------------------


def _when(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else None


class JoinHandler(BaseHandler):
    """``/hub/hubext/join``: see which community a code is for, and join it."""

    @property
    def invitations(self) -> HubInvitations:
        return self.settings["hubext_invitations"]

    def _template(self):
        env = self.settings["jinja2_env"]
        overlay = self.settings.get("hubext_join_env")
        if overlay is None:
            overlay = env.overlay(
                loader=ChoiceLoader([FileSystemLoader(str(TEMPLATES)), env.loader])
            )
            self.settings["hubext_join_env"] = overlay
        return overlay.get_template("hubext-join.html")

    async def _page(self, status: int = 200, **ns) -> None:
        self.set_status(status)
        namespace = dict(self.template_namespace)
        namespace["xsrf_token"] = self.xsrf_token.decode("ascii")
        authenticator = self.authenticator
        providers = getattr(authenticator, "provider_adapters", {})
        namespace.update(
            providers=[(name, p.login_service) for name, p in providers.items()],
            join_url=url_path_join(self.hub.base_url, JOIN_PATH),
            code=None,
            community=None,
            message=None,
            joined=False,
            ends_at=None,
        )
        namespace.update(ns)
        html = await self._template().render_async(**namespace)
        self.finish(html)

    def _account(self):
        """The signed-in user and their binding (provider, subject), or None."""
        user = self.current_user
        if user is None or getattr(user, "kind", "user") != "user":
            return None
        return user

    async def _binding(self, user):
        state = await user.get_auth_state()
        return stored_binding(state)

    async def get(self):
        done = self.get_secure_cookie(JOIN_COOKIE + "-result", max_age_days=_JOIN_DAYS)
        typed = self.get_argument("code", None)
        if done and typed is None:
            self.clear_cookie(JOIN_COOKIE + "-result", path=self.hub.base_url)
            try:
                outcome = json.loads(done)
            except ValueError:
                outcome = {}
            return await self._outcome(
                outcome.get("result"), outcome.get("community"), outcome.get("ends_at")
            )
        if typed is None:
            return await self._page()
        user = self._account()
        address = self.request.remote_ip
        who = user.name if user is not None else None
        if self.invitations.throttled(who, address):
            return await self._refusal("throttled", None)
        code = pure.normalize(typed)
        found = (
            await asyncio.to_thread(self.invitations.store.lookup, code)
            if code is not None
            else None
        )
        if found is None or found.result == "unknown":
            self.invitations.note_failure(who, address)
            return await self._refusal("unknown", None)
        if found.result != pure.JOINED:
            return await self._refusal(found.result, found.community)
        community = self.invitations.communities.get(found.community)
        if community is None or found.community not in self.invitations.offered():
            return await self._refusal("not_offered", None)
        await self._page(
            code=pure.shown(code),
            community=community,
            ends_at=_when(found.membership_ends_at),
        )

    async def _refusal(self, result: str, community: str | None) -> None:
        await self._page(
            pure.REFUSAL_STATUS[result],
            message=pure.REFUSALS[result],
            community=self.invitations.communities.get(community or ""),
        )

    async def _outcome(self, result, slug, ends_at=None) -> None:
        if result == pure.JOINED:
            return await self._page(
                joined=True,
                community=self.invitations.communities.get(slug or ""),
                ends_at=ends_at if isinstance(ends_at, str) else None,
            )
        if result in pure.REFUSALS:
            return await self._refusal(result, slug)
        return await self._page()

    async def post(self):
        # (the hub's XSRF check has run: BaseHandler.prepare)
        code = pure.normalize(self.get_body_argument("code", ""))
        provider = self.get_body_argument("provider", None)
        user = self._account()
        if provider is not None:
            # not signed in: keep the confirmed code for the sign-in
            adapters = getattr(self.authenticator, "provider_adapters", {})
            if provider not in adapters or code is None:
                raise web.HTTPError(400, "Choose one of the hub's identity providers.")
            self.set_secure_cookie(
                JOIN_COOKIE,
                code,
                expires_days=_JOIN_DAYS,
                path=self.hub.base_url,
                httponly=True,
            )
            next_url = url_path_join(self.hub.base_url, JOIN_PATH)
            login = url_path_join(self.hub.base_url, provider, "oauth_login")
            return self.redirect(f"{login}?{urlencode({'next': next_url})}")
        if user is None:
            return await self._refusal("no_account", None)
        binding = await self._binding(user)
        if binding is None:
            await asyncio.to_thread(
                self.invitations.store.record_refusal,
                username=user.name,
                result="no_account",
            )
            return await self._refusal("no_account", None)
        if code is None:
            self.invitations.note_failure(user.name, self.request.remote_ip)
            return await self._refusal("unknown", None)
        result = await self.invitations.redeem(
            code,
            username=user.name,
            provider=binding.provider,
            subject=binding.subject,
            address=self.request.remote_ip,
        )
        if result.result != pure.JOINED:
            return await self._refusal(result.result, result.community)
        group = orm.Group.find(self.db, result.community)
        if group is None:
            group = orm.Group(name=result.community)
            self.db.add(group)
        if group not in user.orm_user.groups:
            user.orm_user.groups.append(group)
        self.db.commit()
        await self._page(
            joined=True,
            community=self.invitations.communities.get(result.community),
            ends_at=_when(result.membership_ends_at),
        )


# -- the REST API ---------------------------------------------------------------


def _granted(handler, group_name: str) -> bool:
    return True


class _InvitationAPI(APIHandler):
    @property
    def invitations(self) -> HubInvitations:
        return self.settings["hubext_invitations"]

    def _community(self, group_name: str) -> Community:
        """The community, once JupyterHub's ``needs_scope`` allowed the
        request on it (applied at the request: the decorator refuses a
        custom scope not defined yet when the module is imported)."""
        needs_scope(ADMIN_SCOPE)(_granted)(self, group_name=group_name)
        community = self.invitations.communities.get(group_name)
        if community is None or community_slug_problem(group_name) is not None:
            raise web.HTTPError(404, "No access to resources or resources not found")
        return community

    def _actor(self) -> tuple[str, str]:
        who = self.current_user
        return who.name, "service" if getattr(
            who, "kind", "user"
        ) == "service" else "user"

    def _body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "The body is not JSON.") from None


class InvitationsAPIHandler(_InvitationAPI):
    """``/hub/api/hubext/communities/<slug>/invitations``: list, make."""

    async def get(self, group_name):
        self._community(group_name)
        listed = await asyncio.to_thread(self.invitations.store.list, group_name)
        self.finish({"invitations": listed})

    async def post(self, group_name):
        community = self._community(group_name)
        try:
            request = pure.check_request(
                community.self_service.invitations,
                self._body(),
                datetime.now(UTC),
            )
        except pure.RequestProblem as e:
            raise web.HTTPError(400, "%s", str(e)) from None
        actor, kind = self._actor()
        made = await asyncio.to_thread(
            self.invitations.store.create,
            group_name,
            request,
            actor=actor,
            actor_kind=kind,
        )
        link = (
            f"{self.request.protocol}://{self.request.host}"
            f"{url_path_join(self.hub.base_url, JOIN_PATH)}?"
            f"{urlencode({'code': pure.shown(made.code)})}"
        )
        self.set_status(201)
        self.finish(
            {"invitation": made.invitation, "code": pure.shown(made.code), "link": link}
        )


class InvitationAPIHandler(_InvitationAPI):
    """``/hub/api/hubext/communities/<slug>/invitations/<id>``: revoke."""

    async def delete(self, group_name, invitation_id):
        self._community(group_name)
        actor, kind = self._actor()
        try:
            revoked = await asyncio.to_thread(
                self.invitations.store.revoke,
                group_name,
                int(invitation_id),
                actor=actor,
                actor_kind=kind,
            )
        except NotFound:
            raise web.HTTPError(404, "No such invitation in this community.") from None
        self.finish({"invitation": revoked})


class MembersAPIHandler(_InvitationAPI):
    """``/hub/api/hubext/communities/<slug>/invitations/members``: who, and
    where each membership comes from (beside the console's ``.../members``,
    which says which rule)."""

    async def get(self, group_name):
        self._community(group_name)
        by_invitation = {
            m["user"]: m
            for m in await asyncio.to_thread(self.invitations.store.members, group_name)
        }
        group = orm.Group.find(self.db, group_name)
        names = sorted(
            {u.name for u in (group.users if group is not None else [])}
            | set(by_invitation)
        )
        members = []
        for name in names:
            sources = []
            orm_user = orm.User.find(self.db, name)
            if orm_user is not None:
                state = (await self.users[orm_user].get_auth_state() or {}).get(
                    AUTH_STATE_KEY
                ) or {}
                if group_name in (state.get("member_of") or ()):
                    sources.append(
                        {"source": "provider", "provider": state.get("provider")}
                    )
            if name in by_invitation:
                m = by_invitation[name]
                sources.append(
                    {
                        "source": "invitation",
                        "invitation": m["invitation"],
                        "ends_at": m["ends_at"],
                    }
                )
            members.append({"user": name, "sources": sources})
        self.finish({"members": members})


class MemberAPIHandler(_InvitationAPI):
    """``/hub/api/hubext/communities/<slug>/members/<name>``: remove a member
    by invitation."""

    async def delete(self, group_name, name):
        self._community(group_name)
        actor, kind = self._actor()
        try:
            await asyncio.to_thread(
                self.invitations.store.remove,
                group_name,
                name,
                actor=actor,
                actor_kind=kind,
            )
        except NotFound:
            orm_user = orm.User.find(self.db, name)
            group = orm.Group.find(self.db, group_name)
            if orm_user is not None and group is not None and group in orm_user.groups:
                raise web.HTTPError(
                    409,
                    "%s",
                    f"{name} is a member through the identity provider's claims: "
                    "the community's rules govern their membership, not the console.",
                ) from None
            raise web.HTTPError(
                404, f"{name} is no member of this community."
            ) from None
        await self.invitations.apply_ends()
        self.set_status(204)
        self.finish()


def invitation_handlers(invitations: HubInvitations, app) -> list[tuple]:
    """The join page, and the REST API when the console's scope is defined."""
    app.tornado_settings["hubext_invitations"] = invitations
    handlers: list[tuple] = [(f"/{JOIN_PATH}", JoinHandler)]
    if ADMIN_SCOPE in (getattr(app, "custom_scopes", None) or {}):
        slug = r"(?P<group_name>[^/]+)"
        base = "/api/hubext/communities/" + slug
        handlers += [
            (base + "/invitations", InvitationsAPIHandler),
            (
                base + r"/invitations/(?P<invitation_id>[0-9]{1,12})",
                InvitationAPIHandler,
            ),
            (base + "/invitations/members", MembersAPIHandler),
            (base + "/members/(?P<name>[^/]+)", MemberAPIHandler),
        ]
    return handlers
