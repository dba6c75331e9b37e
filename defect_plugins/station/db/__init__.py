"""The station's records behind SQLAlchemy Core: tables (:mod:`.schema`), engines (:mod:`.engine`), Alembic migrations.

SQLite (one file on the station PC) is the default; PostgreSQL lets the stations of a plant share one
database. :class:`defect_plugins.station.store.Store` is the only user of this package's engines.
"""
