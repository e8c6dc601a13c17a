"""Password guessing, slowed: attempts counted per account and per client address.

Every password login (the web form, Keystone v2.0 and v3, TempAuth) passes through
:meth:`LoginThrottle.attempt` before its password is checked, and through
:meth:`LoginThrottle.succeeded` if it was right. A key that reached its limit within
the window refuses further attempts (:class:`~nefos.core.errors.Throttled`, with the
seconds to wait) until the window that began with its first failure is over.

Why count before checking: argon2 takes a good part of a second, so a guesser who sent
a thousand attempts at once would see all of them pass a check made before any had
failed. Counted first, at most the limit get through; a success gives its attempt back.

Why the database: the API runs as several workers and hosts, and a count kept in each
process would multiply the guesses by the number of workers and forget them at every
restart. Each key is one row, written by one statement (an upsert) in a transaction of
its own, so concurrent logins never wait on each other in a cycle. Keys are digests:
the table holds no e-mails or addresses, even those of people who mistyped one.

The account key is the user's UUID when the name is a user, else the name as given
(lower-cased), so unknown and known accounts are throttled alike and the throttle
tells nobody which exist. The address key of an IPv6 client is its /64, which one
host usually owns whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
from ipaddress import IPv6Address, ip_address, ip_network
from typing import Any

from sqlalchemy import case, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from nefos.core import errors
from nefos.core.config import LoginThrottle as Limits
from nefos.core.db import Database, utcnow
from nefos.identity.models import LoginFailures

TABLE = LoginFailures.__table__


def account_key(name: str) -> str:
    return _digest(f"account:{name.strip().lower()}")


def address_key(address: str) -> str | None:
    """The key of a client address; ``None`` when there is none to count (a command)."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return _digest(f"address:{address}") if address else None
    if isinstance(parsed, IPv6Address):
        if parsed.ipv4_mapped is not None:
            return _digest(f"address:{parsed.ipv4_mapped}")
        return _digest(f"address:{ip_network(f'{parsed}/64', strict=False)}")
    return _digest(f"address:{parsed}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class LoginThrottle:
    def __init__(self, db: Database, limits: Limits):
        self.db = db
        self.limits = limits
        self.window_seconds = limits.window_seconds
        self.window = dt.timedelta(seconds=limits.window_seconds)
        insert: Any = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
        self._insert = insert
        self._purged: float | None = None  # when this process last purged

    async def attempt(
        self, account: str, address: str | None, doing: str = "failed logins"
    ) -> None:
        """Count one attempt; Throttled if the address or the account is over its limit.

        The address is counted first, and an address over its limit adds nothing to
        the account: one guesser cannot fill the table with names it invents."""
        if address is not None:
            await self._count(address, self.limits.per_address, f"{doing} from this address")
        await self._count(account, self.limits.per_account, f"{doing} for this account")
        await self._purge()

    async def succeeded(self, account: str, address: str | None) -> None:
        """The password was right: the account starts afresh, the address's attempt
        is taken back (others behind the same address keep their count)."""
        async with self.db.write() as conn:
            await conn.execute(delete(TABLE).where(TABLE.c.key == account))
            if address is not None:
                await conn.execute(
                    update(TABLE)
                    .where(TABLE.c.key == address, TABLE.c.failures > 0)
                    .values(failures=TABLE.c.failures - 1)
                )

    async def _count(self, key: str, limit: int, what: str) -> None:
        now = utcnow()
        new = self._insert(TABLE).values(key=key, failures=1, since=now)
        fresh = TABLE.c.since > now - self.window
        statement = new.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "failures": case((fresh, TABLE.c.failures + 1), else_=1),
                "since": case((fresh, TABLE.c.since), else_=new.excluded.since),
            },
        ).returning(TABLE.c.failures, TABLE.c.since)
        async with self.db.write() as conn:
            failures, since = (await conn.execute(statement)).one()
        if failures > limit:  # raised after the commit: a refused attempt still counts
            wait = (since + self.window - now).total_seconds()
            seconds = max(1, math.ceil(wait))
            raise errors.Throttled(
                f"Too many {what}; try again in {seconds} seconds",
                headers={"Retry-After": str(seconds)},
            )

    async def _purge(self) -> None:
        """Drop the rows of windows long over, once a window per process: they count
        for nothing (an upsert restarts a stale row), but would pile up."""
        if self._purged is not None and time.monotonic() - self._purged < self.window_seconds:
            return
        self._purged = time.monotonic()
        async with self.db.write() as conn:
            await conn.execute(delete(TABLE).where(TABLE.c.since <= utcnow() - self.window))
