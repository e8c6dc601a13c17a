"""quotas: the provision log indexed by holder and time (usage history) and by time (pruning)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-12
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provision_log", schema=None) as batch_op:
        # (holder, log_time) serves every lookup by holder that the old index did
        batch_op.drop_index(batch_op.f("ix_provision_log_holder"))
        batch_op.create_index("ix_provision_log_holder_log_time", ["holder", "log_time"])
        batch_op.create_index("ix_provision_log_log_time", ["log_time"])


def downgrade() -> None:
    with op.batch_alter_table("provision_log", schema=None) as batch_op:
        batch_op.drop_index("ix_provision_log_log_time")
        batch_op.drop_index("ix_provision_log_holder_log_time")
        batch_op.create_index(batch_op.f("ix_provision_log_holder"), ["holder"], unique=False)
