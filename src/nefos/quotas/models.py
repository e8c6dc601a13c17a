"""Quota tables: holdings, commissions and their provisions, the provision log, client
serials, and the project records around them (applications, resources, memberships)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from nefos.core.db import Base, UtcDateTime, utcnow

NO_SOURCE = ""  # a project's own holding has no source; "" keeps the unique key strict


class Holding(Base):
    """What ``holder`` may take of ``resource`` from ``source``: a limit and a usage range.

    ``usage_min`` counts what is certainly used (accepted), ``usage_max`` what may be
    (accepted plus pending imports); pending releases lower ``usage_min`` first.
    """

    __tablename__ = "holdings"
    __table_args__ = (UniqueConstraint("holder", "source", "resource"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    holder: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(80), default=NO_SOURCE)
    resource: Mapped[str] = mapped_column(String(64))
    limit: Mapped[int] = mapped_column(BigInteger)
    usage_min: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_max: Mapped[int] = mapped_column(BigInteger, default=0)


class Commission(Base):
    __tablename__ = "commissions"

    serial: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    clientkey: Mapped[str] = mapped_column(String(80), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")  # accepted | rejected
    issue_time: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    resolve_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)


class Provision(Base):
    __tablename__ = "provisions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    serial: Mapped[int] = mapped_column(
        ForeignKey("commissions.serial", ondelete="CASCADE"), index=True
    )
    holder: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(80), default=NO_SOURCE)
    resource: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)


class ProvisionLog(Base):
    """Every resolved provision with the holding as it stood after it: the history usage
    series (``nefos.quotas.history``) and billing read, kept ``usage_history_days``."""

    __tablename__ = "provision_log"
    # A holder's history in time order (the usage series); the time alone for pruning.
    __table_args__ = (
        Index("ix_provision_log_holder_log_time", "holder", "log_time"),
        Index("ix_provision_log_log_time", "log_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    serial: Mapped[int] = mapped_column(Integer, index=True)
    clientkey: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(255), default="")
    outcome: Mapped[str] = mapped_column(String(16))  # accept | reject
    issue_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    log_time: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    holder: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(80))
    resource: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)
    limit: Mapped[int] = mapped_column(BigInteger)
    usage_min: Mapped[int] = mapped_column(BigInteger)
    usage_max: Mapped[int] = mapped_column(BigInteger)


class QuotaSerial(Base):
    """The calling service's own record of a commission (Synnefo's QuotaHolderSerial).

    Written in the same transaction as the resource change it pays for, so after a
    crash ``nefos quota reconcile`` knows which pending serials to accept.
    """

    __tablename__ = "quota_serials"

    serial: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    clientkey: Mapped[str] = mapped_column(String(80), index=True)
    pending: Mapped[bool] = mapped_column(Boolean, default=True)
    accept: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class ProjectResource(Base):
    """The quota a project grants: in all (``project_capacity``) and per member."""

    __tablename__ = "project_resources"
    __table_args__ = (UniqueConstraint("project_id", "resource"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    resource: Mapped[str] = mapped_column(String(64))
    project_capacity: Mapped[int] = mapped_column(BigInteger)
    member_capacity: Mapped[int] = mapped_column(BigInteger)


class ProjectApplication(Base):
    """A request to create a project, or to modify one; approved, it becomes the project."""

    __tablename__ = "project_applications"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    applicant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE")
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    # pending | approved | replaced | denied | dismissed | cancelled
    state: Mapped[str] = mapped_column(String(16), default="pending")
    name: Mapped[str] = mapped_column(String(255))
    homepage: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")
    comments: Mapped[str] = mapped_column(String(1024), default="")
    start_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    end_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    join_policy: Mapped[str] = mapped_column(String(16), default="moderated")
    leave_policy: Mapped[str] = mapped_column(String(16), default="auto")
    max_members: Mapped[int | None] = mapped_column(Integer, default=None)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    resources: Mapped[dict[str, dict[str, int]]] = mapped_column(JSON, default=dict)
    issue_date: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    response: Mapped[str] = mapped_column(String(1024), default="")
    response_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    response_actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)


class ProjectMembership(Base):
    __tablename__ = "project_memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # requested | accepted | leave_requested | suspended | rejected | cancelled | removed
    state: Mapped[str] = mapped_column(String(16))
    requested: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    accepted: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    removed: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)


class ProjectLog(Base):
    """Who did what to a project or membership, and why."""

    __tablename__ = "project_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    membership_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(16), default="")
    to_state: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(String(1024), default="")
    date: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
