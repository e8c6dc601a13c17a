"""Identity tables: users, their linked login identities, projects, tokens."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from nefos.core.db import Base, UtcDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    @property
    def system_project_id(self) -> uuid.UUID:
        """Synnefo's rule: a user's system project has the user's own UUID."""
        return self.id


class AuthIdentity(Base):
    """One way to log in as a user (``local``, an OIDC issuer, Shibboleth)."""

    __tablename__ = "auth_identities"
    __table_args__ = (UniqueConstraint("provider", "identifier"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(64))
    identifier: Mapped[str] = mapped_column(String(255))
    info: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Project(Base):
    """A source of resources; every user has a system project named ``system:<uuid>``.

    Identity scopes tokens to projects; ``nefos.quotas.projects`` manages the rest of a
    project's life (applications, memberships, resources).
    """

    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    # uninitialized | active | suspended | terminated | deleted
    state: Mapped[str] = mapped_column(String(32), default="active")
    description: Mapped[str] = mapped_column(String(1024), default="")
    homepage: Mapped[str] = mapped_column(String(255), default="")
    join_policy: Mapped[str] = mapped_column(String(16), default="moderated")
    leave_policy: Mapped[str] = mapped_column(String(16), default="auto")
    max_members: Mapped[int | None] = mapped_column(Integer, default=None)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    end_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    deactivation_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    last_application_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Token(Base):
    """An issued token; only its SHA-256 digest is kept, so a leaked table grants nothing.

    ``kind`` is ``api`` for the user's long-lived API token (one at a time: renewal
    replaces it) or ``session`` for tokens issued by logins and Keystone requests.
    """

    __tablename__ = "tokens"
    __table_args__ = (Index("ix_tokens_user_kind", "user_id", "kind"),)

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    methods: Mapped[str] = mapped_column(String(64), default="token")
    audit_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # The API token encrypted with the deployment's secret key, so its owner can see it
    # again in the web UI; never used to authenticate.
    sealed: Mapped[str | None] = mapped_column(String(255), default=None)


class Feedback(Base):
    """Messages users send from their clients (Synnefo's ``feedback`` call)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(String(4096))
    data: Mapped[str] = mapped_column(String(65536), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class LoginFailures(Base):
    """Recent password logins that did not succeed, counted per account and per client
    address (``nefos.identity.throttle``). ``key`` is a SHA-256 digest of what is
    counted, so the table keeps no e-mail addresses or IP addresses of strangers."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    since: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
