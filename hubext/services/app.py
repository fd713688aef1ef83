"""What hubext's hub services share: log lines in the hub's shape, token-free.

:class:`HubServiceApplication` is the base of the services JupyterHub runs
for hubext (``python -m hubext.culler``, ``python -m hubext.enforce``): their
log lines look like the hub's own (``[I 2026-11-29 10:00:00.123 Culler]
...``), since they sit in the hub's output between its lines; every record,
other libraries' too (tornado, asyncio), is scrubbed of the service's API
token and of every piece of it (:mod:`hubext.services.redact`) before it is
written.
"""

from __future__ import annotations

import logging
import os

from traitlets import Unicode, default
from traitlets.config import Application

from .redact import RedactFilter


class HubServiceApplication(Application):
    """An Application run as a hub service: the hub's URL and its own token."""

    url = Unicode(
        config=True,
        help="""
        The hub's API URL. Default: ``$JUPYTERHUB_API_URL`` (set by JupyterHub
        for its services), else ``http://127.0.0.1:8081/hub/api``.
        """,
    )

    @default("url")
    def _url_default(self):
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    api_token = Unicode(
        config=True,
        help="""
        The service's API token. Default: ``$JUPYTERHUB_API_TOKEN`` (set by
        JupyterHub for its services). Prefer the environment: a token on a
        command line is visible to other users of the machine.
        """,
    ).tag(secret=True)

    @default("api_token")
    def _api_token_default(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("log_level")
    def _log_level_default(self):
        # One line per action and per pass, in the hub's log.
        return logging.INFO

    @default("log_format")
    def _log_format_default(self):
        # JupyterHub's shape: ``[I 2026-11-29 10:00:00.123 JupyterHub ...]``
        return "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s] %(message)s"

    def get_default_logging_config(self) -> dict:
        """traitlets' logging set-up, plus: every record scrubbed of the token
        (and its pieces), and other libraries' warnings (tornado, asyncio) in
        the same format through the same handler, rather than bare on stderr."""
        config = super().get_default_logging_config()
        console = config.get("handlers", {}).get("console")
        if console is None:  # pythonw: no logging at all
            return config
        config.setdefault("filters", {})["redact"] = {
            "()": RedactFilter,
            "secret": lambda: self.api_token,
        }
        console["filters"] = ["redact"]
        config["loggers"][self.__class__.__name__]["propagate"] = False
        config["root"] = {"level": "WARNING", "handlers": ["console"]}
        return config
