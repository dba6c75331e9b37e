"""Revision 2: records say which line and station wrote them; an inspection carries its writer's key.

Several stations may share one PostgreSQL database: ``inspections.line`` / ``.station``,
``decisions.station`` and ``audit.station`` (nullable text, NULL for records written before), indexed
for a plant's per-station queries. ``inspections.write_key`` and ``decisions.write_key`` are unique keys the
writer makes before the insert: a write retried after a lost connection finds its first try by it instead of inserting
twice (NULL for older rows; unique indexes admit many NULLs on both SQLite and PostgreSQL). The audit's
``station`` is outside the hashed fields, so every older entry verifies unchanged.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no batch copy): the SQLite triggers and the view stay as they are
    for table, column in (("inspections", "line"), ("inspections", "station"), ("decisions", "station"),
                          ("audit", "station")):
        op.add_column(table, sa.Column(column, sa.Text(), nullable=True))
        if table != "audit":
            op.create_index(f"{table}_{column}", table, [column])
    for table in ("inspections", "decisions"):
        op.add_column(table, sa.Column("write_key", sa.Text(), nullable=True))
        op.create_index(f"{table}_write_key", table, ["write_key"], unique=True)


def downgrade() -> None:
    raise NotImplementedError("the station's records are never migrated down")
