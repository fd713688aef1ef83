"""The settings of budget enforcement while servers run (hub and service)."""

from __future__ import annotations

import os

from traitlets import Bool, Float, Integer, Unicode, validate
from traitlets.config import Configurable

from .._validation import ConfigError


class BudgetEnforcement(Configurable):
    """Warn at a share of a community's budget; stop its servers when spent."""

    enabled = Bool(
        False,
        config=True,
        help="""
        Enforce the communities' budgets (``limits.budget``) while servers
        run: warn the people concerned at ``warn_at`` of a budget, and stop
        the servers charged to it ``grace_period`` seconds after it is found
        spent (never deleting users or data). Off by default: then
        :func:`hubext.enforce.register` adds nothing, and budgets are only
        checked when a server starts.

        Example::

            c.BudgetEnforcement.enabled = True

        .. versionadded:: 0.1
        """,
    )

    interval = Float(
        60.0,
        config=True,
        help="""
        Seconds between two passes (each reads the ledger once per
        community with a budget and lists the running servers). A budget
        can be overrun by about this long on top of the grace period.

        Example::

            c.BudgetEnforcement.interval = 300

        .. versionadded:: 0.1
        """,
    )

    warn_at = Float(
        0.9,
        config=True,
        help="""
        The share of a budget (above 0, at most 1) at which the people
        concerned are warned, once per window (calendar month, or rolling
        number of days): the community's members for its pool, the member
        for a per-member budget.

        Example::

            c.BudgetEnforcement.warn_at = 0.8

        .. versionadded:: 0.1
        """,
    )

    grace_period = Float(
        600.0,
        config=True,
        help="""
        Seconds between the moment a budget is found spent and the stop of
        the servers charged to it (the community's, or the member's for a
        per-member budget; only servers using the spent unit). If usage
        falls back under the budget before then (a rolling window), nothing
        is stopped. 0: stop at once.

        Example::

            c.BudgetEnforcement.grace_period = 1800

        .. versionadded:: 0.1
        """,
    )

    status_file = Unicode(
        "hubext-budgets.json",
        config=True,
        help="""
        Where the service writes the budgets past ``warn_at`` after each
        pass, and where the hub reads the announcements it shows to the
        people concerned (see :mod:`hubext.enforce.status`). Relative paths
        are from the hub's working directory (made absolute by
        ``register``). Holds no secret: names, usage and messages.

        Example::

            c.BudgetEnforcement.status_file = "/srv/jupyterhub/hubext-budgets.json"

        .. versionadded:: 0.1
        """,
    )

    metrics_port = Integer(
        0,
        config=True,
        help="""
        Serve the service's Prometheus metrics on this port (``/metrics``
        on 127.0.0.1); 0 (the default): off.

        Example::

            c.BudgetEnforcement.metrics_port = 9101

        .. versionadded:: 0.1
        """,
    )

    @validate("interval")
    def _check_interval(self, proposal):
        value = proposal["value"]
        if not value > 0:
            raise ConfigError(
                "BudgetEnforcement.interval", f"must be seconds > 0, got {value!r}"
            )
        return value

    @validate("warn_at")
    def _check_warn_at(self, proposal):
        value = proposal["value"]
        if not 0 < value <= 1:
            raise ConfigError(
                "BudgetEnforcement.warn_at",
                f"must be a share of the budget above 0 and at most 1, got {value!r}",
            )
        return value

    @validate("grace_period")
    def _check_grace(self, proposal):
        value = proposal["value"]
        if not value >= 0:
            raise ConfigError(
                "BudgetEnforcement.grace_period",
                f"must be seconds >= 0, got {value!r}",
            )
        return value

    @validate("status_file")
    def _check_status_file(self, proposal):
        value = proposal["value"]
        if not value.strip():
            raise ConfigError(
                "BudgetEnforcement.status_file", "must be a file path, got ''"
            )
        return os.path.abspath(value)

    @validate("metrics_port")
    def _check_port(self, proposal):
        value = proposal["value"]
        if not 0 <= value <= 65535:
            raise ConfigError(
                "BudgetEnforcement.metrics_port",
                f"must be a port (0: off), got {value!r}",
            )
        return value

    def as_args(self) -> list[str]:
        """These settings as the service's command-line arguments (no secret)."""
        return [
            f"--BudgetEnforcement.{name}={getattr(self, name)}"
            for name in (
                "interval",
                "warn_at",
                "grace_period",
                "status_file",
                "metrics_port",
            )
        ]
