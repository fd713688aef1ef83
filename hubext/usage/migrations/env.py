"""Alembic environment of the usage ledger.

Run only programmatically (:func:`hubext.usage.store.upgrade_to_head`): the
connection to migrate is passed in ``config.attributes["connection"]``; there
is no ``alembic.ini`` and no logging configuration is loaded.
"""

from alembic import context

from hubext.usage.model import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the usage ledger's migrations run through "
        "hubext.usage.store.upgrade_to_head(engine), not the alembic command"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
