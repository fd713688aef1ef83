"""``c.UsageLedger``: where the hub records usage, as traits.

The spawners build their :class:`~hubext.usage.ledger.Ledger` from this
configurable (``UsageLedger(parent=spawner).make_ledger(hub_db_url, log)``),
so an admin configures the ledger in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from traitlets import Bool, Float, Integer, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from .ledger import Ledger
from .model import utcnow
from .store import default_db_url

SUPPORTED_BACKENDS = ("sqlite", "postgresql")


class UsageLedger(Configurable):
    """The usage ledger's settings (one record per server session)."""

    enabled = Bool(
        True,
        config=True,
        help="""
        Record every server session in the usage ledger.

        Example::

            c.UsageLedger.enabled = False

        .. versionadded:: 0.1
        """,
    )

    db_url = Unicode(
        "",
        config=True,
        help="""
        SQLAlchemy URL of the ledger's database.

        Empty (the default): a SQLite file, ``hubext-usage.sqlite``, in the
        directory of the hub's own SQLite database (``JupyterHub.db_url``),
        or in the hub's working directory when the hub's database is not a
        SQLite file. For PostgreSQL, install ``hubext[postgresql]`` (psycopg
        3); ``postgresql://`` and ``postgresql+psycopg://`` both use it. The
        ledger's tables (``hubext_usage_*``) may live in the hub's own
        PostgreSQL database or in another one. The password is never logged.

        Example::

            c.UsageLedger.db_url = "postgresql://hubext:PASSWORD@db.internal/usage"

        .. versionadded:: 0.1
        """,
    )

    max_pending = Integer(
        100_000,
        min=1,
        config=True,
        help="""
        Starts and stops kept in memory while the database cannot be reached.

        Heartbeats are merged per server and not counted. Past this number a
        new event is refused, counted and logged as an error (an older one is
        never dropped).

        Example::

            c.UsageLedger.max_pending = 200_000

        .. versionadded:: 0.1
        """,
    )

    retry_max = Float(
        60.0,
        min=0.1,
        config=True,
        help="""
        Longest wait, in seconds, between two attempts to reach the database
        during an outage (the wait doubles from half a second up to this).

        Example::

            c.UsageLedger.retry_max = 30

        .. versionadded:: 0.1
        """,
    )

    writer_process = Bool(
        True,
        config=True,
        help="""
        Write the ledger from a process of its own (a child of the hub that
        exits with it), so that the hub's event loop never waits for the
        writer, not even for Python's global interpreter lock.

        The hub keeps each event until the process has written it; if the
        process dies, a new one is started and given every event not yet
        written. False: write from a thread of the hub process (a start can
        then wait about 2 ms more for the event loop, at the 99th percentile,
        on a saturated machine; see the benchmarks), for a hub that cannot
        start a Python process of its own.

        Example::

            c.UsageLedger.writer_process = False

        .. versionadded:: 0.1
        """,
    )

    user_group_info_metric = Bool(
        False,
        config=True,
        help="""
        Serve ``jupyterhub_user_group_info`` on the hub's ``/hub/metrics``.

        The gauge of 2i2c's jupyterhub-groups-exporter (same name, labels and
        values), read from the hub's database at each scrape, so that
        dashboards joining on it (the Grafana "User Group Diagnostics"
        dashboard) work without that exporter. It has one series per user
        and group (plus ``multiple`` and ``none``) and costs the hub's event
        loop about 0.2 s per scrape at 5,000 users in 3 groups each, so it is
        off by default: turn it on in place of the exporter, not beside it
        (the series would be stored twice). Served, like hubext's own usage
        counters (``hubext_usage_*``), while :attr:`enabled` is on.

        Example::

            c.UsageLedger.user_group_info_metric = True

        .. versionadded:: 0.1
        """,
    )

    gpu_resources = List(
        Unicode(),
        default_value=["nvidia.com/gpu", "amd.com/gpu", "gpu.intel.com/i915"],
        config=True,
        help="""
        Kubernetes extended resources counted as GPUs: a server's GPUs are
        the sum of its ``extra_resource_limits`` for these names.

        Example::

            c.UsageLedger.gpu_resources = ["nvidia.com/gpu", "nvidia.com/mig-1g.5gb"]

        .. versionadded:: 0.1
        """,
    )

    culler_services = List(
        Unicode(),
        default_value=["hubext-culler", "idle-culler", "cull-idle"],
        config=True,
        help="""
        Names of hub services not registered by hubext whose stops are
        recorded as ``culled``: by default zero-to-jupyterhub's
        jupyterhub-idle-culler, and hubext's culler run as a
        zero-to-jupyterhub ``hub.services`` entry named ``hubext-culler``.
        Services registered with ``hubext.culler.register`` and
        ``hubext.enforce.register`` are known by how they were registered,
        whatever their names: ``culled`` and ``stopped_for_budget``. Stops
        by any other service are recorded as ``stopped_by_admin``.

        Example::

            c.UsageLedger.culler_services = ["idle-culler", "my-culler"]

        .. versionadded:: 0.1
        """,
    )

    @validate("db_url")
    def _check_db_url(self, proposal):
        value = proposal["value"]
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError:
            # the value is not shown: it may hold a password
            raise TraitError(
                "UsageLedger.db_url: not a database URL; expected e.g. "
                "sqlite:////srv/jupyterhub/hubext-usage.sqlite or "
                "postgresql://user:password@host/database"
            ) from None
        if url.get_backend_name() not in SUPPORTED_BACKENDS:
            raise TraitError(
                f"UsageLedger.db_url: unsupported database {url.drivername!r}; "
                "supported: sqlite, postgresql"
            )
        return value

    def resolved_db_url(self, hub_db_url: str) -> str:
        """:attr:`db_url`, or the default beside the hub's database."""
        return self.db_url or default_db_url(hub_db_url)

    def make_ledger(
        self,
        hub_db_url: str,
        log: logging.Logger | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> Ledger:
        """A :class:`Ledger` with these settings (not started), writing from a
        process of its own unless :attr:`writer_process` is False."""
        return Ledger(
            self.resolved_db_url(hub_db_url),
            clock=clock,
            log=log,
            max_pending=self.max_pending,
            retry_max=self.retry_max,
            process=self.writer_process,
        )
