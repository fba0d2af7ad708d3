"""Alembic environment: run with a connection handed over by :func:`paperwire.store.engine.migrate`."""

from alembic import context

from paperwire.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
