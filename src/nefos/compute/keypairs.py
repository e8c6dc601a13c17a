"""SSH keypairs (Nova's os-keypairs): public keys a user names, to inject into servers.

Only the public half is kept. A key generated here (clients that send no public key,
as older novaclient and kamaki do) is RSA 2048 like Nova's, because guests of any age
accept it; its private half is returned once and never stored. Newer OpenStack clients
generate an Ed25519 pair themselves and import the public half.

Names follow Nova (1 to 255 of letters, digits, space, ``_ - . @``, not padded with
spaces); fingerprints are Nova's too (MD5 of the key blob, colon-separated hex), so a
user sees the same fingerprint here as on any Nova cloud. Each user holds at most
``MAX_KEYPAIRS`` keys.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.compute.models import Keypair
from nefos.core import errors
from nefos.core.db import Database

MAX_KEYPAIRS = 100  # Nova's default key_pairs quota
MAX_NAME = 255
MAX_PUBLIC_KEY = 16 << 10  # an RSA 16384 key is about 2.8 KiB of base64
NAME = re.compile(r"[A-Za-z0-9 _.@-]{1,255}")
SSH_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    }
)
KEY_TYPES = ("ssh",)  # Nova also has x509, for Windows guests; nefos does not
GENERATED_COMMENT = "Generated-by-nefos"


@dataclass(frozen=True)
class Generated:
    """A keypair made here: the stored row and the private key, shown only now."""

    keypair: Keypair
    private_key: str


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise errors.InvalidInput(
            f"A keypair name has 1 to {MAX_NAME} letters, digits, spaces or _ - . @"
        )
    if name != name.strip():
        raise errors.InvalidInput("A keypair name does not start or end with a space")
    return name


def fingerprint(public_key: str) -> str:
    """Nova's fingerprint of an OpenSSH public key, checking that it is one.

    The key must be a single ``<type> <base64 blob> [comment]`` line of a type guests'
    sshd accepts; anything else is refused here rather than written into a guest's
    ``authorized_keys`` where it would fail silently or, with a newline, add a second key.
    """
    if len(public_key) > MAX_PUBLIC_KEY:
        raise errors.InvalidInput(f"A public key has at most {MAX_PUBLIC_KEY} characters")
    if "\n" in public_key or "\r" in public_key:
        raise errors.InvalidInput("A public key is a single line")
    parts = public_key.split()
    if len(parts) < 2 or parts[0] not in SSH_TYPES:
        raise errors.InvalidInput(
            "Not an OpenSSH public key: expected '<type> <key> [comment]' with type one of "
            + ", ".join(sorted(SSH_TYPES))
        )
    try:
        serialization.load_ssh_public_key(public_key.encode())
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise errors.InvalidInput(f"Not a valid {parts[0]} public key: {exc}") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def generate_rsa() -> tuple[str, str]:
    """(private PEM, public OpenSSH line): what Nova returns, ``BEGIN RSA PRIVATE KEY``,
    which every ssh and client library reads."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode()} {GENERATED_COMMENT}"


class Keypairs:
    """Users' keypairs. Every call names the owner (a user UUID as text) and sees only
    that user's keys, so one user can never read or delete another's."""

    def __init__(self, db: Database, limit: int = MAX_KEYPAIRS):
        self.db = db
        self.limit = limit

    async def list(self, user: str) -> list[Keypair]:
        async with self.db.session() as s:
            return list(
                await s.scalars(
                    select(Keypair).where(Keypair.user_id == user).order_by(Keypair.name)
                )
            )

    async def get(self, user: str, name: str) -> Keypair:
        async with self.db.session() as s:
            found = await s.get(Keypair, (user, name))
        if found is None:
            raise errors.NotFound(f"Keypair {name} not found for user {user}")
        return found

    async def import_key(self, user: str, name: str, public_key: str, type: str = "ssh") -> Keypair:
        check_name(name)
        if type not in KEY_TYPES:
            raise errors.InvalidInput(f"Unsupported keypair type {type!r}: only ssh")
        if not isinstance(public_key, str):
            raise errors.InvalidInput("public_key is the text of an OpenSSH public key")
        public_key = public_key.strip()
        found = fingerprint(public_key)
        return await self._add(
            Keypair(user_id=user, name=name, public_key=public_key, fingerprint=found, type=type)
        )

    async def generate(self, user: str, name: str) -> Generated:
        check_name(name)
        await self._check_room(user, name)  # before spending a key generation
        private, public = await asyncio.to_thread(generate_rsa)
        row = Keypair(
            user_id=user, name=name, public_key=public, fingerprint=fingerprint(public), type="ssh"
        )
        return Generated(await self._add(row), private)

    async def delete(self, user: str, name: str) -> None:
        async with self.db.transaction() as s:
            gone = await s.execute(
                delete(Keypair).where(Keypair.user_id == user, Keypair.name == name)
            )
        if gone.rowcount == 0:
            raise errors.NotFound(f"Keypair {name} not found for user {user}")

    async def _check_room(self, user: str, name: str) -> None:
        async with self.db.session() as s:
            await self._room(s, user, name)

    async def _room(self, s: AsyncSession, user: str, name: str) -> None:
        if await s.get(Keypair, (user, name)) is not None:
            raise errors.Conflict(f"Key pair '{name}' already exists.")
        count = await s.scalar(
            select(func.count()).select_from(Keypair).where(Keypair.user_id == user)
        )
        if (count or 0) >= self.limit:
            raise errors.OverQuota(f"Quota exceeded, too many key pairs (at most {self.limit}).")

    async def _add(self, row: Keypair) -> Keypair:
        try:
            async with self.db.transaction() as s:
                await self._room(s, row.user_id, row.name)
                s.add(row)
        except IntegrityError:  # a concurrent request took the name first
            raise errors.Conflict(f"Key pair '{row.name}' already exists.") from None
        return row
