"""Volume transfers (Cinder's ``os-volume-transfer``): giving a volume to another user.

The owner offers an ``available`` volume; it is ``awaiting-transfer`` (nothing else may
happen to it) until whoever presents the transfer's id and its key accepts it, or the
owner takes the offer back. The key is shown once, when the offer is made, and kept
only as a salted SHA-256. Accepting moves the volume, its map and its ``cyclades.disk``
in one transaction: released in the giver's project, charged in the taker's (413 past
their quota, and nothing moves). Only the giver sees an offer; to anyone else an offer
is NotFound, as another user's volume is.

The volume's blocks go with it, copy-on-write as ever; its snapshots are files and
images of the giver's and stay the giver's (Cinder before 3.55 moved them too).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.db import Database, utcnow
from nefos.volume import states
from nefos.volume.models import Volume, VolumeTransfer
from nefos.volume.service import Volumes

KEY_BYTES = 8  # 16 hex characters, as Cinder's keys
MAX_NAME = 255


@dataclass(frozen=True)
class Offer:
    transfer: VolumeTransfer
    auth_key: str | None = None  # only when it is made


class Transfers:
    def __init__(self, db: Database, volumes: Volumes):
        self.db = db
        self.volumes = volumes

    async def create(self, user: str, volume_id: str, name: str = "") -> Offer:
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise errors.InvalidInput(f"A transfer's name is text of at most {MAX_NAME} characters")
        key, salt = secrets.token_hex(KEY_BYTES), secrets.token_hex(KEY_BYTES)
        async with self.db.transaction() as s:
            volume = await self.volumes.owned(s, user, volume_id, lock=True)
            states.require(volume, "transfer")
            volume.status = states.AWAITING_TRANSFER
            volume.updated = utcnow()
            transfer = VolumeTransfer(
                id=uuid.uuid4(),
                volume_id=volume.id,
                user_id=user,
                name=name,
                salt=salt,
                key_hash=_hashed(salt, key),
            )
            s.add(transfer)
        return Offer(transfer, key)

    async def listing(self, user: str) -> list[VolumeTransfer]:
        async with self.db.session() as s:
            query = select(VolumeTransfer).where(VolumeTransfer.user_id == user)
            return list(await s.scalars(query.order_by(VolumeTransfer.created)))

    async def get(self, user: str, transfer_id: str) -> VolumeTransfer:
        async with self.db.session() as s:
            found = await s.get(VolumeTransfer, _key(transfer_id))
        if found is None or found.user_id != user:
            raise errors.NotFound(f"Transfer {transfer_id} could not be found")
        return found

    async def delete(self, user: str, transfer_id: str) -> None:
        """The giver takes the offer back: the volume is available again."""
        async with self.db.transaction() as s:
            transfer = await self._locked(s, transfer_id)
            if transfer.user_id != user:
                raise errors.NotFound(f"Transfer {transfer_id} could not be found")
            volume = await s.get(Volume, transfer.volume_id, with_for_update=True)
            assert volume is not None  # the offer goes with its volume (ON DELETE CASCADE)
            volume.status = states.AVAILABLE
            volume.updated = utcnow()
            await s.delete(transfer)

    async def accept(
        self, user: str, project: str, transfer_id: str, auth_key: str
    ) -> VolumeTransfer:
        """The volume becomes ``user``'s, in ``project`` (their token's). A wrong key is
        Cinder's 400; the giver accepting their own offer is refused."""
        if not isinstance(auth_key, str) or not auth_key:
            raise errors.InvalidInput("Invalid input for accept: auth_key is required")
        async with self.db.transaction() as s:
            transfer = await self._locked(s, transfer_id)
            if not hmac.compare_digest(transfer.key_hash, _hashed(transfer.salt, auth_key)):
                raise errors.InvalidInput(
                    f"Attempt to transfer {transfer_id} with invalid auth key"
                )
            if transfer.user_id == user:
                raise errors.InvalidInput("The volume is yours already: delete the transfer")
            volume = await s.get(Volume, transfer.volume_id, with_for_update=True)
            assert volume is not None
            what = f"volume transfer {volume.id}"
            await self.volumes.charge_disk(s, transfer.user_id, volume.project, -volume.size, what)
            await self.volumes.charge_disk(s, user, project, volume.size, what)
            volume.user_id, volume.project = user, project
            volume.status = states.AVAILABLE
            volume.updated = utcnow()
            done = VolumeTransfer(
                id=transfer.id, volume_id=volume.id, user_id=transfer.user_id,
                name=transfer.name, salt="", key_hash="", created=transfer.created,
            )  # fmt: skip
            await s.delete(transfer)
        return done

    async def _locked(self, s: AsyncSession, transfer_id: str) -> VolumeTransfer:
        query = select(VolumeTransfer).where(VolumeTransfer.id == _key(transfer_id))
        found = await s.scalar(query.with_for_update())
        if found is None:
            raise errors.NotFound(f"Transfer {transfer_id} could not be found")
        return found


def _hashed(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()


def _key(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise errors.NotFound(f"Transfer {value} could not be found") from None
