"""Alembic environment: runs on the connection sanad hands over (see registry.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from sanad.registry import all_models  # noqa: F401  (registers every table on Base.metadata)
from sanad.registry.db import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("sanad migrations run through `sanad init` (registry.migrate)")
_run(connection)
