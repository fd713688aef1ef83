"""Alembic environment of the delegated state and its audit log.

Run only programmatically (:func:`hubext.console.store.upgrade_to_head`):
the connection to migrate is passed in ``config.attributes["connection"]``;
there is no ``alembic.ini`` and no logging configuration is loaded.
"""

from alembic import context

from hubext.console.model import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the delegated state's migrations run through "
        "hubext.console.store.upgrade_to_head(engine), not the alembic command"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
