"""The station's tables as SQLAlchemy Core objects (no ORM): what the store's queries are written against.

This is the schema at the newest migration (``migrations/versions``); the migrations write the DDL
themselves, so that an old revision stays what it was when it shipped. Column comments are in
``migrations/versions/0001_schema_3.py``. Ids are ``INTEGER PRIMARY KEY AUTOINCREMENT`` on SQLite
(``sqlite_autoincrement``: ids are never reused, which the audit check relies on) and identity columns
on PostgreSQL, unique across every station that writes to the database. Timestamps are ISO 8601 text,
as the first release wrote them.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, MetaData, Table, Text

metadata = MetaData()

inspections = Table(
    "inspections", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("image_sha256", Text, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("models", Text, nullable=False),
    Column("results", Text, nullable=False),
    Column("grade", Text, nullable=False),
    Column("class_name", Text, nullable=False),
    Column("score", Float),
    Column("view_token_sha256", Text),
    Column("part_id", Text),
    Column("lot", Text),
    Column("verdict", Text),
    # revision 2: who wrote it, and the writer's own key (a retried insert finds its first try by it)
    Column("line", Text, index=True),
    Column("station", Text, index=True),
    Column("write_key", Text, unique=True),
    sqlite_autoincrement=True,
)

decisions = Table(
    "decisions", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("inspection_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("inspections.id"),
           nullable=False),
    Column("decided_at", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("system_grade", Text, nullable=False),
    Column("final_grade", Text, nullable=False),
    Column("thresholds", Text, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("operator", Text, nullable=False, server_default=""),
    Column("station", Text, index=True),  # revision 2, as the write key
    Column("write_key", Text, unique=True),
    sqlite_autoincrement=True,
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("inspection_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("inspections.id")),
    Column("channel", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("published_at", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index("outbox_pending", "channel", "published_at", "id"),
    sqlite_autoincrement=True,
)

users = Table(
    "users", metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("disabled", Integer, nullable=False, server_default="0"),
)

sessions = Table(
    "sessions", metadata,
    Column("token_sha256", Text, primary_key=True),
    Column("user_name", Text, ForeignKey("users.name"), nullable=False, index=True),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
)

# The id is chosen by the writer (it is part of the hashed entry): see defect_plugins/station/audit.py
audit = Table(
    "audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Column("station", Text),  # revision 2: not part of the hashed entry, so that older entries verify unchanged
    sqlite_autoincrement=True,
)
