"""Listing the users with a ready server while the pass stops some of them.

The hub lists users by id, ``limit`` rows from ``offset``
(``GET /users?state=ready``). A server the pass stops leaves that list when
it has stopped, and every row after it moves up one: a listing that read
the pages from the first to the last while stopping servers would skip one
user per stop. So :func:`ready_pages` reads the first page (which says how
many rows there are), then the others from the last back to the second:
the servers the pass stops are always in rows after those still to be
read. The first page is yielded ``held``: its servers are stopped only
when the listing has ended (unless it is the only page). A server stopped,
or started, by someone else during the listing can still make a row move
(the pass sees one user twice, and handles them once; or one user's server
waits for the next pass), as with any paginated listing.

The page size adapts to the hub's answers (:class:`PageSizer`): a page's
users should keep the hub busy for about ``page_time`` seconds on top of
what any page costs it, since every other request to the hub waits behind
the page it is answering.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..services.client import HubAPI, Page


class PageSizer:
    """The next page's size, from how long the hub took to answer the last ones.

    A page of ``n`` users takes the hub about ``fixed + n * per_user``
    seconds. ``fixed`` is what every page costs (the request, its token,
    counting the running servers: it grows with them), whatever its size;
    ``per_user`` is each user's model. Every other request to the hub waits
    behind the page it is answering, so the sizer keeps a page's users to
    ``budget`` seconds of the hub's time on top of ``fixed``: pages grow
    above ``size`` while users come cheap (a fast hub), and come back
    towards ``size`` as they get dearer (a busy one), at most doubling or
    halving from one page to the next.

    Never below ``size`` (the first page's): every page also costs
    ``fixed``, so pages smaller than the hub's default lengthen the
    listing (more of them) while the pass waits for it, and on a machine
    shared with other work the answers' times are too noisy to tell a
    dearer hub from a busy moment. ``minimum`` is the size of the pages
    asked for while the pass has other work (see :func:`ready_pages`).

    It learns what a user costs from the last pages' sizes, which must
    differ (the second page is twice the first, when ``maximum`` allows),
    and the fastest answer at each size: a hub busy with other work only
    adds time to some answers, and a lasting change shows in all of them.
    Until it knows, the size stays. Always between ``size`` and
    ``maximum``.
    """

    #: Pages the costs are learnt from.
    WINDOW = 16

    def __init__(self, size: int, minimum: int, maximum: int, budget: float):
        if not 1 <= minimum <= maximum:
            raise ValueError(f"page sizes: need 1 <= {minimum} <= {maximum}")
        if not budget > 0:
            raise ValueError(f"page budget: need more than 0 seconds, got {budget}")
        self.minimum, self.maximum, self.budget = minimum, maximum, budget
        self.size = self.floor = min(max(size, minimum), maximum)
        self._seen: deque[tuple[int, float]] = deque(maxlen=self.WINDOW)

    def observe(self, rows: int, seconds: float) -> int:
        """Learn from a page of ``rows`` users that took ``seconds``; the next size."""
        if rows < 1 or seconds <= 0:
            return self.size
        self._seen.append((rows, seconds))
        if len(self._seen) == 1:
            return self._set(rows * 2)  # another size, to tell the costs apart
        per_user = self.per_user()
        if per_user is None:
            return self.size
        wanted = self.budget / per_user
        return self._set(min(max(wanted, self.size / 2), self.size * 2))

    def per_user(self) -> float | None:
        """The hub's seconds per user in a page (None: not known yet).

        From the fastest answer at each size of the last pages: a hub busy
        with other work, or a machine busy with other processes, only ever
        adds time, so the fastest answers are its own costs.
        """
        fastest: dict[int, float] = {}
        for rows, seconds in self._seen:
            fastest[rows] = min(seconds, fastest.get(rows, seconds))
        if len(fastest) < 2:
            return None
        n = len(fastest)
        mean_rows = sum(fastest) / n
        mean_seconds = sum(fastest.values()) / n
        spread = sum((r - mean_rows) ** 2 for r in fastest)
        slope = (
            sum((r - mean_rows) * (t - mean_seconds) for r, t in fastest.items())
            / spread
        )
        return slope if slope > 0 else None

    def cap(self, rows: int) -> None:
        """The hub answers at most ``rows`` rows a page (its ``api_page_max_limit``)."""
        self.maximum = max(1, rows)
        self.minimum = min(self.minimum, self.maximum)
        self.floor = min(self.floor, self.maximum)
        self.size = min(self.size, self.maximum)

    def _set(self, wanted: float) -> int:
        self.size = int(min(max(round(wanted), self.floor), self.maximum))
        return self.size


@dataclass(frozen=True)
class Batch:
    """Users of one page, not seen before in this listing; ``held``: stop
    none of their servers until the listing has ended."""

    users: list
    held: bool


@dataclass
class ListingStats:
    pages: int = 0
    largest_page: int = 0
    seconds: float = 0.0


async def ready_pages(
    api: HubAPI,
    sizer: PageSizer,
    stats: ListingStats | None = None,
    *,
    unhurried: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.perf_counter,
) -> AsyncIterator[Batch]:
    """The users with a ready server, page by page (see the module's doc).

    While ``unhurried()`` is true (the servers already found to stop keep
    the pass busy for a while), pages are of the sizer's ``minimum``: the
    shortest the hub can answer, at no cost to the pass.

    Raises :class:`~hubext.services.client.HubAPIError` when a page fails.
    """
    stats = stats if stats is not None else ListingStats()
    started = clock()
    seen: set = set()

    async def fetch(offset: int, limit: int) -> Page:
        begin = clock()
        page = await api.page("ready", offset, limit)
        stats.pages += 1
        stats.largest_page = max(stats.largest_page, page.limit)
        sizer.observe(page.limit, clock() - begin)
        if page.limit < limit:  # the hub's api_page_max_limit
            sizer.cap(page.limit)
        return page

    def fresh(page: Page) -> list:
        users = []
        for user in page.items:
            name = user.get("name") if isinstance(user, dict) else None
            if not isinstance(name, str):
                users.append(user)  # malformed: the pass reports it
            elif name not in seen:
                seen.add(name)
                users.append(user)
        return users

    try:
        first = await fetch(0, sizer.size)
        if not first.more:
            yield Batch(fresh(first), held=False)
            return
        yield Batch(fresh(first), held=True)
        # Rows [floor, end) are still to be read, from the end back.
        floor, end = first.limit, first.total
        while end > floor:
            limit = min(sizer.minimum if unhurried() else sizer.size, end - floor)
            page = await fetch(end - limit, limit)
            if page.limit < limit:
                # Capped by the hub: rows above this page are unread, and
                # stopping this page's servers would move them. Read again,
                # at the size the hub allows.
                continue
            yield Batch(fresh(page), held=False)
            end -= limit
    finally:
        stats.seconds = clock() - started
