"""Every server session in the usage ledger: the hooks both spawners share.

:class:`UsageRecordingMixin` records, from the hub's event loop and without
waiting for the database (:class:`~hubext.usage.ledger.Ledger` writes from
a process of its own, ``c.UsageLedger.writer_process``):

- the start of a session once the server's resources are final (after the
  profile's and options' overrides), charged to the community in
  ``user_options["community"]`` (chosen and validated with the options,
  :mod:`hubext.spawners.options`) or the hub-wide account;
- a heartbeat at each of JupyterHub's polls (``Spawner.poll_interval``), the
  moment a crashed hub's sessions are closed at;
- the end: when the spawner stops the server (stopped by its user, by an
  admin, by the culler, or by the hub itself), when the start fails or the
  server never answers, or when a poll finds it dead.

After a hub restart, a server that kept running gets a new session with the
same charge (kept in the spawner's state), from the moment the hub finds it
again; the previous hub's session was closed at its last heartbeat when the
ledger started (:meth:`~hubext.usage.ledger.Ledger.close_open_sessions`).

Recording never makes a start or a stop fail: errors are logged.
"""

from __future__ import annotations

import atexit
import logging
from datetime import datetime
from typing import Any

from traitlets import HasTraits

from ..profiles import COMMUNITY_OPTION
from ..usage.config import UsageLedger
from ..usage.ledger import Ledger
from ..usage.metrics import UsageMetrics, hub_usage_metrics
from ..usage.model import EndReason, Resources, utcnow
from .stops import end_reason

#: The hub process's ledgers, by database URL: one writer per database.
_ledgers: dict[str, Ledger] = {}

STATE_KEY = "hubext_usage"


def hub_ledger(settings: UsageLedger, hub_db_url: str, log) -> Ledger | None:
    """The hub's ledger (started, the previous hub's sessions closed), or None.

    Made on first use in the hub process. Pending records are written when
    the process exits.
    """
    if not settings.enabled:
        return None
    url = settings.resolved_db_url(hub_db_url)
    ledger = _ledgers.get(url)
    if ledger is None:
        ledger = settings.make_ledger(hub_db_url, log)
        ledger.start()
        # before any session of this hub: the writer keeps the order
        ledger.close_open_sessions()
        atexit.register(ledger.close)
        _ledgers[url] = ledger
    return ledger


def start_hub_usage(app, communities, log) -> None:
    """At hub start-up: the ledger (closing the previous hub's sessions) and metrics.

    ``app`` is the JupyterHub application (anything else: nothing happens).
    Without it, both start at the first use of a spawner.
    """
    try:
        from jupyterhub.app import JupyterHub

        if not isinstance(app, JupyterHub):
            return
        settings = UsageLedger(parent=app)
        if not settings.enabled:
            return
        ledger = hub_ledger(settings, app.db_url, log)
        hub_usage_metrics(
            [c.slug for c in communities],
            db=app.db,
            user_group_info=settings.user_group_info_metric,
            ledger=ledger,
            log=log,
        )
    except Exception:
        log.exception("usage ledger: could not start with the hub")


class UsageRecordingMixin(HasTraits):
    """Records the spawner's server sessions in the usage ledger.

    Put it first among a spawner's bases. A spawner whose resources are
    final only inside ``start()`` (KubeSpawner applies overrides in
    ``load_user_options``) sets :attr:`usage_begins_in_start` False and calls
    :meth:`begin_usage_session_in_start` once they are.
    """

    #: Record the session's start just before the spawner's own ``start()``.
    usage_begins_in_start = True

    _usage_key: str | None = None
    _usage_charge: dict | None = None
    _usage_started = False
    _usage_stopping = False
    _usage_starting = False

    # -- settings and the ledger -------------------------------------------

    @property
    def usage_settings(self) -> UsageLedger:
        try:
            return self._usage_settings
        except AttributeError:
            self._usage_settings = UsageLedger(parent=self)
            return self._usage_settings

    def usage_now(self) -> datetime:
        """The moment recorded for a start, heartbeat or end (aware UTC)."""
        return utcnow()

    def usage_ledger(self) -> Ledger | None:
        """The hub's ledger (looked up once per spawner: heartbeats are frequent)."""
        try:
            return self._usage_ledger
        except AttributeError:
            self._usage_ledger = hub_ledger(
                self.usage_settings, self._hub_db_url(), self.log
            )
            return self._usage_ledger

    def usage_metrics(self) -> UsageMetrics | None:
        """The hub's usage counters on ``/hub/metrics`` (with the ledger)."""
        try:
            return self._usage_metrics
        except AttributeError:
            pass
        self._usage_metrics = None
        if self.usage_settings.enabled:
            self._usage_metrics = hub_usage_metrics(
                [c.slug for c in self.communities],
                db=getattr(self.user, "db", None),
                user_group_info=self.usage_settings.user_group_info_metric,
                ledger=self.usage_ledger(),
                log=self.log,
            )
        return self._usage_metrics

    def _hub_db_url(self) -> str:
        try:
            return str(self.user.db.get_bind().url)
        except Exception:
            return self.config.JupyterHub.get("db_url", "sqlite:///jupyterhub.sqlite")

    def usage_resources(self) -> Resources:
        """What the server requests, after every override."""
        return Resources(
            cpu_request=self.cpu_guarantee,
            cpu_limit=self.cpu_limit,
            mem_request=self.mem_guarantee,
            mem_limit=self.mem_limit,
            gpus=self.gpus_of(getattr(self, "extra_resource_limits", None) or {}),
        )

    def gpus_of(self, limits: dict) -> int:
        """GPUs in extended resource limits (``c.UsageLedger.gpu_resources``)."""
        gpus = 0
        for name in self.usage_settings.gpu_resources:
            try:
                gpus += int(float(limits.get(name, 0) or 0))
            except (TypeError, ValueError):
                self.log.warning(
                    "usage ledger: %s requests %s=%r, not a number: counted as 0",
                    self._log_name,
                    name,
                    limits.get(name),
                )
        return gpus

    def usage_charge(self) -> dict[str, Any]:
        """The session's attribution, as kept in the spawner's state."""
        options = dict(self.user_options or {})
        community = options.pop(COMMUNITY_OPTION, None)
        profile = options.pop("profile", None)
        if community is not None and community not in {
            g.name for g in self.user.groups
        }:
            # Validated options only name the user's own communities; an
            # apply_user_options of the admin's that skipped hubext's
            # validation must not let anyone charge another community.
            self.log.warning(
                "usage ledger: %s asked to charge %r, not one of the user's "
                "communities; charged to the hub-wide account",
                self._log_name,
                community,
            )
            community = None
        return {
            "community": community if isinstance(community, str) else None,
            "profile": profile if isinstance(profile, str) else None,
            "choices": options,
            # its fields are numbers: a shallow copy (asdict deep-copies, 10 µs)
            "resources": dict(vars(self.usage_resources())),
        }

    # -- sessions ------------------------------------------------------------

    def begin_usage_session_in_start(self) -> None:
        """:meth:`begin_usage_session`, if called from within ``start()``."""
        if self._usage_starting:
            self.begin_usage_session()

    def begin_usage_session(self, charge: dict | None = None) -> None:
        """Record the start of a session (once; resources must be final)."""
        if self._usage_key is not None:
            return
        try:
            charge = charge or self.usage_charge()
            self._usage_charge = charge
            ledger = self.usage_ledger()
            if ledger is None:
                return
            at = self.usage_now()
            resources = Resources(**charge["resources"])
            self._usage_key = ledger.session_started(
                user=self.user.name,
                server_name=self.name,
                community=charge["community"],
                profile=charge["profile"],
                choices=charge["choices"],
                resources=resources,
                at=at,
            )
            metrics = self.usage_metrics()
            if metrics is not None:
                metrics.session_started(
                    self._usage_key, charge["community"], resources, at=at
                )
        except Exception:
            self.log.exception(
                "usage ledger: could not record %s's start", self._log_name
            )

    def usage_seen_alive(self) -> None:
        """A heartbeat: the server is running now."""
        if self._usage_key is None:
            return
        at = self.usage_now()
        for recorder in (self.usage_ledger(), self.usage_metrics()):
            if recorder is not None:
                recorder.seen_alive([self._usage_key], at=at)

    def end_usage_session(self, reason: EndReason) -> None:
        key, self._usage_key = self._usage_key, None
        if key is None:
            return
        try:
            at = self.usage_now()
            ledger = self.usage_ledger()
            if ledger is not None:
                ledger.session_ended(key, at=at, reason=reason)
            metrics = self.usage_metrics()
            if metrics is not None:
                metrics.session_ended(key, at=at)
            self.log.debug(
                "usage ledger: %s's session ended (%s)", self._log_name, reason
            )
        except Exception:
            self.log.exception(
                "usage ledger: could not record %s's end", self._log_name
            )

    def _usage_failed(self) -> bool:
        """Stopped before the hub saw the server answer: it failed to start."""
        return not self._usage_started or getattr(self, "_waiting_for_response", False)

    # -- the spawner's methods -------------------------------------------------

    async def start(self):
        self._usage_started = False
        if self.usage_begins_in_start:
            self.begin_usage_session()
        self._usage_starting = True
        try:
            result = await super().start()
        except BaseException:
            self.end_usage_session(EndReason.FAILED_TO_START)
            raise
        finally:
            self._usage_starting = False
        self.begin_usage_session()
        self._usage_started = True
        # seen running now: a crash before the first poll closes it here
        self.usage_seen_alive()
        return result

    async def poll(self):
        status = await super().poll()
        if self._usage_stopping:
            return status
        try:
            if self._usage_key is not None:
                if status is None:
                    self.usage_seen_alive()
                else:
                    self.end_usage_session(
                        EndReason.FAILED_TO_START
                        if self._usage_failed()
                        else EndReason.DIED
                    )
            elif (
                status is None
                and self._usage_charge is not None
                and not self._usage_started
                and not getattr(self, "_spawn_pending", False)
            ):
                # a server that outlived the previous hub
                self.begin_usage_session(self._usage_charge)
                self._usage_started = True
        except Exception:
            self.log.exception(
                "usage ledger: could not record a poll of %s", self._log_name
            )
        return status

    async def stop(self, now=False):
        reason = (
            EndReason.FAILED_TO_START
            if self._usage_failed()
            else end_reason(self.user.name, self.usage_settings.culler_services)
        )
        self._usage_stopping = True
        try:
            return await super().stop(now=now)
        finally:
            self._usage_stopping = False
            self.end_usage_session(reason)

    def get_state(self):
        state = super().get_state()
        if self._usage_charge is not None:
            state[STATE_KEY] = self._usage_charge
        return state

    def load_state(self, state):
        super().load_state(state)
        charge = state.get(STATE_KEY) if isinstance(state, dict) else None
        if isinstance(charge, dict) and _valid_charge(charge):
            self._usage_charge = charge

    def clear_state(self):
        super().clear_state()
        self._usage_charge = None


def _valid_charge(charge: dict) -> bool:
    try:
        Resources(**charge["resources"])
        return all(k in charge for k in ("community", "profile", "choices"))
    except Exception:
        logging.getLogger("hubext.usage").warning(
            "usage ledger: ignoring unreadable usage state %r", charge
        )
        return False
