"""Alembic environment: runs on the engine the platform hands over (see storage/migrate.py)."""

from alembic import context

from plateforme.storage.tables import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
