"""Communities run themselves: the delegated state, its audit log, the console.

- :mod:`.chain`: the audit log's hash chain, and its check (pure);
- :mod:`.model`: the tables (one document per community, the log);
- :mod:`.store`: the database, its migrations, the API the console and the
  spawners call (:class:`~.store.StateStore`) and the hub's cache;
- :mod:`.config`: ``c.Console`` (where the state is), the hub's store;
- :mod:`.command`: ``hubext audit verify`` and ``hubext audit list``.
"""
