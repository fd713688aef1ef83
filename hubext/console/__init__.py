"""Communities run themselves: the delegated state, its audit log, the console.

- :mod:`.chain`: the audit log's hash chain, and its check (pure);
- :mod:`.model`: the tables (one document per community, the log);
- :mod:`.store`: the database, its migrations, the API the console and the
  spawners call (:class:`~.store.StateStore`) and the hub's cache;
- :mod:`.config`: ``c.Console`` (where the state is), the hub's store;
- :mod:`.command`: ``hubext audit verify`` and ``hubext audit list``;
- the console, in the hub: :mod:`.access` (its scopes), :mod:`.edits` (the
  changes, pure), :mod:`.view` (what it shows, pure), :mod:`.members`,
  :mod:`.handlers` (pages and REST API), :mod:`.hub` (its registration,
  :func:`register_console`, and what its handlers work with).
"""


def register_console(c) -> None:
    """Turn the console on in the hub's configuration: see
    :func:`hubext.console.hub.register_console` (imported only when called)."""
    from .hub import register_console as register

    register(c)


__all__ = ["register_console"]
