"""identity: application credentials with their access rules, EC2 credentials, and
the credential a token came from

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

import nefos.core.db

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "application_credentials",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("roles", sa.String(length=255), nullable=False),
        sa.Column("unrestricted", sa.Boolean(), nullable=False),
        sa.Column("expires_at", nefos.core.db.UtcDateTime(), nullable=True),
        sa.Column("created_at", nefos.core.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_application_credentials_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_application_credentials_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_credentials")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_application_credentials_user_id")),
    )
    op.create_table(
        "access_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_access_rules_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_rules")),
        sa.UniqueConstraint(
            "user_id", "service", "method", "path", name=op.f("uq_access_rules_user_id")
        ),
    )
    op.create_table(
        "application_credential_rules",
        sa.Column("credential_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["application_credentials.id"],
            name=op.f("fk_application_credential_rules_credential_id_application_credentials"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["access_rules.id"],
            name=op.f("fk_application_credential_rules_rule_id_access_rules"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint(
            "credential_id", "rule_id", name=op.f("pk_application_credential_rules")
        ),
    )
    op.create_index(
        op.f("ix_application_credential_rules_rule_id"),
        "application_credential_rules",
        ["rule_id"],
        unique=False,
    )
    op.create_table(
        "ec2_credentials",
        sa.Column("access", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("sealed_secret", sa.String(length=255), nullable=False),
        sa.Column("created_at", nefos.core.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_ec2_credentials_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_ec2_credentials_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("access", name=op.f("pk_ec2_credentials")),
    )
    op.create_index(
        op.f("ix_ec2_credentials_user_id"), "ec2_credentials", ["user_id"], unique=False
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("application_credential_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tokens_application_credential_id_application_credentials"),
            "application_credentials",
            ["application_credential_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_tokens_application_credential_id_application_credentials"),
            type_="foreignkey",
        )
        batch_op.drop_column("application_credential_id")
    op.drop_index(op.f("ix_ec2_credentials_user_id"), table_name="ec2_credentials")
    op.drop_table("ec2_credentials")
    op.drop_index(
        op.f("ix_application_credential_rules_rule_id"),
        table_name="application_credential_rules",
    )
    op.drop_table("application_credential_rules")
    op.drop_table("access_rules")
    op.drop_table("application_credentials")
