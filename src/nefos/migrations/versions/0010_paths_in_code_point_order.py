"""paths in code point order on PostgreSQL

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Listings compared paths COLLATE "C" against an index in the database's collation,
    # so every page sorted the whole container. SQLite compares bytes already.
    if op.get_context().dialect.name == "postgresql":
        op.alter_column(
            "pithos_nodes",
            "path",
            type_=sa.String(length=2048, collation="C"),
            existing_type=sa.String(length=2048),
            existing_nullable=False,
        )
        op.execute("ANALYZE pithos_nodes")  # the new type dropped the column's statistics


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.alter_column(
            "pithos_nodes",
            "path",
            type_=sa.String(length=2048),
            existing_type=sa.String(length=2048, collation="C"),
            existing_nullable=False,
        )
