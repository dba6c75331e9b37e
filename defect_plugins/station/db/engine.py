"""``--db`` value -> SQLAlchemy :class:`~sqlalchemy.engine.Engine`: an SQLite file, or a PostgreSQL server.

SQLite (a plain path or ``sqlite:///path``):

* pysqlite's own transaction handling is switched off (``isolation_level=None`` on each DBAPI
  connection) and SQLAlchemy's ``begin`` event emits the ``BEGIN`` itself: SQLAlchemy's documented
  recipe for SQLite transactions ("Serializable isolation / Savepoints / Transactional DDL" in
  ``sqlalchemy/dialects/sqlite/pysqlite.py``). A connection whose execution options carry
  ``station_write=True`` (:meth:`.Store.transaction`) begins with ``BEGIN IMMEDIATE``: it takes the
  write lock before it reads anything, so what the block reads (the newest audit hash) cannot change
  before it commits. Reads begin with a plain ``BEGIN``: one snapshot, no lock on writers.
* Each connection gets ``synchronous=FULL`` (``NORMAL`` for a transaction with ``station_durable=False``),
  ``foreign_keys=ON`` and the store's busy timeout (read at each begin, so a caller may lower it).
  WAL mode is set once on the file by the store.

PostgreSQL (``postgresql://...``): the psycopg 3 driver (``postgresql+psycopg://``), with
``pool_pre_ping`` so a connection that died with a server restart is replaced before it is used.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

SQLITE_PREFIX = re.compile(r"^sqlite(\+pysqlite)?://")


def is_url(value: str | Path) -> bool:
    """Whether ``value`` is a database URL (``scheme://...``) rather than a file path."""
    return isinstance(value, str) and "://" in value


def parse(value: str | Path) -> tuple[URL, Path | None]:
    """The SQLAlchemy URL of a ``--db`` value, and the SQLite file's path (None for a server)."""
    if not is_url(value):
        path = Path(value)
        return URL.create("sqlite", database=str(path)), path
    url = make_url(str(value))
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError(f"{value}: the station needs an SQLite file, not an in-memory database")
        return url.set(drivername="sqlite"), Path(url.database)
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg"), None
    raise ValueError(f"{url.render_as_string(hide_password=True)}: unsupported database; give an SQLite file "
                     f"(a path or sqlite:///path) or postgresql://user@host/name")


def shown(url: URL) -> str:
    """The URL as messages name it: never its password."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def make_engine(url: URL, *, busy_timeout_ms: Callable[[], int]) -> Engine:
    """An engine for ``url`` (from :func:`parse`); ``busy_timeout_ms()`` is read at every SQLite begin."""
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    # check_same_thread=False: the pool hands a connection to one thread at a time (the ASGI server's pool);
    # max_overflow: as many connections as the server has request threads, not a wait for a free one
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms() / 1000},
                           pool_size=5, max_overflow=60)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN by pysqlite: the begin event below emits it
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        options = conn.get_execution_options()
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy_timeout_ms())}")
        conn.exec_driver_sql(f"PRAGMA synchronous = {'FULL' if options.get('station_durable', True) else 'NORMAL'}")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("station_write") else "BEGIN")

    return engine
