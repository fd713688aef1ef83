"""Budgets while servers run: warn at a share of a budget, stop servers when spent.

Off by default (``c.BudgetEnforcement.enabled``). See :mod:`.app` for the
service, :mod:`.decide` for the decision and :mod:`.status` for the
announcements the hub shows.
"""

from __future__ import annotations

import sys

from ..limits import default_limits
from ..service_data import BUDGETS_KIND, SERVICE_ENV
from .settings import BudgetEnforcement
from .status import Announcements

#: The least-privilege scopes of the service: list the servers (with their
#: ``user_options``, where the charged community is) and stop them.
ENFORCER_SCOPES = ["list:users", "read:servers", "delete:servers"]

#: The kind of service :func:`register` marks (``$HUBEXT_SERVICE``).
SERVICE_KIND = BUDGETS_KIND


def register(c, *, name: str = "hubext-budgets", environment=None, **settings) -> bool:
    """Run budget enforcement as a hub-managed service, if it is enabled.

    In ``jupyterhub_config.py``, after ``c.UsageLedger.db_url`` and
    ``c.UsageLimits.default`` if you set them::

        from hubext.enforce import register
        c.BudgetEnforcement.enabled = True
        c.BudgetEnforcement.grace_period = 900
        register(c)

    ``settings`` (``enabled=True, grace_period=900``, ...) set
    ``c.BudgetEnforcement`` traits first. When ``enabled`` is False (the
    default) nothing is added and False is returned. Else the settings are
    checked (a bad one raises, naming ``BudgetEnforcement.<trait>``), and
    this adds the service (``python -m hubext.enforce``), marked so that
    the hub hands it the communities, ``c.UsageLimits.default`` and the
    ledger's URL when it starts (:mod:`hubext.service_data`), its role
    (:data:`ENFORCER_SCOPES`), and ``c.JupyterHub.template_vars
    ["announcement"]``, which shows the warnings to the people concerned on
    the hub's pages (after any announcement set before this call).
    """
    for key, value in settings.items():
        setattr(c.BudgetEnforcement, key, value)
    config = BudgetEnforcement(config=c)
    if not config.enabled:
        return False
    if "UsageLimits" in c and "default" in c.UsageLimits:
        default_limits(c.UsageLimits.default)  # a bad value stops the hub now
    env = {**dict(environment or {}), SERVICE_ENV: SERVICE_KIND}
    c.JupyterHub.services.append(
        {
            "name": name,
            "command": [sys.executable, "-m", "hubext.enforce", *config.as_args()],
            "environment": env,
        }
    )
    c.JupyterHub.load_roles.append(
        {"name": name, "scopes": list(ENFORCER_SCOPES), "services": [name]}
    )
    if "template_vars" in c.JupyterHub and isinstance(c.JupyterHub.template_vars, dict):
        previous = c.JupyterHub.template_vars.get("announcement")
        c.JupyterHub.template_vars["announcement"] = Announcements(
            config.status_file, previous
        )
    else:
        c.JupyterHub.template_vars.update(
            {"announcement": Announcements(config.status_file)}
        )
    return True


__all__ = ["ENFORCER_SCOPES", "SERVICE_KIND", "BudgetEnforcement", "register"]
