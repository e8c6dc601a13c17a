"""Application credentials (Keystone's): a user hands an application a secret that gets
tokens for one project, with some of the user's roles, for some requests only.

Rules, as Keystone has them:

* A credential belongs to its user and the project of the token that created it; its
  roles are a subset of that token's (their implied roles added); the secret is shown
  once and kept as a hash.
* A token from a credential carries the credential: its roles, and its access rules
  (``service``, ``method``, ``path`` with ``*`` for one path segment and ``**`` for
  any), enforced on every request (``nefos.core.auth.refusal``). It ends when the
  credential is deleted or expires.
* Such a token may create or delete credentials only if its credential is
  ``unrestricted``; otherwise a leaked secret could mint secrets that outlive it.

Nothing here speaks HTTP.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.auth import IMPLIED_ROLES, Credentials, token_roles
from nefos.core.db import utcnow
from nefos.identity.models import AccessRule as RuleRecord
from nefos.identity.models import ApplicationCredential, CredentialRule, Token, User
from nefos.identity.service import Identity, IssuedToken, hash_secret, parse_uuid, verify_secret
from nefos.identity.throttle import account_key, address_key

APPLICATION_CREDENTIAL = "application_credential"
RULE_METHODS = ("HEAD", "GET", "POST", "PUT", "PATCH", "DELETE")
KNOWN_ROLES = ("admin", "member", "reader")


def expand_roles(names: Iterable[str]) -> list[str]:
    """The roles and those they imply, in Keystone's order (given first)."""
    roles = list(dict.fromkeys(names))
    for name in roles:  # grows as it goes
        roles.extend(n for n in IMPLIED_ROLES.get(name, ()) if n not in roles)
    return roles


@dataclass(frozen=True)
class RuleSpec:
    """An access rule as a request gives it: an existing rule's id, or its three parts."""

    id: str | None = None
    service: str | None = None
    method: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Shown:
    """A credential with its access rules, as listings show it (no secret)."""

    credential: ApplicationCredential
    rules: list[RuleRecord]


def require_unrestricted(caller: Credentials, what: str) -> None:
    if caller.delegation is not None and not caller.delegation.unrestricted:
        raise errors.PermissionDenied(
            "You are not authorized to perform the requested action: using method "
            f"'application_credential' is not allowed for managing {what}."
        )


def require_owner_or_admin(caller: Credentials, user_id: uuid.UUID) -> None:
    if user_id != caller.user_id and not caller.is_admin:
        raise errors.PermissionDenied("Only the user or an admin may do this")


def user_uuid(ref: str) -> uuid.UUID:
    parsed = parse_uuid(ref)
    if parsed is None:
        raise errors.NotFound(f"Could not find user: {ref}")
    return parsed


class ApplicationCredentials:
    def __init__(self, identity: Identity):
        self.identity = identity
        self.db = identity.db
        self.settings = identity.settings

    # -- management -------------------------------------------------------------------

    async def create(
        self,
        caller: Credentials,
        user_ref: str,
        name: str,
        description: str = "",
        secret: str | None = None,
        expires_at: dt.datetime | None = None,
        roles: list[str] | None = None,
        unrestricted: bool = False,
        access_rules: list[RuleSpec] | None = None,
    ) -> tuple[Shown, str]:
        """A new credential for the caller on the caller's project; its secret."""
        user_id = user_uuid(user_ref)
        require_unrestricted(caller, "additional application credentials")
        if user_id != caller.user_id:
            raise errors.PermissionDenied(
                "Cannot create an application credential for another user"
            )
        limits = self.settings.limits
        if not name.strip() or len(name) > limits.name_length:
            raise errors.InvalidInput(f"A name must have 1 to {limits.name_length} characters")
        if len(description) > 1024:
            raise errors.InvalidInput("A description has at most 1024 characters")
        if secret is not None and not 0 < len(secret) <= limits.password_length:
            raise errors.InvalidInput(
                f"A secret must have 1 to {limits.password_length} characters"
            )
        if expires_at is not None and expires_at <= utcnow():
            raise errors.InvalidInput("The expiration date is in the past")
        granted = self._roles(caller, roles)
        secret = secret or secrets.token_urlsafe(64)
        credential = ApplicationCredential(
            id=uuid.uuid4(),
            user_id=user_id,
            project_id=caller.project_id,
            name=name,
            description=description,
            secret_hash=await hash_secret(secret),
            roles=",".join(granted),
            unrestricted=unrestricted,
            expires_at=expires_at,
            created_at=utcnow(),
        )
        try:
            async with self.db.transaction() as s:
                count = await s.scalar(
                    select(func.count())
                    .select_from(ApplicationCredential)
                    .where(ApplicationCredential.user_id == user_id)
                )
                if (count or 0) >= limits.credentials_per_user:
                    raise errors.PermissionDenied(
                        "Unable to create additional application credentials, maximum of "
                        f"{limits.credentials_per_user} already exceeded for user."
                    )
                s.add(credential)
                await s.flush()
                rules = await self._attach_rules(s, credential, access_rules or [])
        except IntegrityError as exc:
            raise errors.Conflict(
                f"Conflict occurred attempting to store application_credential - "
                f"an application credential named {name} already exists"
            ) from exc
        return Shown(credential, rules), secret

    def _roles(self, caller: Credentials, wanted: list[str] | None) -> list[str]:
        held = token_roles(caller)
        if not wanted:  # none given (or an empty list, as openstackclient sends): all
            return held
        for role in wanted:
            if role not in KNOWN_ROLES:
                raise errors.NotFound(f"Could not find role: {role}")
        granted = expand_roles(wanted)
        if any(role not in held for role in granted):
            raise errors.InvalidInput(
                "Invalid application credential: Cannot create an application credential "
                "with unassigned role"
            )
        return granted

    async def _attach_rules(
        self, s: AsyncSession, credential: ApplicationCredential, specs: list[RuleSpec]
    ) -> list[RuleRecord]:
        """Each rule by id (the user's own) or by its parts; a rule identical to one the
        user has is that one, as in Keystone."""
        if len(specs) > self.settings.limits.credentials_per_user:
            raise errors.InvalidInput(
                f"At most {self.settings.limits.credentials_per_user} access rules"
            )
        attached: dict[uuid.UUID, RuleRecord] = {}
        for spec in specs:
            rule = await self._rule_for(s, credential.user_id, spec)
            attached.setdefault(rule.id, rule)
        for rule in attached.values():
            s.add(CredentialRule(credential_id=credential.id, rule_id=rule.id))
        return list(attached.values())

    async def _rule_for(self, s: AsyncSession, user_id: uuid.UUID, spec: RuleSpec) -> RuleRecord:
        if spec.id is not None and spec.service is None:
            wanted = parse_uuid(spec.id)
            rule = await s.get(RuleRecord, wanted) if wanted else None
            if rule is None or rule.user_id != user_id:
                raise errors.NotFound(f"Could not find Access Rule: {spec.id}")
            return rule
        if spec.service is None or spec.method is None or spec.path is None:
            raise errors.InvalidInput("An access rule needs an id, or service, method and path")
        if spec.method not in RULE_METHODS:
            raise errors.InvalidInput(
                f"An access rule's method is one of {', '.join(RULE_METHODS)}"
            )
        if not 0 < len(spec.service) <= 64 or not spec.path.startswith("/"):
            raise errors.InvalidInput("An access rule needs a service and a path from /")
        if len(spec.path) > 255:
            raise errors.InvalidInput("An access rule's path has at most 255 characters")
        rule = await s.scalar(
            select(RuleRecord).where(
                RuleRecord.user_id == user_id,
                RuleRecord.service == spec.service,
                RuleRecord.method == spec.method,
                RuleRecord.path == spec.path,
            )
        )
        if rule is None:
            rule = RuleRecord(
                id=uuid.uuid4(),
                user_id=user_id,
                service=spec.service,
                method=spec.method,
                path=spec.path,
            )
            s.add(rule)
            await s.flush()
        return rule

    async def listing(
        self, caller: Credentials, user_ref: str, name: str | None = None
    ) -> list[Shown]:
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        query = select(ApplicationCredential).where(ApplicationCredential.user_id == user_id)
        if name is not None:
            query = query.where(ApplicationCredential.name == name)
        async with self.db.session() as s:
            found = list(
                await s.scalars(
                    query.order_by(ApplicationCredential.created_at, ApplicationCredential.id)
                )
            )
            rules = await self._rules_of(s, [c.id for c in found])
        return [Shown(c, rules.get(c.id, [])) for c in found]

    async def _rules_of(
        self, s: AsyncSession, credential_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[RuleRecord]]:
        if not credential_ids:
            return {}
        rows = await s.execute(
            select(CredentialRule.credential_id, RuleRecord)
            .join(RuleRecord, RuleRecord.id == CredentialRule.rule_id)
            .where(CredentialRule.credential_id.in_(credential_ids))
            .order_by(RuleRecord.service, RuleRecord.path, RuleRecord.method)
        )
        by_credential: dict[uuid.UUID, list[RuleRecord]] = {}
        for credential_id, rule in rows:
            by_credential.setdefault(credential_id, []).append(rule)
        return by_credential

    async def get(self, caller: Credentials, user_ref: str, credential_ref: str) -> Shown:
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        async with self.db.session() as s:
            credential = await self._owned(s, user_id, credential_ref)
            rules = await self._rules_of(s, [credential.id])
        return Shown(credential, rules.get(credential.id, []))

    async def _owned(
        self, s: AsyncSession, user_id: uuid.UUID, credential_ref: str
    ) -> ApplicationCredential:
        wanted = parse_uuid(credential_ref)
        credential = await s.get(ApplicationCredential, wanted) if wanted else None
        if credential is None or credential.user_id != user_id:
            raise errors.NotFound(f"Could not find Application Credential: {credential_ref}")
        return credential

    async def delete(self, caller: Credentials, user_ref: str, credential_ref: str) -> None:
        """Delete a credential and every token it got, at once."""
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        require_unrestricted(caller, "additional application credentials")
        async with self.db.transaction() as s:
            credential = await self._owned(s, user_id, credential_ref)
            digests = list(
                await s.scalars(
                    select(Token.digest).where(Token.application_credential_id == credential.id)
                )
            )
            await s.execute(delete(Token).where(Token.application_credential_id == credential.id))
            await s.delete(credential)
        for token_digest in digests:
            self.identity.cache.drop(token_digest)

    # -- access rules -----------------------------------------------------------------

    async def list_rules(self, caller: Credentials, user_ref: str) -> list[RuleRecord]:
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        async with self.db.session() as s:
            return list(
                await s.scalars(
                    select(RuleRecord)
                    .where(RuleRecord.user_id == user_id)
                    .order_by(RuleRecord.service, RuleRecord.path, RuleRecord.method)
                )
            )

    async def get_rule(self, caller: Credentials, user_ref: str, rule_ref: str) -> RuleRecord:
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        async with self.db.session() as s:
            return await self._owned_rule(s, user_id, rule_ref)

    async def _owned_rule(self, s: AsyncSession, user_id: uuid.UUID, rule_ref: str) -> RuleRecord:
        wanted = parse_uuid(rule_ref)
        rule = await s.get(RuleRecord, wanted) if wanted else None
        if rule is None or rule.user_id != user_id:
            raise errors.NotFound(f"Could not find Access Rule: {rule_ref}")
        return rule

    async def delete_rule(self, caller: Credentials, user_ref: str, rule_ref: str) -> None:
        """A rule that a credential still uses stays (Keystone answers 403)."""
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        require_unrestricted(caller, "access rules")
        async with self.db.transaction() as s:
            rule = await self._owned_rule(s, user_id, rule_ref)
            used = await s.scalar(
                select(CredentialRule.credential_id).where(CredentialRule.rule_id == rule.id)
            )
            if used is not None:
                raise errors.PermissionDenied(
                    f"Cannot delete access rule {rule_ref}: an application credential uses it"
                )
            await s.delete(rule)

    # -- authentication ---------------------------------------------------------------

    async def login(
        self,
        secret: str,
        credential_ref: str | None = None,
        name: str | None = None,
        user_ref: str | None = None,
        address: str = "",
    ) -> IssuedToken:
        """A token for the credential's user, project and roles, if the secret is right
        and the credential, its user and the user's hold on the project still stand.

        A wrong secret costs one hash verification like a wrong password, and is
        throttled per credential and per client address as logins are."""
        failure = errors.NotAuthenticated("Invalid application credential")
        if not secret or len(secret) > self.settings.limits.password_length:
            raise failure
        async with self.db.session() as s:
            credential = await self._find(s, credential_ref, name, user_ref)
        key = account_key(f"{APPLICATION_CREDENTIAL}:{credential_ref or f'{user_ref}/{name}'}")
        where = address_key(address)
        await self.identity.throttle.attempt(key, where)
        stored = credential.secret_hash if credential is not None else None
        right = await verify_secret(stored or await self.identity.dummy_hash(), secret)
        if credential is None or stored is None or not right:
            raise failure
        await self.identity.throttle.succeeded(key, where)
        now = utcnow()
        if credential.expires_at is not None and credential.expires_at <= now:
            raise errors.NotAuthenticated(f"The application credential {credential.id} expired")
        user = await self.identity.get_user(credential.user_id)
        project = await self.identity.scope_project(user, str(credential.project_id))
        lifetime = None
        if credential.expires_at is not None:  # a token never outlives its credential
            lifetime = min(
                credential.expires_at - now,
                dt.timedelta(hours=self.settings.session_token_hours),
            )
        return await self.identity.issue_token(
            user,
            project,
            methods=(APPLICATION_CREDENTIAL,),
            lifetime=lifetime,
            application_credential_id=credential.id,
        )

    async def _find(
        self, s: AsyncSession, credential_ref: str | None, name: str | None, user_ref: str | None
    ) -> ApplicationCredential | None:
        if credential_ref is not None:
            wanted = parse_uuid(credential_ref)
            return await s.get(ApplicationCredential, wanted) if wanted else None
        if name is None or user_ref is None:
            raise errors.InvalidInput(
                "Give the application credential's id, or its name and its user"
            )
        user_id = parse_uuid(user_ref)
        if user_id is None:
            user_id = await s.scalar(select(User.id).where(User.email == user_ref.strip().lower()))
        if user_id is None:
            return None
        return await s.scalar(
            select(ApplicationCredential).where(
                ApplicationCredential.user_id == user_id, ApplicationCredential.name == name
            )
        )
