"""``c.Console``: where the communities' delegated state and audit log are kept.

The hub opens the store when it starts (:func:`start_hub_console`, from
:mod:`hubext.hub_start`), creating or upgrading its schema, and keeps one
:class:`~hubext.console.store.StateStore` per database in the process
(:func:`hub_store`), whose cache the spawn form reads.
"""

from __future__ import annotations

import logging
import threading

from traitlets import TraitError, Unicode, validate
from traitlets.config import Config, Configurable

from .._validation import ConfigError
from ..config_reading import check_trait_values
from ..database import password_of, redact, unsupported_url_problem
from ..services.redact import scrub
from .store import StateStore, default_db_url


class Console(Configurable):
    """Where the communities' delegated state and its audit log are kept."""

    db_url = Unicode(
        "",
        config=True,
        help="""
        SQLAlchemy URL of the database of the communities' delegated state
        (what their admins change within the ``self_service`` bounds) and of
        its audit log.

        Empty (the default): a SQLite file of its own,
        ``hubext-state.sqlite``, in the directory of the hub's own SQLite
        database (``JupyterHub.db_url``), or in the hub's working directory
        when the hub's database is not a SQLite file. Back it up with the
        hub's database: it holds the communities' settings. For PostgreSQL,
        install ``hubext[postgresql]`` (psycopg 3); ``postgresql://`` and
        ``postgresql+psycopg://`` both use it. Its tables
        (``hubext_delegated``, ``hubext_audit``, and the version table
        ``hubext_state_alembic_version``) may live in the hub's own
        PostgreSQL database, in the usage ledger's, or in another one. The
        hub creates or upgrades them when it starts. The password is never
        logged.

        Example::

            c.Console.db_url = "postgresql://hubext:PASSWORD@db.internal/hubext"

        .. versionadded:: 0.1
        """,
    )

    @validate("db_url")
    def _check_db_url(self, proposal):
        value = proposal["value"]
        problem = unsupported_url_problem(value) if value else None
        if problem is not None:
            # the value is not shown: it may hold a password
            raise TraitError(f"Console.db_url: {problem}")
        return value

    def resolved_db_url(self, hub_db_url: str) -> str:
        """:attr:`db_url`, or the default beside the hub's database."""
        return self.db_url or default_db_url(hub_db_url)


def check_console_config(config: Config) -> None:
    """Start-up: ``c.Console``'s settings, refused with their key (never the value).

    A name ``Console`` does not have (with a did-you-mean), a value of the
    wrong type, a URL that cannot be parsed or names a database the store
    does not run on. Raises ConfigError(s).
    """
    check_trait_values(Console, config)
    try:
        Console(config=config)
    except TraitError as e:
        key, _, reason = str(e).splitlines()[0].partition(": ")
        raise ConfigError(key, reason) from None


#: The hub process's stores, by database URL: one per database, so that a
#: change through it invalidates the cache every reader in the process uses.
_stores: dict[str, StateStore] = {}
_opening = threading.Lock()


def hub_store(
    settings: Console, hub_db_url: str, log: logging.Logger | None = None
) -> StateStore:
    """The hub process's store for these settings, opened at its first use.

    Its schema is created or upgraded when it is opened. Raises
    :class:`~hubext.database.UnknownSchema` and SQLAlchemy's errors when the
    database cannot be opened (the next call tries again).
    """
    url = settings.resolved_db_url(hub_db_url)
    with _opening:
        store = _stores.get(url)
        if store is None:
            store = StateStore.open(url, log=log)
            _stores[url] = store
    return store


def start_hub_console(app, log: logging.Logger) -> StateStore | None:
    """At hub start-up: the delegated state's store, opened and its schema upgraded.

    ``app`` is the JupyterHub application. A database that cannot be opened
    (unreachable, or written by a newer hubext) is logged as an error, with
    the URL's password hidden, and the hub starts: the communities then get
    their configured settings only, until it can be read.
    """
    settings = Console(parent=app)
    url = settings.resolved_db_url(app.db_url)
    try:
        store = hub_store(settings, app.db_url, log)
    except Exception as e:
        reason = scrub(str(e).splitlines()[0] if str(e) else "", [password_of(url)])
        log.error(
            "hubext: the delegated state at %s cannot be opened: %s: %s; "
            "the communities get their configured settings only",
            redact(url),
            type(e).__name__,
            reason,
        )
        return None
    log.info("hubext: the delegated state is in %s", redact(url))
    return store
