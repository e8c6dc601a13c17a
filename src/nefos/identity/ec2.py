"""EC2-style credentials (Keystone's OS-EC2): an access key and a secret for one of the
user's projects, for S3- and EC2-style request signing.

Checking a signature needs the secret itself, so it is sealed with the deployment's
key (``nefos.core.sealing``), not hashed; the owner may read it again, as Keystone
shows it. A token from a restricted application credential may not create one: the
key would outlive the credential. Nothing here speaks HTTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from nefos.core import errors
from nefos.core.auth import Credentials
from nefos.core.db import utcnow
from nefos.core.sealing import Sealer, Unsealable
from nefos.identity.delegation import require_owner_or_admin, require_unrestricted, user_uuid
from nefos.identity.models import Ec2Credential
from nefos.identity.service import Identity

SEALING_PURPOSE = "ec2-credentials"


@dataclass(frozen=True)
class Ec2Key:
    access: str
    secret: str
    user_id: uuid.UUID
    project_id: uuid.UUID


class Ec2Credentials:
    def __init__(self, identity: Identity):
        self.identity = identity
        self.db = identity.db
        self.settings = identity.settings
        self._sealer = Sealer(identity.settings.secret_key, SEALING_PURPOSE)

    def _key(self, record: Ec2Credential) -> Ec2Key:
        try:
            secret = self._sealer.unseal(record.sealed_secret)
        except Unsealable as exc:
            raise errors.Unavailable(f"EC2 credential {record.access}: {exc}") from None
        return Ec2Key(
            access=record.access,
            secret=secret,
            user_id=record.user_id,
            project_id=record.project_id,
        )

    async def create(self, caller: Credentials, user_ref: str, project_ref: str | None) -> Ec2Key:
        """A new key for the user on a project the user may use (default: the caller's)."""
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        require_unrestricted(caller, "EC2 credentials")
        user = await self.identity.get_user(user_id)
        wanted = project_ref or str(caller.project_id)
        try:
            project = await self.identity.scope_project(user, wanted)
        except errors.NotAuthenticated:
            raise errors.NotFound(f"Could not find project: {wanted}") from None
        record = Ec2Credential(
            access=uuid.uuid4().hex,
            user_id=user.id,
            project_id=project.id,
            sealed_secret=self._sealer.seal(uuid.uuid4().hex),
            created_at=utcnow(),
        )
        limit = self.settings.limits.credentials_per_user
        async with self.db.transaction() as s:
            held = await s.scalar(
                select(func.count())
                .select_from(Ec2Credential)
                .where(Ec2Credential.user_id == user.id)
            )
            if (held or 0) >= limit:
                raise errors.PermissionDenied(
                    f"Unable to create additional EC2 credentials, maximum of {limit} "
                    "already exceeded for user."
                )
            s.add(record)
        return self._key(record)

    async def listing(self, caller: Credentials, user_ref: str) -> list[Ec2Key]:
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Ec2Credential)
                .where(Ec2Credential.user_id == user_id)
                .order_by(Ec2Credential.created_at, Ec2Credential.access)
            )
            return [self._key(record) for record in rows]

    async def get(self, caller: Credentials, user_ref: str, access: str) -> Ec2Key:
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        async with self.db.session() as s:
            record = await s.get(Ec2Credential, access[:64])
        if record is None or record.user_id != user_id:
            raise errors.NotFound(f"Could not find credential: {access}")
        return self._key(record)

    async def delete(self, caller: Credentials, user_ref: str, access: str) -> None:
        user_id = user_uuid(user_ref)
        require_owner_or_admin(caller, user_id)
        async with self.db.transaction() as s:
            record = await s.get(Ec2Credential, access[:64])
            if record is None or record.user_id != user_id:
                raise errors.NotFound(f"Could not find credential: {access}")
            await s.delete(record)
