"""Password guessing against the login throttle, through the one login every path uses
(``Identity.password_login``), on every database the run reaches."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from nefos.core import errors
from nefos.core.config import LoginThrottle as Limits
from nefos.core.config import Settings
from nefos.core.db import Database
from nefos.identity import service as identity_service
from nefos.identity.models import LoginFailures
from nefos.identity.service import Identity
from tests.identity.test_service import CountingHasher

PER_ACCOUNT = 3
PER_ADDRESS = 5
WINDOW = 600


@pytest.fixture
def guarded(db: Database, settings: Settings) -> Identity:
    limits = Limits(per_account=PER_ACCOUNT, per_address=PER_ADDRESS, window_seconds=WINDOW)
    return Identity(db, settings.model_copy(update={"login_throttle": limits}))


async def rows(db: Database) -> list[LoginFailures]:
    async with db.session() as s:
        return list(await s.scalars(select(LoginFailures)))


async def end_the_window(db: Database) -> None:
    """As if the window had passed: every count began a window earlier."""
    async with db.transaction() as s:
        for row in await s.scalars(select(LoginFailures)):
            row.since -= dt.timedelta(seconds=WINDOW)


async def wrong(identity: Identity, ref: str, address: str = "") -> None:
    with pytest.raises(errors.NotAuthenticated):
        await identity.password_login(ref, "guess", address)


async def test_guessing_one_account_is_refused_from_any_address(guarded: Identity, db: Database):
    user, _ = await guarded.create_user("ann@example.org", password="right")
    # A guesser spreading attempts over many addresses, by e-mail and by UUID alike.
    for n, ref in enumerate(["ann@example.org", str(user.id), "ANN@example.org"]):
        await wrong(guarded, ref, f"192.0.2.{n}")
    with pytest.raises(errors.Throttled) as refused:
        await guarded.password_login("ann@example.org", "right", "198.51.100.1")
    assert 0 < int(refused.value.headers["Retry-After"]) <= WINDOW
    await end_the_window(db)
    assert (await guarded.password_login("ann@example.org", "right", "198.51.100.1")).id == user.id


async def test_an_unknown_account_is_throttled_alike(guarded: Identity):
    """Otherwise the throttle itself would tell which e-mails have an account."""
    for _ in range(PER_ACCOUNT):
        await wrong(guarded, "ghost@example.org")
    with pytest.raises(errors.Throttled):
        await guarded.password_login("ghost@example.org", "guess")


async def test_guessing_from_one_address_is_refused(guarded: Identity):
    """Many accounts, one password each (password spraying), from one IPv6 /64."""
    await guarded.create_user("bea@example.org", password="right")
    for n in range(PER_ADDRESS):
        await wrong(guarded, f"victim{n}@example.org", f"2001:db8::{n + 1}")
    with pytest.raises(errors.Throttled, match="this address"):
        await guarded.password_login("bea@example.org", "right", "2001:db8::ffff")
    # Another address is not held back.
    assert (await guarded.password_login("bea@example.org", "right", "2001:db8:1::1")).email


async def test_a_success_starts_the_account_afresh(guarded: Identity):
    """A user who mistypes now and then is never held back (the address keeps its
    failures: others behind it may be guessing)."""
    await guarded.create_user("cal@example.org", password="right")
    for turn in range(3):
        for _ in range(PER_ACCOUNT - 1):
            await wrong(guarded, "cal@example.org", f"192.0.2.{turn}")
        await guarded.password_login("cal@example.org", "right", f"192.0.2.{turn}")


async def test_guesses_sent_at_once_cannot_slip_through(
    guarded: Identity, monkeypatch: pytest.MonkeyPatch
):
    """Attempts count before argon2 runs: a thousand guesses sent together would all
    pass a check made before the first had failed."""
    spy = CountingHasher(identity_service._hasher)
    monkeypatch.setattr(identity_service, "_hasher", spy)
    await guarded.create_user("dee@example.org", password="right")
    spy.verified.clear()
    results = await asyncio.gather(
        *(guarded.password_login("dee@example.org", f"guess{n}") for n in range(20)),
        return_exceptions=True,
    )
    assert len(spy.verified) == PER_ACCOUNT
    assert sum(isinstance(r, errors.Throttled) for r in results) == 20 - PER_ACCOUNT


async def test_a_throttled_address_adds_nothing_and_keeps_no_names(guarded: Identity, db: Database):
    for n in range(PER_ADDRESS + 10):
        with pytest.raises((errors.NotAuthenticated, errors.Throttled)):
            await guarded.password_login(f"made-up{n}@example.org", "guess", "203.0.113.7")
    kept = await rows(db)
    assert len(kept) == PER_ADDRESS + 1  # the address, and the names tried before the limit
    assert all(len(row.key) == 64 and "example" not in row.key for row in kept)
    await end_the_window(db)
    await end_the_window(db)
    fresh = Identity(db, guarded.settings)  # a process that has not purged yet
    await wrong(fresh, "eve@example.org", "203.0.113.8")
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(LoginFailures)) == 2
