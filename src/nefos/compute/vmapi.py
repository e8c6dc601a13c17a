"""The vmapi: what a server's build fetches from nefos (Synnefo's ``/cyclades/vmapi``).

A build runs on a cluster node (nefos's OS provider, ``backends/ganeti/os``). The Ganeti
job carries only ``config_url`` = ``<vmapi base>/vmapi/<secret>``; what the job must not
carry (the admin password, image properties, later keys and user data) the provider
fetches from that URL, so it never lands in Ganeti's job queue, configuration or logs.

The secret is 32 random bytes, made when the server is created. Only its SHA-256 is
stored, with the configuration sealed by the deployment's secret key. It is valid until
the server's create job ends (success, error or cancel: :meth:`VmApi.forget`, called by
the update path) or ``compute.vmapi_seconds`` pass, whichever comes first; meanwhile:

* ``config``: the build configuration, **once**. The fetch unseals it and drops the
  sealed copy in the same transaction, so a second fetch (a replayed URL, someone who read
  the job) finds nothing, exactly as a wrong secret does. A build that lost the answer
  cannot fetch it again: it fails, and the server goes to ERROR, the safe outcome.
* ``image``: the image's bytes, as often as needed while the build runs (a provider may
  retry or read in ranges). They are the bytes of the image version the server was
  created from (its map, size and Merkle hash are pinned here), not whatever the file
  holds now.

Unknown, expired, finished and already fetched all look the same to the caller
(``NotFound``): the endpoint tells an outsider nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.backends.base import instance_name
from nefos.compute.vmapi_models import BuildSecret
from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.images.service import Image
from nefos.storage.service import Namespace, ObjectRecord

PREFIX = "/vmapi"


@dataclass(frozen=True)
class PinnedImage:
    """The image version a build writes: what :meth:`VmApi.read` streams."""

    map_name: str
    size: int
    hash: str


@dataclass(frozen=True)
class Customization:
    """What the user asked to find inside the guest (spec §2.2): their SSH public keys,
    personality files (``path``, base64 ``contents``, ``owner``, ``group``, ``mode``) and
    base64 user data. Like the password, it travels only through the vmapi."""

    public_keys: tuple[str, ...] = ()
    personality: tuple[dict[str, Any], ...] = ()
    user_data: str | None = None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class VmApi:
    def __init__(self, db: Database, settings: Settings, storage: Namespace):
        self.db = db
        self.settings = settings
        self.storage = storage
        # Its own key, derived apart from the token sealer's: one leaked purpose key
        # opens nothing else.
        key = hashlib.sha256(f"nefos-vmapi:{settings.secret_key}".encode()).digest()
        self._sealer = Fernet(base64.urlsafe_b64encode(key))

    def base_url(self) -> str:
        """Where the clusters' nodes reach nefos: a configured internal address, since
        nodes often sit on a network that the public URL does not point into."""
        base = self.settings.compute.vmapi_url or self.settings.base_url
        return base.rstrip("/") + PREFIX

    async def issue(
        self,
        s: AsyncSession,
        server_id: int,
        server_name: str,
        image: Image,
        record: ObjectRecord,
        password: str,
        customization: Customization | None = None,
        image_on_disk: bool = False,
    ) -> str:
        """A new build secret for a server being created, in the caller's transaction;
        the ``config_url`` the cluster gets. Rows left by builds that never ended are
        dropped here, so the table holds only builds in flight. ``image_on_disk``: the
        root disk is a volume cloned from the image, so the OS provider only customises
        it (writing the image again would copy every block it shares)."""
        customization = customization or Customization()
        now = utcnow()
        await s.execute(delete(BuildSecret).where(BuildSecret.expires <= now))
        secret = secrets.token_urlsafe(32)
        url = f"{self.base_url()}/{secret}"
        config: dict[str, Any] = {
            "server": {"id": server_id, "name": server_name, "instance": instance_name(server_id)},
            "image": {
                "id": str(image.id),
                "name": image.name,
                "size": record.size,
                "hash": record.hash,  # Merkle root of 4 MiB SHA-256 blocks (Pithos)
                "disk_format": image.disk_format,
                "properties": dict(image.properties),
                "url": f"{url}/image",
                "on_disk": image_on_disk,
            },
            "password": password,
            "public_keys": list(customization.public_keys),
            "personality": [dict(item) for item in customization.personality],
            "user_data": customization.user_data,
        }
        s.add(
            BuildSecret(
                digest=digest(secret),
                server_id=server_id,
                image_map=record.map_name,
                image_size=record.size,
                image_hash=record.hash,
                sealed=self._sealer.encrypt(orjson.dumps(config)).decode(),
                expires=now + dt.timedelta(seconds=self.settings.compute.vmapi_seconds),
            )
        )
        return url

    async def config(self, secret: str) -> dict[str, Any]:
        """The build configuration, once (see the module's docstring)."""
        async with self.db.transaction() as s:
            row = await self._valid(s, secret, lock=True)
            if row is None or row.sealed is None:
                raise errors.NotFound("No such build")
            sealed, row.sealed = row.sealed, None
        try:
            return orjson.loads(self._sealer.decrypt(sealed.encode()))
        except InvalidToken as exc:  # the deployment's secret key changed mid-build
            raise errors.Unavailable("The build configuration cannot be opened") from exc

    async def image(self, secret: str) -> PinnedImage:
        """The image version the build writes, while the build runs."""
        async with self.db.session() as s:
            row = await self._valid(s, secret)
        if row is None:
            raise errors.NotFound("No such build")
        return PinnedImage(row.image_map, row.image_size, row.image_hash)

    def read(
        self, image: PinnedImage, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        return self.storage.read_map(
            image.map_name, image.hash, image.size, start, end, what="the image"
        )

    async def forget(self, s: AsyncSession, server_id: int) -> None:
        """The build is over: its secret opens nothing from now on."""
        await s.execute(delete(BuildSecret).where(BuildSecret.server_id == server_id))

    async def pinned(self) -> tuple[set[str], set[str]]:
        """What builds in flight read from the block store, for ``nefos storage gc``: the
        maps of their images, and the blocks of the one-block ones (named by their hash).
        A build may read a version its file no longer has."""
        async with self.db.session() as s:
            rows = await s.execute(
                select(BuildSecret.image_map, BuildSecret.image_hash).where(
                    BuildSecret.expires > utcnow()
                )
            )
            pins = rows.all()
        return {m for m, _ in pins if m}, {h for m, h in pins if not m}

    async def _valid(self, s: AsyncSession, secret: str, lock: bool = False) -> BuildSecret | None:
        if not secret or len(secret) > 128:
            return None
        query = select(BuildSecret).where(
            BuildSecret.digest == digest(secret), BuildSecret.expires > utcnow()
        )
        if lock:
            query = query.with_for_update()
        return await s.scalar(query)
