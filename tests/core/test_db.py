"""Migrations and models agree, on every database; SQLite writers queue, not fail."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from nefos.core.db import Base, Database
from nefos.core.migrate import current, head, upgrade_async
from nefos.core.models import load_all


async def test_migrations_match_the_models(db: Database, database_url: str):
    load_all()
    assert await current(database_url) == head()

    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with db.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_upgrade_is_idempotent(database_url: str):
    await upgrade_async(database_url)
    assert await current(database_url) == head()


async def test_concurrent_sqlite_writers_all_commit(db: Database):
    """BEGIN IMMEDIATE serialises read-modify-write on SQLite (PostgreSQL uses row locks)."""
    if not db.url.startswith("sqlite"):
        pytest.skip("SQLite only")
    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        await s.execute(text("INSERT INTO counter VALUES (0)"))

    async def bump() -> None:
        async with db.transaction() as s:
            value = (await s.execute(text("SELECT n FROM counter"))).scalar_one()
            await asyncio.sleep(0)
            await s.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})

    await asyncio.gather(*(bump() for _ in range(30)))
    async with db.session() as s:
        assert (await s.execute(text("SELECT n FROM counter"))).scalar_one() == 30


async def test_transaction_rolls_back_on_error(db: Database):
    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE things (name VARCHAR(10))"))
    try:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO things VALUES ('a')"))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with db.session() as s:
        assert (await s.execute(text("SELECT count(*) FROM things"))).scalar_one() == 0
