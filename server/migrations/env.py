"""Alembic environment for the audit database.

Run through `sector_credit.server.db.migrate` (no alembic.ini): it passes an open connection
in `config.attributes["connection"]`, holding the migration lock. Given only a URL
(`sqlalchemy.url`), this builds its own connection, or emits SQL in offline mode.
"""

from __future__ import annotations

from alembic import context
from sector_credit.server.db.engine import create_engine, database_url
from sector_credit.server.db.models import Base
from sqlalchemy.engine import Connection

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(
        url=database_url(config.get_main_option("sqlalchemy.url", "")),
        target_metadata=target_metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        # One transaction from reading the version to the last migration, on SQLite too
        # (engine.py gives it real transactions): a second process waits, then finds head.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (given := config.attributes.get("connection")) is not None:
    run_online(given)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url", ""), null_pool=True)
    try:
        with engine.connect() as connection:
            run_online(connection)
    finally:
        engine.dispose()
