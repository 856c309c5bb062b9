"""Alembic's environment: run by ``runner.py`` with the connection to migrate in
``config.attributes["connection"]`` (inside its one transaction); no alembic.ini, no URL."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
