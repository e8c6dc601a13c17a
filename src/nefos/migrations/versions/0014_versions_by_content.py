"""an index of versions of more than one block by size and Merkle hash

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

WHERE = sa.text("size > 4194304")


def upgrade() -> None:
    op.create_index(
        "ix_pithos_versions_content",
        "pithos_versions",
        ["size", "hash"],
        sqlite_where=WHERE,
        postgresql_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_pithos_versions_content", table_name="pithos_versions")
