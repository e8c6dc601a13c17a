"""Sealed secrets: only this deployment's key, for this purpose, opens them."""

from __future__ import annotations

import pytest

from nefos.core.sealing import PREFIX, Sealer, Unsealable, sealed_length


def test_sealed_secrets_open_only_with_their_key_and_purpose():
    sealer = Sealer("deployment key", "ganeti-rapi-password")
    first, second = sealer.seal("pässword"), sealer.seal("pässword")
    assert first.startswith(PREFIX) and first != second  # a fresh nonce each time
    assert "pässword" not in first and len(first) == sealed_length(len("pässword".encode()))
    assert sealer.unseal(first) == sealer.unseal(second) == "pässword"
    assert Sealer("deployment key", "ganeti-rapi-password").unseal(first) == "pässword"

    for stranger in (Sealer("another key", "ganeti-rapi-password"), Sealer("deployment key", "x")):
        with pytest.raises(Unsealable):
            stranger.unseal(first)
    body = first[len(PREFIX) :]
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    for altered in (PREFIX + flipped, first[:-4], PREFIX + "not base64!"):
        with pytest.raises(Unsealable):
            sealer.unseal(altered)


def test_plain_values_from_before_sealing_read_as_they_are():
    sealer = Sealer("deployment key", "ganeti-rapi-password")
    assert sealer.unseal("stored-plain") == "stored-plain"
    assert not Sealer.is_sealed("stored-plain")
    assert sealer.seal("") == "" and sealer.unseal("") == ""  # no password: nothing to hide
