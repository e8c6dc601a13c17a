"""Periodic work that one process of a deployment does per interval, whichever it is.

Every API process runs the same loops (``nefos serve --workers N`` on several hosts
starts them all with one configuration), so no setting names the one that should
collect garbage. Each loop instead claims the interval's run in the database: one
conditional UPDATE moves the claim's ``next_at`` forward by the interval if it has
passed, so of the processes that wake in one interval exactly one finds it passed. It
works the same on SQLite and PostgreSQL, holds no connection or lock while the work
runs (an advisory lock would, and SQLite has none), and a holder that dies simply does
not claim the next run: another process does, one interval on.

A run longer than its interval may meet the next one, claimed by another process: the
work claimed this way must be safe to run twice at once (gc is).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from nefos.core.db import Base, Database, UtcDateTime, utcnow


class PeriodicClaim(Base):
    """When the work ``name`` is next due, and which process claimed its last run."""

    __tablename__ = "periodic_claims"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    holder: Mapped[str] = mapped_column(String(128), default="")


CLAIMS = PeriodicClaim.__table__


async def claim(db: Database, name: str, interval: float, holder: str) -> bool:
    """Whether this process (``holder``) runs ``name`` now: True for one caller per
    ``interval`` seconds across every process of the deployment."""
    now = utcnow()
    async with db.write() as conn:
        insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
        await conn.execute(
            insert(CLAIMS)
            .values(name=name, next_at=now, holder="")
            .on_conflict_do_nothing(index_elements=["name"])
        )
        moved = await conn.execute(
            update(CLAIMS)
            .where(CLAIMS.c.name == name, CLAIMS.c.next_at <= now)
            .values(next_at=now + dt.timedelta(seconds=interval), holder=holder)
        )
        return moved.rowcount == 1
