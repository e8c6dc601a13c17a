"""Identity tables: users, their linked login identities, projects, tokens, and the
credentials users hand to applications (application and EC2 credentials)."""

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
    # Where a self-made account is on its way in (nefos.identity.signup_rules.STATES):
    # unverified, pending, active, rejected; None for one an operator made.
    signup_state: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    # The version of the terms of use the user accepted, and when.
    terms_version: Mapped[str | None] = mapped_column(String(64), default=None)
    terms_accepted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
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
    # Set on tokens an application credential got: they end with it, and carry its
    # roles and access rules.
    application_credential_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("application_credentials.id", ondelete="CASCADE"), default=None
    )


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


class ApplicationCredential(Base):
    """A user's delegation to an application (Keystone's application credential): a
    secret that gets tokens for one project with a subset of the user's roles, within
    its access rules. Only a hash of the secret is kept; the secret is shown once."""

    __tablename__ = "application_credentials"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(1024), default="")
    secret_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(255))  # role names, comma-separated
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class AccessRule(Base):
    """One request an application credential's tokens may make: a service type, an
    HTTP method and a path pattern (``*`` one segment, ``**`` any). A user's rules are
    shared by their credentials, as Keystone keeps them."""

    __tablename__ = "access_rules"
    __table_args__ = (UniqueConstraint("user_id", "service", "method", "path"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(255))


class CredentialRule(Base):
    """Which access rules bind which application credential. A rule in use cannot be
    deleted (RESTRICT); deleting the credential frees it."""

    __tablename__ = "application_credential_rules"

    credential_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("application_credentials.id", ondelete="CASCADE"), primary_key=True
    )
    rule_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("access_rules.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class Ec2Credential(Base):
    """An EC2-style access key for one project, kept for S3-style request signing.
    Signature checks need the secret itself, so it is sealed, not hashed."""

    __tablename__ = "ec2_credentials"

    access: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE")
    )
    sealed_secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class AccountToken(Base):
    """A single-use secret sent by mail: ``verify`` (an e-mail address is the user's) or
    ``reset`` (set a new password). Only its SHA-256 digest is kept; using it deletes
    it, and it stops working at ``expires_at``."""

    __tablename__ = "account_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
