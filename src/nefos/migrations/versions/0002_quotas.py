"""quotas

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

import nefos.core.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "commissions",
        sa.Column("serial", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("clientkey", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("issue_time", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("resolve_time", nefos.core.db.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_commissions")),
    )
    with op.batch_alter_table("commissions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commissions_clientkey"), ["clientkey"], unique=False)

    op.create_table(
        "holdings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("holder", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("limit", sa.BigInteger(), nullable=False),
        sa.Column("usage_min", sa.BigInteger(), nullable=False),
        sa.Column("usage_max", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holdings")),
        sa.UniqueConstraint("holder", "source", "resource", name=op.f("uq_holdings_holder")),
    )
    op.create_table(
        "provision_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("clientkey", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("issue_time", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("log_time", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("holder", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("limit", sa.BigInteger(), nullable=False),
        sa.Column("usage_min", sa.BigInteger(), nullable=False),
        sa.Column("usage_max", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provision_log")),
    )
    with op.batch_alter_table("provision_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provision_log_holder"), ["holder"], unique=False)
        batch_op.create_index(batch_op.f("ix_provision_log_serial"), ["serial"], unique=False)

    op.create_table(
        "quota_serials",
        sa.Column("serial", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("clientkey", sa.String(length=80), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("accept", sa.Boolean(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("created_at", nefos.core.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_quota_serials")),
    )
    with op.batch_alter_table("quota_serials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quota_serials_clientkey"), ["clientkey"], unique=False)

    op.create_table(
        "provisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["serial"],
            ["commissions.serial"],
            name=op.f("fk_provisions_serial_commissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisions")),
    )
    with op.batch_alter_table("provisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provisions_serial"), ["serial"], unique=False)

    op.create_table(
        "project_applications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("applicant_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("homepage", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("comments", sa.String(length=1024), nullable=False),
        sa.Column("start_date", nefos.core.db.UtcDateTime(), nullable=True),
        sa.Column("end_date", nefos.core.db.UtcDateTime(), nullable=True),
        sa.Column("join_policy", sa.String(length=16), nullable=False),
        sa.Column("leave_policy", sa.String(length=16), nullable=False),
        sa.Column("max_members", sa.Integer(), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("issue_date", nefos.core.db.UtcDateTime(), nullable=False),
        sa.Column("response", sa.String(length=1024), nullable=False),
        sa.Column("response_date", nefos.core.db.UtcDateTime(), nullable=True),
        sa.Column("response_actor_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["applicant_id"],
            ["users.id"],
            name=op.f("fk_project_applications_applicant_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_project_applications_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_applications_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_applications")),
    )
    with op.batch_alter_table("project_applications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_project_applications_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "project_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1024), nullable=False),
        sa.Column("date", nefos.core.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_log_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_log")),
    )
    with op.batch_alter_table("project_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_project_log_project_id"), ["project_id"], unique=False)

    op.create_table(
        "project_memberships",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested", nefos.core.db.UtcDateTime(), nullable=True),
        sa.Column("accepted", nefos.core.db.UtcDateTime(), nullable=True),
        sa.Column("removed", nefos.core.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_memberships_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_project_memberships_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_memberships")),
        sa.UniqueConstraint(
            "project_id", "user_id", name=op.f("uq_project_memberships_project_id")
        ),
    )
    with op.batch_alter_table("project_memberships", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_project_memberships_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_project_memberships_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "project_resources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("project_capacity", sa.BigInteger(), nullable=False),
        sa.Column("member_capacity", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_resources_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_resources")),
        sa.UniqueConstraint("project_id", "resource", name=op.f("uq_project_resources_project_id")),
    )
    with op.batch_alter_table("project_resources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_project_resources_project_id"), ["project_id"], unique=False
        )

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("homepage", sa.String(length=255), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column(
                "join_policy", sa.String(length=16), nullable=False, server_default="moderated"
            )
        )
        batch_op.add_column(
            sa.Column("leave_policy", sa.String(length=16), nullable=False, server_default="auto")
        )
        batch_op.add_column(sa.Column("max_members", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("end_date", nefos.core.db.UtcDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("deactivation_date", nefos.core.db.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("last_application_id", sa.Integer(), nullable=True))

    # System projects that existed before: closed to joining and leaving, one member.
    projects = sa.table(
        "projects",
        sa.column("is_system", sa.Boolean),
        sa.column("join_policy", sa.String),
        sa.column("leave_policy", sa.String),
        sa.column("max_members", sa.Integer),
        sa.column("private", sa.Boolean),
    )
    op.execute(
        projects.update()
        .where(projects.c.is_system == sa.true())
        .values(join_policy="closed", leave_policy="closed", max_members=1, private=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("last_application_id")
        batch_op.drop_column("deactivation_date")
        batch_op.drop_column("end_date")
        batch_op.drop_column("private")
        batch_op.drop_column("max_members")
        batch_op.drop_column("leave_policy")
        batch_op.drop_column("join_policy")
        batch_op.drop_column("homepage")

    with op.batch_alter_table("project_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_resources_project_id"))

    op.drop_table("project_resources")
    with op.batch_alter_table("project_memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_memberships_user_id"))
        batch_op.drop_index(batch_op.f("ix_project_memberships_project_id"))

    op.drop_table("project_memberships")
    with op.batch_alter_table("project_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_log_project_id"))

    op.drop_table("project_log")
    with op.batch_alter_table("project_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_applications_project_id"))

    op.drop_table("project_applications")
    with op.batch_alter_table("provisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provisions_serial"))

    op.drop_table("provisions")
    with op.batch_alter_table("quota_serials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quota_serials_clientkey"))

    op.drop_table("quota_serials")
    with op.batch_alter_table("provision_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provision_log_serial"))
        batch_op.drop_index(batch_op.f("ix_provision_log_holder"))

    op.drop_table("provision_log")
    op.drop_table("holdings")
    with op.batch_alter_table("commissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commissions_clientkey"))

    op.drop_table("commissions")
