"""Secrets the database must keep and give back, sealed with the deployment's key.

Some secrets cannot be hashed because nefos has to present them again (a Ganeti
cluster's RAPI password). They are stored sealed: AES-256-GCM under a key derived with
HKDF-SHA256 from the deployment's ``secret_key`` and a purpose label, so a key for one
purpose opens nothing of another, and a copy of the database without the key opens
nothing at all. A sealed value is text, ``enc1:`` and the URL-safe base64 of the nonce,
ciphertext and tag; a value without the prefix is one stored in plain text before
sealing existed, read as it is until it is sealed (:meth:`Sealer.is_sealed`).

Changing the secret key makes sealed values unreadable: :class:`Unsealable` says so.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "enc1:"
_NONCE = 12


def sealed_length(size: int) -> int:
    """Characters of the sealed form of a secret of ``size`` bytes (for column widths)."""
    return len(PREFIX) + 4 * -(-(_NONCE + size + 16) // 3)


class Unsealable(Exception):
    """A sealed value this deployment's key does not open (the key changed, or the
    value was altered)."""


class Sealer:
    """Seals and opens the secrets of one purpose (``purpose`` names it, for good)."""

    def __init__(self, secret_key: str, purpose: str):
        self._purpose = purpose.encode()
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"nefos-seal:" + self._purpose
        ).derive(secret_key.encode())
        self._aead = AESGCM(key)

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def seal(self, secret: str) -> str:
        """The stored form of ``secret``; the empty secret stays empty (there is none)."""
        if not secret:
            return ""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, secret.encode(), self._purpose)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, stored: str) -> str:
        """The secret a stored value holds; a value stored before sealing is returned as
        it is. Raises :class:`Unsealable`."""
        if not self.is_sealed(stored):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], self._purpose)
        except (binascii.Error, ValueError, InvalidTag):
            raise Unsealable(
                f"not sealed with this deployment's key ({self._purpose.decode()})"
            ) from None
        return plain.decode()
