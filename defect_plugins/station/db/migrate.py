"""Bring a station database to the newest migration, in one locked transaction, with Alembic run programmatically.

Follows Alembic's "Run migrations programmatically" and connection-sharing recipes
(https://alembic.sqlalchemy.org/en/latest/api/commands.html): a :class:`alembic.config.Config`
without an ini file, ``script_location`` given as a package path (the migrations ship inside the
package), and the caller's connection in ``config.attributes``. Several stations may start at once
against one database: on PostgreSQL a transaction-level advisory lock serialises them, on SQLite the
transaction is ``BEGIN IMMEDIATE`` (see :mod:`.engine`); the second one finds the work done.

A database of the raw-``sqlite3`` releases (``PRAGMA user_version`` 3, no ``alembic_version`` table)
is *stamped* with revision 1, which is that schema exactly; older files were brought to version 3
beforehand by the store with those releases' own steps (:func:`.sqlite_schema3.upgrade_to_3`).
"""
from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

SCRIPT_LOCATION = "defect_plugins.station.db:migrations"
HEAD = "head"
ADOPTED = "0001"  # the revision that is schema version 3
LOCK = 0x5354_4F52  # PostgreSQL advisory lock key of the station's migrations ("STOR")


def config(connection: Connection) -> Config:
    """An Alembic configuration for ``connection``: no ini file, the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    return cfg


def current(connection: Connection) -> str | None:
    """The database's Alembic revision; None when it was never stamped."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


class MigrationRefused(Exception):
    """The database is not one the station's migrations can bring up to date (foreign, or of a newer release)."""


def upgrade(engine: Engine) -> None:
    """Stamp a schema-3 database of the older releases, then run every migration it lacks.

    Only an SQLite file can be of the raw-``sqlite3`` releases (the store checked its ``user_version``
    before); a PostgreSQL database with the station's tables but no revision was made by someone else.
    """
    with engine.connect().execution_options(station_write=True) as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})
        revision = current(connection)
        if revision is None and inspect(connection).has_table("inspections"):
            if connection.dialect.name != "sqlite":
                raise MigrationRefused("not a defect-station database: it has an 'inspections' table but no "
                                       "alembic_version (the station's databases are made by its migrations)")
            command.stamp(config(connection), ADOPTED)
        try:
            command.upgrade(config(connection), HEAD)
        except CommandError as error:  # a revision this release does not know
            raise MigrationRefused(f"its schema revision {revision!r} is not one of this release's (written by a "
                                   f"newer release?): {error}") from None
