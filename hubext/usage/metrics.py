"""Usage as Prometheus metrics, on the hub's own ``/hub/metrics``.

:class:`UsageMetrics` keeps counters that grow by the time each server runs,
labelled by the community charged (series bounded by the number of
communities, never by users):

- ``hubext_usage_server_seconds_total{community}``: seconds of server time;
- ``hubext_usage_resource_seconds_total{community,resource}``: the
  resources times the seconds they were held, the same rule as the usage
  report (:func:`hubext.usage.model.counted`: the request, or the limit
  without one): ``resource="cpu"`` in core-seconds, ``"memory"`` in
  byte-seconds, ``"gpu"`` in GPU-seconds;
- ``hubext_usage_running_servers{community}``: servers running now.

The spawners' usage hooks call it next to the ledger, from the hub's event
loop, with the same moments: a counter moves at each heartbeat and at the
end by the time since the session's previous heartbeat, so ``rate()`` works
and the counters add up to what the ledger records for the same sessions.
Counters live in the hub's process: a hub restart starts them at 0 again
(Prometheus' ``rate()`` and ``increase()`` handle resets). The community
:data:`~hubext.usage.model.HUB_ACCOUNT` stands for the hub-wide account.

:class:`UserGroupInfoCollector` provides ``jupyterhub_user_group_info``, the
gauge of 2i2c's jupyterhub-groups-exporter (same name, labels and values:
one series per user and group, plus ``usergroup="multiple"`` for a user in
several groups and ``"none"`` for a user in none), read from the hub's
database at scrape time.

:class:`LedgerCollector` tells how the ledger's writer is doing (events
pending, refused, how long its database has been unreachable), for alerts.

Every method of :class:`UsageMetrics` returns at once and never raises (an
error is logged): metrics never make a start or a stop fail.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .ledger import Ledger
from .model import HUB_ACCOUNT, Resources, utcnow

#: The values of the ``resource`` label, in the order they are created.
RESOURCES = ("cpu", "memory", "gpu")

_US = timedelta(microseconds=1)


@dataclass
class _Session:
    community: str
    #: what one second of this server adds to each resource's counter
    per_second: tuple[float, float, float]
    #: the moment up to which this session is counted
    counted_until: datetime


class UsageMetrics:
    """Server time and requested resources per community, as Prometheus counters.

    :param communities: the configured community slugs: their series (and
        the hub-wide account's) exist at 0 from the start, so dashboards see
        them before the first server.
    :param registry: where the metrics are registered (the hub serves
        prometheus_client's default ``REGISTRY``).
    :param clock: returns the current aware UTC ``datetime``; used when a
        method is called without ``at``.
    :param log: where errors are reported.

    Call it from one thread (the hub's event loop).
    """

    def __init__(
        self,
        communities: Iterable[str] = (),
        *,
        registry: CollectorRegistry = REGISTRY,
        clock: Callable[[], datetime] = utcnow,
        log: logging.Logger | None = None,
    ):
        self._clock = clock
        self.log = log or logging.getLogger("hubext.usage")
        self._sessions: dict[str, _Session] = {}
        self._communities: set[str] = set()
        self.server_seconds = Counter(
            "hubext_usage_server_seconds",
            "Server time charged to each community, in seconds (hubext usage "
            "ledger; _hub: the hub-wide account)",
            ["community"],
            registry=registry,
        )
        self.resource_seconds = Counter(
            "hubext_usage_resource_seconds",
            "Resources times the seconds they were held, per community: cpu "
            "in core-seconds, memory in byte-seconds, gpu in GPU-seconds "
            "(requests, or limits without a request)",
            ["community", "resource"],
            registry=registry,
        )
        self.running_servers = Gauge(
            "hubext_usage_running_servers",
            "Servers running now, per community charged",
            ["community"],
            registry=registry,
        )
        self.add_communities([HUB_ACCOUNT, *communities])

    def add_communities(self, communities: Iterable[str]) -> None:
        """Create the series of these communities (at 0 if new)."""
        for community in communities:
            if community in self._communities:
                continue
            self._communities.add(community)
            self.server_seconds.labels(community)
            for resource in RESOURCES:
                self.resource_seconds.labels(community, resource)
            self.running_servers.labels(community)

    # -- the hooks' API ------------------------------------------------------

    def session_started(
        self,
        key: str,
        community: str | None,
        resources: Resources | None = None,
        at: datetime | None = None,
    ) -> None:
        """A server started at ``at`` (default now), charged to ``community``.

        ``key`` is the ledger's session key; ``community`` None means the
        hub-wide account. Its time counts from ``at``.
        """
        try:
            if key in self._sessions:
                self.log.warning("usage metrics: session %s started twice", key)
                return
            community = community or HUB_ACCOUNT
            resources = resources or Resources()
            self.add_communities([community])
            self._sessions[key] = _Session(
                community,
                (
                    resources.cpu,
                    float(resources.memory),
                    float(resources.gpus or 0),
                ),
                self._now_or(at),
            )
            self.running_servers.labels(community).inc()
        except Exception:
            self.log.exception("usage metrics: could not count the start of %s", key)

    def seen_alive(self, keys: Iterable[str], at: datetime | None = None) -> None:
        """These sessions' servers were running at ``at`` (default now)."""
        try:
            at = self._now_or(at)
            for key in keys:
                session = self._sessions.get(key)
                if session is not None:
                    self._count(session, at)
        except Exception:
            self.log.exception("usage metrics: could not count a heartbeat")

    def session_ended(self, key: str, at: datetime | None = None) -> None:
        """A session ended at ``at`` (default now); a later end is ignored."""
        try:
            session = self._sessions.pop(key, None)
            if session is None:
                return
            self._count(session, self._now_or(at))
            self.running_servers.labels(session.community).dec()
        except Exception:
            self.log.exception("usage metrics: could not count the end of %s", key)

    # -- counting --------------------------------------------------------------

    def _count(self, session: _Session, at: datetime) -> None:
        """Add the time from the session's last count to ``at`` (never back)."""
        if at <= session.counted_until:
            return
        # whole microseconds, as the report adds them up
        seconds = ((at - session.counted_until) // _US) / 1_000_000
        session.counted_until = at
        self.server_seconds.labels(session.community).inc(seconds)
        for resource, per_second in zip(RESOURCES, session.per_second, strict=True):
            if per_second:
                self.resource_seconds.labels(session.community, resource).inc(
                    per_second * seconds
                )

    def _now_or(self, at: datetime | None) -> datetime:
        at = at or self._clock()
        if at.tzinfo is None:
            self.log.error("usage metrics: naive datetime %s taken as UTC", at)
            at = at.replace(tzinfo=UTC)
        return at


# -- jupyterhub_user_group_info ----------------------------------------------

#: The gauge's labels, as jupyterhub-groups-exporter names them.
USER_GROUP_INFO_LABELS = (
    "namespace",
    "usergroup",
    "username",
    "username_escaped",
    "username_safe",
)
#: The pseudo-groups of jupyterhub-groups-exporter (with its default
#: ``double_count``): a user in several groups is also in ``multiple``; a
#: user in none is in ``none``.
MULTIPLE = "multiple"
NONE = "none"
_SERVICE_ACCOUNT_NAMESPACE = Path(
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)


def default_namespace() -> str:
    """The hub's Kubernetes namespace, or "" outside Kubernetes.

    ``POD_NAMESPACE`` (set on the hub pod by zero-to-jupyterhub), else the
    pod's service account namespace file.
    """
    namespace = os.environ.get("POD_NAMESPACE", "")
    if not namespace and _SERVICE_ACCOUNT_NAMESPACE.is_file():
        namespace = _SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return namespace


def escaped_username(username: str) -> str:
    """KubeSpawner's legacy ``escape`` scheme (its ``{username}`` before 7.0)."""
    import escapism

    return escapism.escape(
        username, safe="abcdefghijklmnopqrstuvwxyz0123456789", escape_char="-"
    ).lower()


def safe_username(username: str) -> str:
    """KubeSpawner's ``safe`` scheme (7.0), as jupyterhub-groups-exporter uses it."""
    from kubespawner.slugs import safe_slug

    return safe_slug(username, max_length=48)


def user_group_series(
    memberships: Iterable[tuple[str, str | None]],
) -> dict[str, list[str]]:
    """``{username: [usergroup, ...]}`` from ``(username, group or None)`` pairs.

    The exporter's rule: every group of the user, then ``multiple`` when
    there are several; ``none`` for a user in no group.
    """
    groups: dict[str, list[str]] = {}
    for username, group in memberships:
        names = groups.setdefault(username, [])
        if group is not None:
            names.append(group)
    for names in groups.values():
        if len(names) > 1:
            names.sort()
            names.append(MULTIPLE)
        elif not names:
            names.append(NONE)
    return groups


def hub_memberships(db) -> list[tuple[str, str | None]]:
    """Every hub user with each of their groups (None: no group), one query."""
    from jupyterhub import orm

    return db.query(orm.User.name, orm.Group.name).outerjoin(orm.User.groups).all()


class UserGroupInfoCollector:
    """``jupyterhub_user_group_info``, computed from the hub's database at scrape.

    Compatible with 2i2c's jupyterhub-groups-exporter (its default
    ``double_count=true``): value 1 for each user and group, labels
    :data:`USER_GROUP_INFO_LABELS`. One series per user and group by
    design: its size grows with the users, unlike the usage counters.

    :param memberships: returns ``(username, group or None)`` pairs, e.g.
        ``lambda: hub_memberships(db)`` with the hub's database session
        (scrapes run on the hub's event loop, as its other database reads).
    :param namespace: the ``namespace`` label (see :func:`default_namespace`).
    :param prefix: the metric's prefix, ``JUPYTERHUB_METRICS_PREFIX`` as for
        JupyterHub's own metrics and the exporter (default ``jupyterhub``).
    """

    def __init__(
        self,
        memberships: Callable[[], Iterable[tuple[str, str | None]]],
        namespace: str | None = None,
        prefix: str | None = None,
        log: logging.Logger | None = None,
    ):
        self._memberships = memberships
        self.namespace = default_namespace() if namespace is None else namespace
        prefix = prefix or os.environ.get("JUPYTERHUB_METRICS_PREFIX", "jupyterhub")
        self.name = f"{prefix}_user_group_info"
        self.log = log or logging.getLogger("hubext.usage")
        # username -> (escaped, safe): computing them is most of a scrape
        self._escapes: dict[str, tuple[str, str]] = {}
        self._memberships_seen: list | None = None
        self._samples: list = []

    def describe(self):
        # Registering calls describe, not collect (no database read then).
        return [GaugeMetricFamily(self.name, "", labels=USER_GROUP_INFO_LABELS)]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            self.name,
            "JupyterHub namespace, username and user group membership information.",
            labels=USER_GROUP_INFO_LABELS,
        )
        try:
            memberships = list(self._memberships())
        except Exception:
            self.log.exception("usage metrics: could not read users' groups")
            return
        if memberships != self._memberships_seen:
            self._samples = self._build(memberships)
            self._memberships_seen = memberships
        # unchanged memberships (most scrapes): the same samples again
        family.samples = self._samples
        yield family

    def _build(self, memberships: list[tuple[str, str | None]]) -> list:
        family = GaugeMetricFamily(self.name, "", labels=USER_GROUP_INFO_LABELS)
        escapes, seen = self._escapes, {}
        for username, names in user_group_series(memberships).items():
            names_of = escapes.get(username)
            if names_of is None:
                names_of = (escaped_username(username), safe_username(username))
            seen[username] = names_of
            for group in names:
                family.add_metric([self.namespace, group, username, *names_of], 1)
        # forget deleted users
        self._escapes = seen
        return family.samples


# -- the ledger's health -------------------------------------------------------


class LedgerCollector:
    """The usage ledger's writer, for alerts on a database outage.

    - ``hubext_usage_ledger_pending_events``: events not yet written
      (heartbeats counted once per server);
    - ``hubext_usage_ledger_refused_events_total``: events refused because
      ``c.UsageLedger.max_pending`` were waiting (their sessions are missing
      from reports);
    - ``hubext_usage_ledger_outage_seconds``: how long the database has been
      unreachable (0 when it is not).
    """

    def __init__(self, ledger: Ledger, monotonic: Callable[[], float] = time.monotonic):
        self._ledger = ledger
        self._monotonic = monotonic

    def describe(self):
        return list(self._families(0, 0, 0.0))

    def collect(self):
        ledger = self._ledger
        since = ledger.outage_since
        outage = 0.0 if since is None else max(0.0, self._monotonic() - since)
        return self._families(ledger.pending, ledger.dropped, outage)

    @staticmethod
    def _families(pending: int, refused: int, outage: float):
        yield GaugeMetricFamily(
            "hubext_usage_ledger_pending_events",
            "Usage ledger events not yet written to its database",
            value=pending,
        )
        yield CounterMetricFamily(
            "hubext_usage_ledger_refused_events",
            "Usage ledger events refused while its queue was full (lost)",
            value=refused,
        )
        yield GaugeMetricFamily(
            "hubext_usage_ledger_outage_seconds",
            "Seconds since the usage ledger's database became unreachable (0: it is not)",
            value=outage,
        )


# -- the hub's process ---------------------------------------------------------

_hub_metrics: UsageMetrics | None = None
_hub_collectors: set[str] = set()


def hub_usage_metrics(
    communities: Iterable[str] = (),
    *,
    db=None,
    user_group_info: bool = False,
    ledger: Ledger | None = None,
    log: logging.Logger | None = None,
) -> UsageMetrics:
    """The hub process's :class:`UsageMetrics`, in the default ``REGISTRY``.

    Made at the first call (the hub's first use of a spawner), with the series of
    ``communities`` (a later call adds its communities). With
    ``user_group_info`` (``c.UsageLedger.user_group_info_metric``) the
    :class:`UserGroupInfoCollector` reading the hub's database session
    ``db`` is registered, and with ``ledger`` its :class:`LedgerCollector`,
    each once per process.
    """
    global _hub_metrics
    if _hub_metrics is None:
        _hub_metrics = UsageMetrics(communities, log=log)
    else:
        _hub_metrics.add_communities(communities)
    if user_group_info and "user_group_info" not in _hub_collectors:
        if db is None:
            # never raise: the hooks call this next to the ledger
            (log or logging.getLogger("hubext.usage")).error(
                "usage metrics: jupyterhub_user_group_info needs the hub's "
                "database session; not served"
            )
        else:
            REGISTRY.register(
                UserGroupInfoCollector(lambda: hub_memberships(db), log=log)
            )
        _hub_collectors.add("user_group_info")
    if ledger is not None and "ledger" not in _hub_collectors:
        REGISTRY.register(LedgerCollector(ledger))
        _hub_collectors.add("ledger")
    return _hub_metrics
