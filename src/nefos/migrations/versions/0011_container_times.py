"""every container has a modification time

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import nefos.core.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Containers never written to had no statistics row, so no Last-Modified; they are
    # given the time of this migration (their creation time was not kept).
    insert = sa.text(
        """
        INSERT INTO pithos_container_stats (node_id, objects, bytes, mtime)
        SELECT node_id, 0, 0, :now FROM pithos_policies
        WHERE node_id NOT IN (SELECT node_id FROM pithos_container_stats)
        """
    ).bindparams(sa.bindparam("now", nefos.core.db.utcnow(), type_=nefos.core.db.UtcDateTime()))
    op.execute(insert)


def downgrade() -> None:
    pass
