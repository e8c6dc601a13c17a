"""Migrations and models agree, on every database; SQLite writers queue, not fail, and
commit in groups."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, text

from nefos.core.config import Settings, ensure_data_dir
from nefos.core.db import Base, Database
from nefos.core.migrate import current, head, upgrade_async
from nefos.core.sqlite import GroupCommit
from nefos.migrations.models import load_all
from nefos.server.engines import Engines


async def test_migrations_match_the_models(db: Database, database_url: str):
    load_all()
    assert await current(database_url) == head()

    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with db.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask, 022: files made without care are readable by every user."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def test_a_new_deployment_keeps_its_files_private(tmp_path: Path, loose_umask: None):
    """As ``nefos up`` starts: the data directory and its key, then the database
    migrated, opened and written (its WAL and shared memory exist while it is open)."""
    data = tmp_path / "data"
    settings = ensure_data_dir(Settings(data_dir=data, database_url="", log_level="WARNING"))
    await upgrade_async(settings.database)
    engines = Engines(settings)
    try:
        await engines.identity.create_user("first@example.org", password="pw")
        names = ["secret_key", "nefos.db", "nefos.db-wal", "nefos.db-shm"]
        modes = {name: stat.S_IMODE((data / name).stat().st_mode) for name in names}
        assert modes == dict.fromkeys(names, 0o600)
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
    finally:
        await engines.close()


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


def _sqlite_only(db: Database) -> None:
    if not db.url.startswith("sqlite"):
        pytest.skip("SQLite only: PostgreSQL commits writers side by side")


def _count_commits(db: Database) -> list[int]:
    commits: list[int] = []
    event.listen(db.engine.sync_engine, "commit", lambda conn: commits.append(1))
    return commits


async def test_sqlite_writers_that_wait_commit_together(db: Database):
    _sqlite_only(db)
    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE notes (n INTEGER NOT NULL)"))
    commits = _count_commits(db)

    async def write(n: int) -> None:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO notes VALUES (:n)"), {"n": n})
        async with db.session() as s:  # answered only once it is committed
            assert (
                await s.execute(text("SELECT count(*) FROM notes WHERE n = :n"), {"n": n})
            ).scalar_one() == 1

    await asyncio.gather(*(write(n) for n in range(40)))
    assert 1 <= len(commits) < 40


async def test_a_group_closes_at_its_size_while_writers_still_wait(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    _sqlite_only(db)
    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE notes (n INTEGER NOT NULL)"))
    monkeypatch.setattr(GroupCommit, "max_writers", 3)
    commits = _count_commits(db)

    async def write(n: int) -> None:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO notes VALUES (:n)"), {"n": n})

    await asyncio.gather(*(write(n) for n in range(10)))
    assert len(commits) >= 4  # groups of at most three
    async with db.session() as s:
        assert (await s.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 10


async def test_a_failing_writer_rolls_back_alone(db: Database):
    _sqlite_only(db)
    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE names (name VARCHAR(10) PRIMARY KEY)"))
    commits = _count_commits(db)

    async def write(name: str, fail: bool) -> None:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO names VALUES (:name)"), {"name": name})
            if fail:
                raise RuntimeError(name)

    async def duplicate() -> None:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO names VALUES ('dup-x')"))
            await s.execute(text("INSERT INTO names VALUES ('dup-x')"))  # IntegrityError

    outcomes = await asyncio.gather(
        *(write(f"n{i}", fail=i % 3 == 0) for i in range(12)),
        duplicate(),
        return_exceptions=True,
    )
    assert [str(o) for o in outcomes[:12] if isinstance(o, RuntimeError)] == [
        "n0",
        "n3",
        "n6",
        "n9",
    ]
    assert "UNIQUE" in str(outcomes[12])
    async with db.session() as s:
        names = (await s.execute(text("SELECT name FROM names ORDER BY name"))).scalars().all()
    assert names == sorted(f"n{i}" for i in range(12) if i % 3)
    assert len(commits) < 8


async def test_core_writers_and_session_writers_share_a_group(db: Database):
    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE mixed (name VARCHAR(10) PRIMARY KEY)"))
    commits = _count_commits(db)

    async def core(name: str, fail: bool) -> None:
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO mixed VALUES (:name)"), {"name": name})
            if fail:
                raise RuntimeError(name)

    async def orm(name: str) -> None:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO mixed VALUES (:name)"), {"name": name})

    outcomes = await asyncio.gather(
        core("c1", False), orm("o1"), core("c2", True), orm("o2"), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [type(None), type(None), RuntimeError, type(None)]
    async with db.session() as s:
        names = (await s.execute(text("SELECT name FROM mixed ORDER BY name"))).scalars().all()
    assert names == ["c1", "o1", "o2"]
    if db.url.startswith("sqlite"):
        assert len(commits) < 4


async def test_a_failed_group_commit_fails_every_writer_in_it(db: Database):
    """A deferred constraint is checked at COMMIT: the whole group is refused."""
    _sqlite_only(db)
    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE parents (id INTEGER PRIMARY KEY)"))
        await s.execute(
            text(
                "CREATE TABLE children (parent INTEGER REFERENCES parents (id)"
                " DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await s.execute(text("CREATE TABLE notes (n INTEGER NOT NULL)"))
    holding = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO notes VALUES (1)"))
            holding.set()
            await release.wait()

    async def orphan() -> None:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO children VALUES (42)"))

    async def good() -> None:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO notes VALUES (2)"))

    tasks = [asyncio.create_task(first())]
    await holding.wait()
    tasks += [asyncio.create_task(orphan()), asyncio.create_task(good())]
    await asyncio.sleep(0.01)  # both queue behind the first, in its group
    release.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all("FOREIGN KEY" in str(o) for o in outcomes), outcomes
    async with db.session() as s:
        assert (await s.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 0
        assert (await s.execute(text("SELECT count(*) FROM children"))).scalar_one() == 0
    async with db.transaction() as s:  # and the next group starts clean
        await s.execute(text("INSERT INTO notes VALUES (3)"))
    async with db.session() as s:
        assert (await s.execute(text("SELECT n FROM notes"))).scalars().all() == [3]
