"""Alembic's environment for the station's records: always run by :func:`..migrate.upgrade` on its connection.

Follows Alembic's "Sharing a Connection across one or more programmatic migration commands" cookbook
recipe: the caller opens the transaction (with its lock: ``BEGIN IMMEDIATE`` on SQLite, an advisory
lock on PostgreSQL) and passes the connection in ``config.attributes["connection"]``; nothing here
opens a connection or reads an alembic.ini. Offline (SQL script) mode is not supported.
"""
from __future__ import annotations

from alembic import context

from defect_plugins.station.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("the station's migrations run on a connection given by defect_plugins.station.db.migrate")
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
