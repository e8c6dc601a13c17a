"""an index of the objects that expire

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

WHERE = sa.text("key = ':delete-at'")


def upgrade() -> None:
    op.create_index(
        "ix_pithos_attributes_delete_at",
        "pithos_attributes",
        ["value"],
        sqlite_where=WHERE,
        postgresql_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_pithos_attributes_delete_at", table_name="pithos_attributes")
