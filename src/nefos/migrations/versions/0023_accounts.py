"""accounts: sign-up state and accepted terms of users, single-use tokens sent by mail

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

import nefos.core.db

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("signup_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("terms_version", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("terms_accepted_at", nefos.core.db.UtcDateTime(), nullable=True))
        batch.create_index(batch.f("ix_users_signup_state"), ["signup_state"], unique=False)
    op.create_table(
        "account_tokens",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_at", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("expires_at", nefos.core.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_account_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_account_tokens")),
    )
    op.create_index(op.f("ix_account_tokens_user_id"), "account_tokens", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_account_tokens_user_id"), table_name="account_tokens")
    op.drop_table("account_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_index(batch.f("ix_users_signup_state"))
        batch.drop_column("terms_accepted_at")
        batch.drop_column("terms_version")
        batch.drop_column("signup_state")
