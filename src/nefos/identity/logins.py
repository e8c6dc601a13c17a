"""Keystone v3's ``POST /auth/tokens`` as one operation: a proof of identity (a
password, a token, an application credential) and the scope asked, to a token.

The API parses the body into these records and renders the answer; the order of the
checks here is the order Keystone's answers come in: the proof first, then the scope.
A token made from an application credential's token keeps that credential's project,
roles and rules (no rescoping), and never outlives the token it came from.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from nefos.core import errors
from nefos.core.auth import Credentials
from nefos.identity.delegation import ApplicationCredentials
from nefos.identity.models import User
from nefos.identity.service import Identity


@dataclass(frozen=True)
class PasswordProof:
    user_ref: str  # an id or a name (the e-mail)
    password: str


@dataclass(frozen=True)
class TokenProof:
    token: str


@dataclass(frozen=True)
class CredentialProof:
    secret: str
    credential_id: str | None = None
    name: str | None = None
    user_ref: str | None = None


@dataclass(frozen=True)
class ScopeAsked:
    """The scope the body asks. ``project``: a project scope was given (by
    ``project_id`` or ``project_name``); ``unscopable``: a domain or system scope;
    ``foreign_domain``: the project's domain is not nefos's one."""

    project: bool = False
    project_id: str | None = None
    project_name: str | None = None
    unscopable: bool = False
    foreign_domain: bool = False


@dataclass(frozen=True)
class TokenAsked:
    methods: tuple[str, ...]
    proof: PasswordProof | TokenProof | CredentialProof
    scope: ScopeAsked
    address: str = ""


@dataclass(frozen=True)
class TokenIssued:
    """The new token and what its v3 document shows: the subject is the user (a
    plain login) or the token's own credentials (one from an application credential)."""

    token: str
    subject: User | Credentials
    project_id: uuid.UUID
    project_name: str
    methods: list[str]
    audit_ids: list[str]
    issued_at: dt.datetime
    expires_at: dt.datetime


def _issued_as(token: str, credentials: Credentials) -> TokenIssued:
    return TokenIssued(
        token, credentials, credentials.project_id, credentials.project_name,
        list(credentials.methods), [credentials.audit_id], credentials.issued_at,
        credentials.expires_at,
    )  # fmt: skip


class Logins:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    async def issue_v3(self, asked: TokenAsked) -> TokenIssued:
        service = self.identity
        proof = asked.proof
        if isinstance(proof, CredentialProof):
            issued = await ApplicationCredentials(service).login(
                proof.secret, proof.credential_id, proof.name, proof.user_ref, asked.address
            )
            return _issued_as(issued.token, await service.authenticate(issued.token))
        expires_at: dt.datetime | None = None
        proven: Credentials | None = None
        if isinstance(proof, PasswordProof):
            user = await service.password_login(proof.user_ref, proof.password, asked.address)
        else:
            proven = await service.authenticate(proof.token)
            user = await service.get_user(proven.user_id)
            expires_at = proven.expires_at  # a token never outlives the one it came from
        scope = asked.scope
        if scope.unscopable:
            raise errors.NotAuthenticated("nefos issues project-scoped tokens only")
        if scope.project:
            if scope.foreign_domain:
                raise errors.NotAuthenticated(
                    "Unknown domain: nefos has one domain, id 'default', name 'Default'"
                )
            if scope.project_id is None and scope.project_name is None:
                raise errors.InvalidInput("Give the project's id or name")
        project = await service.scope_project(user, scope.project_id, scope.project_name)
        lifetime = expires_at - dt.datetime.now(dt.UTC) if expires_at is not None else None
        if proven is not None and proven.delegation is not None:
            if scope.project and project.id != proven.project_id:
                raise errors.NotAuthenticated(
                    "A token from an application credential cannot be rescoped"
                )
            issued = await service.issue_token(
                user,
                await service.get_project(proven.project_id),
                methods=list(proven.methods),
                lifetime=lifetime,
                application_credential_id=proven.delegation.credential_id,
            )
            return _issued_as(issued.token, await service.authenticate(issued.token))
        issued = await service.issue_token(
            user, project, methods=list(asked.methods), lifetime=lifetime
        )
        record = issued.record
        return TokenIssued(
            issued.token, user, project.id, project.name, list(asked.methods),
            [record.audit_id], record.created_at, record.expires_at,
        )  # fmt: skip
