"""One culling pass, from explicit inputs: no traits, no configuration, no globals.

:class:`CullPass` takes what a pass needs (:class:`PassSettings`, the
communities' policies, the hub-wide default, a clock, a sleep, a logger,
metrics and an optional arbiter hook) and runs it against a hub API client
(:class:`~hubext.services.client.HubAPI`). The service
(:class:`hubext.culler.app.Culler`) builds one per pass from its traits; a
test or a benchmark builds one directly. A pass:

1. with ``cull_users``, lists the users with no server at all
   (``state=inactive``) first, so a user whose server this pass stops is
   never deleted in the same pass;
2. lists the users with a ready server (``state=ready``): work in
   proportion to running servers, not to all users; in pages whose size
   adapts to how fast the hub answers, read so that the servers the pass
   stops never move the rows still to be read (:mod:`.listing`);
3. decides on each page as it comes, per server (:mod:`hubext.culler.decide`)
   with the most generous policy of the user's communities; then, if there
   is one, the arbiter hook has the last word on each server the policy
   culls or keeps (:mod:`hubext.culler.arbiter`);
4. stops the chosen servers while it goes on listing, at most
   ``concurrency`` at once and started at least ``stop_spacing`` apart
   (the first page's once the listing has ended);
5. with ``cull_users``, deletes the chosen users the same way, each after
   reading the user again: never a hub admin, never a user with a server.

Errors are logged and counted in the :class:`PassResult`; the next pass
tries again. A listing that fails part-way still stops the servers decided
from the pages read (sound data), and deletes no user. A dry run logs what
it would do, without pacing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from .._validation import plural
from ..culling import CullingPolicy, policy_for
from ..services.client import HubAPI, HubAPIError
from .arbiter import arbitrate
from .decide import Cull, CullUser, Skip, decide, decide_user
from .listing import ListingStats, PageSizer, ready_pages


@dataclass(frozen=True)
class PassSettings:
    """How a pass runs (the service's traits of the same names)."""

    concurrency: int = 10
    stop_spacing: float = 0.05
    dry_run: bool = False
    cull_users: bool = False
    page_size: int = 50
    min_page_size: int = 10
    max_page_size: int = 50
    page_time: float = 0.015


class _Jobs:
    """Async jobs run as they are given, at most ``concurrency`` at once,
    each started by ``pacer``; :meth:`join` waits for all of them."""

    def __init__(self, concurrency: int, pacer: Pacer):
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._pacer = pacer
        self._tasks: list[asyncio.Task] = []
        self.waiting = 0  # given, not started yet

    @property
    def count(self) -> int:
        return len(self._tasks)

    def start(self, jobs) -> None:
        for job in jobs:
            self.waiting += 1
            self._tasks.append(asyncio.ensure_future(self._run(job)))

    async def _run(self, job) -> None:
        started = False
        try:
            async with self._limit:
                await self._pacer.wait()
                self.waiting -= 1
                started = True
                await job()
        finally:
            if not started:  # cancelled while waiting
                self.waiting -= 1

    async def join(self) -> None:
        await asyncio.gather(*self._tasks)


class Pacer:
    """Lets actions start in order, at least ``spacing`` seconds apart
    (0: no pacing), waiting with ``sleep`` (an async callable)."""

    def __init__(self, spacing: float, sleep=asyncio.sleep):
        self.spacing = spacing
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._next = 0.0

    async def wait(self) -> None:
        if not self.spacing:
            return
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await self._sleep(delay)
            self._next = loop.time() + self.spacing


@dataclass
class PassResult:
    """What one pass did."""

    culled: list[Cull] = field(default_factory=list)
    stopping: list[Cull] = field(default_factory=list)  # 202: still stopping
    skipped: list[Skip] = field(default_factory=list)
    users_deleted: list[CullUser] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    servers: int = 0
    requests: int = 0
    seconds: float = 0.0
    peak_concurrent_stops: int = 0
    pages: int = 0  # of the listing of ready servers
    largest_page: int = 0  # rows
    listing_seconds: float = 0.0


class CullPass:
    """One pass of the culler (see the module's doc); :meth:`run` it once."""

    def __init__(
        self,
        settings: PassSettings,
        policies: Mapping[str, Mapping[str, Any]],
        default: CullingPolicy,
        *,
        now: Callable[[], datetime],
        sleep=asyncio.sleep,
        log: logging.Logger | logging.LoggerAdapter | None = None,
        metrics=None,
        arbiter: Callable | None = None,
        secrets: tuple[str, ...] = (),
    ):
        self.settings = settings
        self.policies = policies
        self.default = default
        self.now = now
        self.sleep = sleep
        self.log = log or logging.getLogger("hubext.culler")
        self.metrics = metrics
        self.arbiter = arbiter
        #: Kept out of the arbiter's error messages (the API token).
        self.secrets = secrets
        self.result = PassResult()
        self._stopping = 0  # stops in flight

    def policy_of(self, user: dict) -> CullingPolicy:
        """The most generous policy of the user's communities (or the default)."""
        groups = [g for g in user.get("groups") or [] if isinstance(g, str)]
        return policy_for(groups, self.policies, self.default)

    async def run(self, api: HubAPI) -> PassResult:
        result = self.result
        started = time.perf_counter()
        before = api.requests
        settings = self.settings
        idle_users = []
        if settings.cull_users:
            try:
                idle_users = await api.inactive_users(settings.page_size)
            except HubAPIError as e:
                result.errors.append(str(e))
                self.log.error(
                    "hubext-culler: listing users failed: %s; next pass retries", e
                )
                return self._done(started)
        # A dry run stops nothing: nothing to pace.
        pacer = Pacer(0 if settings.dry_run else settings.stop_spacing, self.sleep)
        stops = _Jobs(settings.concurrency, pacer)
        held: list[Cull] = []
        listing = ListingStats()
        listed = True
        try:

            def unhurried() -> bool:
                # A round of stops waits for its slots: the listing has time.
                return stops.waiting >= settings.concurrency

            async for batch in ready_pages(
                api, self.sizer(), listing, unhurried=unhurried
            ):
                actions = await self._decide_servers(batch.users, self.now())
                if batch.held:
                    held += actions
                else:
                    stops.start([partial(self._stop_one, api, a) for a in actions])
        except HubAPIError as e:
            listed = False
            result.errors.append(str(e))
            self.log.error(
                "hubext-culler: listing users failed: %s; %d servers decided "
                "before it are culled, no user is deleted; next pass retries",
                e,
                stops.count + len(held),
            )
        result.pages = listing.pages
        result.largest_page = listing.largest_page
        result.listing_seconds = listing.seconds
        stops.start([partial(self._stop_one, api, a) for a in held])
        await stops.join()
        if listed:
            now = self.now()
            doomed = self._decide_users(idle_users, now)
            users = _Jobs(settings.concurrency, pacer)
            users.start([partial(self._delete_user, api, a) for a in doomed])
            await users.join()
        result.requests = api.requests - before
        self._done(started)
        self.log.info(
            "hubext-culler: pass done in %.2f s: %d %s (listed in %d %s, %.2f s), "
            "%d culled, %d stopping, %d left alone, %d %s deleted, %d %s, %d API %s",
            result.seconds,
            result.servers,
            plural(result.servers, "server"),
            result.pages,
            plural(result.pages, "page"),
            result.listing_seconds,
            len(result.culled),
            len(result.stopping),
            len(result.skipped),
            len(result.users_deleted),
            plural(len(result.users_deleted), "user"),
            len(result.errors),
            plural(len(result.errors), "error"),
            result.requests,
            plural(result.requests, "request"),
        )
        return result

    def sizer(self) -> PageSizer:
        """How this pass sizes its pages (see :class:`.listing.PageSizer`)."""
        s = self.settings
        return PageSizer(s.page_size, s.min_page_size, s.max_page_size, s.page_time)

    def _done(self, started: float) -> PassResult:
        self.result.seconds = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.record(self.result)
        return self.result

    # -- decisions ----------------------------------------------------------------------

    async def _decide_servers(self, users: list, now: datetime) -> list[Cull]:
        result = self.result
        actions: list[Cull] = []
        for user in users:
            name = user.get("name") if isinstance(user, dict) else None
            servers = user.get("servers") if isinstance(user, dict) else None
            if not isinstance(name, str) or not isinstance(servers, dict):
                result.errors.append(f"malformed user model {str(name)[:60]!r}")
                continue
            policy = self.policy_of(user)
            for server_name, server in servers.items():
                if not isinstance(server, dict):
                    continue
                result.servers += 1
                verdict = decide(name, server_name, server, policy, now)
                if isinstance(verdict, Skip):
                    result.skipped.append(verdict)
                    self.log.warning(
                        "hubext-culler: leaving %s alone: %s",
                        f"{name}/{server_name}" if server_name else name,
                        verdict.reason,
                    )
                    continue
                if self.arbiter is not None:
                    verdict = await arbitrate(
                        self.arbiter,
                        user=user,
                        server_name=server_name,
                        server=server,
                        policy=policy,
                        decision=verdict,
                        now=now,
                        log=self.log,
                        errors=result.errors,
                        secrets=self.secrets,
                    )
                if isinstance(verdict, Cull):
                    actions.append(verdict)
        return actions

    def _decide_users(self, idle_users: list, now: datetime) -> list[CullUser]:
        doomed: list[CullUser] = []
        for user in idle_users:
            if not isinstance(user, dict):
                self.result.errors.append("malformed user model")
                continue
            verdict = decide_user(user, self.policy_of(user), now)
            if isinstance(verdict, Skip):
                self.result.skipped.append(verdict)
                self.log.warning(
                    "hubext-culler: leaving user %s alone: %s",
                    verdict.user,
                    verdict.reason,
                )
            elif isinstance(verdict, CullUser):
                doomed.append(verdict)
        return doomed

    # -- actions -----------------------------------------------------------------------

    async def _stop_one(self, api: HubAPI, action: Cull) -> None:
        result = self.result
        self._stopping += 1
        result.peak_concurrent_stops = max(result.peak_concurrent_stops, self._stopping)
        try:
            await self._stop(api, action)
        finally:
            self._stopping -= 1

    async def _stop(self, api: HubAPI, action: Cull) -> None:
        result = self.result
        what = (
            f"{action.log_name} ({action.reason}: inactive {action.inactive:.0f} s"
            + (f", age {action.age:.0f} s" if action.age is not None else "")
            + (", removing" if action.remove else "")
            + ")"
        )
        if self.settings.dry_run:
            self.log.info("hubext-culler: would cull %s (dry run)", what)
            result.culled.append(action)
            return
        try:
            status = await api.stop_server(action.user, action.server, action.remove)
        except HubAPIError as e:
            result.errors.append(str(e))
            self.log.error("hubext-culler: culling %s failed: %s", what, e)
            return
        if status == 202:
            result.stopping.append(action)
            self.log.info("hubext-culler: culling %s: stopping (slow)", what)
        else:
            result.culled.append(action)
            self.log.info("hubext-culler: culled %s", what)

    async def _delete_user(self, api: HubAPI, action: CullUser) -> None:
        result = self.result
        name = action.user
        if self.settings.dry_run:
            self.log.info(
                "hubext-culler: would delete user %s (inactive %.0f s, no server; "
                "dry run)",
                name,
                action.inactive,
            )
            result.users_deleted.append(action)
            return
        try:
            # Read the user again just before: the listing may be minutes old.
            fresh = await api.user(name)
            if fresh is None:
                return  # gone already
            verdict = decide_user(fresh, self.policy_of(fresh), self.now())
            if not isinstance(verdict, CullUser):
                self.log.info(
                    "hubext-culler: keeping user %s: %s",
                    name,
                    verdict.reason
                    if isinstance(verdict, Skip)
                    else "active again, has a server, or is an admin now",
                )
                return
            await api.delete_user(name)
        except HubAPIError as e:
            result.errors.append(str(e))
            self.log.error("hubext-culler: deleting user %s failed: %s", name, e)
            return
        result.users_deleted.append(verdict)
        self.log.info(
            "hubext-culler: deleted user %s (inactive %.0f s, no server)",
            name,
            verdict.inactive,
        )
