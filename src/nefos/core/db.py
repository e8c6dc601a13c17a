"""The database: SQLAlchemy 2 (async) on SQLite by default, PostgreSQL by URL.

Services open their own transactions with :meth:`Database.transaction` (ORM) or
:meth:`Database.write` (Core statements alone); a read needs only
:meth:`Database.session`, or :attr:`Database.reads` when its statements need no common
snapshot (:meth:`Database.reading` for :class:`~nefos.core.prepared.Prepared` ones).
On SQLite the writers of a process take turns and commit in groups
(:class:`nefos.core.sqlite.GroupCommit`); each group starts with ``BEGIN IMMEDIATE`` so
that writers of other processes queue on the busy timeout instead of one failing when it
upgrades its read lock (SQLite's deferred transactions cannot wait for that).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from nefos.core import sqlite
from nefos.core.prepared import Reader

SQLITE_BUSY_TIMEOUT_MS = 30_000

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every engine (SQLite keeps no zone, so we store naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if is_sqlite(url):
        # Statements on the loop's thread, lock waits and commits on a thread: see
        # nefos.core.sqlite. The connection starts with no implicit transactions
        # (isolation_level None): we emit BEGIN ourselves, below.
        kwargs.setdefault("async_creator", sqlite.creator(url, SQLITE_BUSY_TIMEOUT_MS / 1000))
    else:
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit is on disk before it is acknowledged (WAL with NORMAL could
        # lose the last acknowledged writes on power loss, even with their blocks stored).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode != "NONE":
            connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One engine and its session factories, shared by every service of a process."""

    def __init__(self, url: str, **engine_kwargs: Any):
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        # For reads that need no snapshot across their statements: on SQLite each
        # statement reads the latest commit (no BEGIN, whose round trip costs as much
        # as a small read), as every statement does under PostgreSQL's default READ
        # COMMITTED. Never write through it.
        self.reads = self.engine.execution_options(sqlite_begin="NONE")
        self._sqlite_reader: Reader | None = None
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite takes one writer at a time: the writers of this process take turns and
        # commit in groups (one fsync for many; see nefos.core.sqlite.GroupCommit).
        # Other processes (operator commands) still meet at SQLite's lock.
        self._group = sqlite.GroupCommit(self.engine) if is_sqlite(url) else None

    def session(self) -> AsyncSession:
        """A session for reads; it never needs a commit."""
        return self._reader()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed (durably) on success, rolled back on any
        error. Never open one inside another (on SQLite that would wait for itself)."""
        if self._group is None:
            async with self._writer() as session, session.begin():
                yield session
            return
        async with self._group.transaction() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction for Core statements alone, as :meth:`transaction` but
        without an ORM session (the per-request writes of the file store)."""
        if self._group is None:
            async with self.engine.begin() as connection:
                yield connection
            return
        async with self._group.connection() as connection:
            yield connection

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection | Reader]:
        """Where :class:`~nefos.core.prepared.Prepared` reads run with no transaction,
        as on :attr:`reads`: on SQLite one connection of the process serves them all,
        with no pool checkout per request (the hottest reads: object GET and HEAD)."""
        if not is_sqlite(self.url):
            async with self.reads.connect() as connection:
                yield connection
            return
        if self._sqlite_reader is None:
            handle = await sqlite.open_reader(self.url, SQLITE_BUSY_TIMEOUT_MS / 1000)
            if self._sqlite_reader is None:
                self._sqlite_reader = Reader(handle, self.engine.dialect)
            else:  # another reader opened it meanwhile
                handle.close()
        yield self._sqlite_reader

    async def close(self) -> None:
        reader, self._sqlite_reader = self._sqlite_reader, None
        if reader is not None:
            reader.connection.close()
        await self.engine.dispose()
