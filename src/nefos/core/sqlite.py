"""SQLite for the async engine, with statements run on the event loop's own thread.

SQLAlchemy's aiosqlite dialect hands every statement to a thread of the connection's
own and gets the result back through the event loop. On a local WAL database a
statement takes microseconds, less than that hand-off, and under load each hand-off
also waits its turn behind every other request on the loop: a write transaction, which
holds SQLite's single write lock from BEGIN to COMMIT, waited for dozens of turns and
small writes queued behind it (measured: 40 small PUTs/s with one core half idle).

Here the aiosqlite dialect is given connections (``async_creator``) whose statements
run at once on the calling thread. Only what can wait on another process or on the disk
goes to a thread: ``BEGIN IMMEDIATE``/``EXCLUSIVE`` (SQLite's write lock, which another
process may hold for up to the busy timeout) and ``COMMIT`` (the fsync of a durable
commit), so the loop keeps serving meanwhile. Plain reads never wait for a lock in WAL
mode.

The database file is created 0600 before SQLite opens it (:func:`create_private`):
SQLite itself would make it 0644 less the umask, readable by every local user, with
its password hashes and sealed secrets. SQLite gives the ``-wal``, ``-shm`` and
``-journal`` files it creates the mode of the database file, so they follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

# One process serialises its SQLite writers (nefos.core.db.Database), so a thread or two
# is all the waiting ever needs; more would only hold idle connections' threads.
_waiter: ThreadPoolExecutor | None = None


def _waiting_thread() -> ThreadPoolExecutor:
    global _waiter
    if _waiter is None:
        _waiter = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nefos-sqlite")
    return _waiter


def _waits(sql: str) -> bool:
    """Whether a statement can block on another writer or on the disk."""
    head = sql.lstrip()[:16].upper()
    return head.startswith(("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE", "COMMIT", "END"))


class Cursor:
    """The part of aiosqlite's cursor that SQLAlchemy's adapter uses."""

    def __init__(self, connection: Connection):
        self._connection = connection
        self._cursor = connection._connection.cursor()

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        if _waits(sql):
            await self._connection._in_thread(self._cursor.execute, sql, parameters)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class Connection:
    """The part of aiosqlite's connection that SQLAlchemy's adapter uses."""

    def __init__(self, connection: sqlite3.Connection):
        self._connection: sqlite3.Connection | None = connection

    @property
    def _live(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("Connection closed")
        return self._connection

    async def _in_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        future = asyncio.get_running_loop().run_in_executor(_waiting_thread(), call, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The call goes on regardless: let it end before the connection is used again.
            with contextlib.suppress(BaseException):
                await future
            raise

    @property
    def isolation_level(self) -> str | None:
        return self._live.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def commit(self) -> None:
        if self._live.in_transaction:
            try:
                await self._in_thread(self._live.commit)
            except sqlite3.Error:
                # SQLite keeps a transaction open when its COMMIT fails (a deferred
                # constraint, say); SQLAlchemy takes it for ended and pools the
                # connection as is. End it, as PostgreSQL does.
                if self._connection is not None and self._connection.in_transaction:
                    self._connection.rollback()
                raise

    async def rollback(self) -> None:
        if self._live.in_transaction:
            self._live.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live.create_function(*args, **kwargs)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # The last connection to close checkpoints the WAL: that writes.
            await asyncio.get_running_loop().run_in_executor(_waiting_thread(), connection.close)

    def stop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


PRIVATE_FILE = 0o600
# The files beside a database that hold its data: SQLite names them after it.
COMPANIONS = ("-wal", "-shm", "-journal")


def database_file(url: str) -> Path | None:
    """The file a SQLite URL names (None: in memory, or a ``file:`` URI left to SQLite)."""
    args, kwargs = SQLiteDialect_pysqlite().create_connect_args(make_url(url))
    if kwargs.get("uri") or not args or args[0] in ("", ":memory:"):
        return None
    return Path(args[0])


def create_private(path: Path) -> None:
    """Create the database file, empty and 0600, if it does not exist yet. Any failure
    is left for SQLite's own open to report."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    except OSError:
        return
    os.close(fd)


def _connect_args(url: str, timeout: float) -> tuple[list[Any], dict[str, Any]]:
    args, kwargs = SQLiteDialect_pysqlite().create_connect_args(make_url(url))
    kwargs.update(timeout=timeout, check_same_thread=False, isolation_level=None)
    return args, kwargs


def _connect(path: Path | None, args: list[Any], kwargs: dict[str, Any]) -> sqlite3.Connection:
    if path is not None:
        create_private(path)
    return sqlite3.connect(*args, **kwargs)


def creator(url: str, timeout: float) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine`` on a ``sqlite+aiosqlite`` URL."""
    args, kwargs = _connect_args(url, timeout)
    path = database_file(url)

    async def connect() -> Connection:
        loop = asyncio.get_running_loop()
        raw = await loop.run_in_executor(_waiting_thread(), _connect, path, args, kwargs)
        return Connection(raw)

    return connect


def handle_of(connection: AsyncConnection) -> sqlite3.Connection:
    """The ``sqlite3`` connection under an engine's connection (this module's shim)."""
    driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    return driver._live


async def open_reader(url: str, busy_seconds: float) -> sqlite3.Connection:
    """A connection that only reads, outside transactions (``nefos.core.prepared.Reader``);
    the engine's connections have set the database to WAL already."""
    args, kwargs = _connect_args(url, busy_seconds)
    loop = asyncio.get_running_loop()
    path = database_file(url)
    connection = await loop.run_in_executor(_waiting_thread(), _connect, path, args, kwargs)
    connection.execute("PRAGMA query_only=1")
    return connection


class _Batch:
    def __init__(self, connection: AsyncConnection):
        self.connection = connection
        self.writers = 0
        self.opened = asyncio.get_running_loop().time()
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.broken: BaseException | None = None


class GroupCommit:
    """Write transactions of one process, committed together (group commit).

    SQLite has one writer, and a durable commit is an fsync of the WAL: committing
    writers one by one caps writes at one per fsync whatever the CPU. Here each writer's
    transaction runs in a savepoint of a shared transaction, one writer at a time; the
    writers that arrive while one batch is being committed make the next batch, which
    commits with one fsync when its last writer is done. Each writer is answered only
    after its batch committed; one whose work fails is rolled back to its savepoint
    alone; a failed commit fails every writer of that batch, as none of their work
    reached the disk. A group closes at ``max_writers`` or ``max_seconds`` even while
    more writers wait, so a steady stream of them cannot keep the first from its answer.
    """

    max_writers = 100
    max_seconds = 0.05

    def __init__(self, engine: AsyncEngine):
        self._engine = engine.execution_options(sqlite_begin="IMMEDIATE")
        self._turn = asyncio.Lock()  # one writer's work at a time
        self._waiting = 0  # writers waiting for the turn: they join the open batch
        self._batch: _Batch | None = None
        self._committing: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """An ORM session over this writer's savepoint."""
        async with self._member() as batch:
            session = AsyncSession(
                bind=batch.connection,
                join_transaction_mode="create_savepoint",
                expire_on_commit=False,
            )
            try:
                async with session.begin():  # a savepoint: released, or rolled back to
                    yield session
            finally:
                await session.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """The shared connection, inside this writer's savepoint (Core statements).

        The savepoint is SQLite's own, on the driver's handle: SQLAlchemy's
        ``begin_nested`` costs more CPU than the writer's statements (see
        nefos.core.prepared), and only this writer uses it, one turn at a time."""
        async with self._member() as batch:
            handle = handle_of(batch.connection)
            handle.execute("SAVEPOINT nefos_writer")
            try:
                yield batch.connection
            except BaseException as exc:
                try:
                    handle.execute("ROLLBACK TO nefos_writer")
                    handle.execute("RELEASE nefos_writer")
                except sqlite3.Error:
                    batch.broken = exc
                raise
            try:
                handle.execute("RELEASE nefos_writer")
            except sqlite3.Error as exc:
                batch.broken = exc  # its work would commit with the others
                raise

    @asynccontextmanager
    async def _member(self) -> AsyncIterator[_Batch]:
        """This writer's turn in the open batch; after it, the batch's commit."""
        self._waiting += 1
        try:
            await self._turn.acquire()
        except BaseException:
            self._waiting -= 1
            self._close_if_idle()  # nobody else may be left to commit the open batch
            raise
        self._waiting -= 1
        try:
            batch = self._batch or await self._open()
            batch.writers += 1
            try:
                yield batch
            except BaseException as exc:
                if batch.connection.in_nested_transaction():
                    batch.broken = exc  # the savepoint could not be rolled back
                raise
        finally:
            self._turn.release()
            self._close_if_idle()
        await asyncio.shield(batch.committed)

    async def _open(self) -> _Batch:
        if self._committing is not None:
            # The previous batch holds SQLite's write lock until its commit ends.
            await asyncio.wait([self._committing])
        connection = await self._engine.connect()
        try:
            await connection.begin()
        except BaseException:
            await connection.close()
            raise
        self._batch = _Batch(connection)
        return self._batch

    def _close_if_idle(self) -> None:
        batch = self._batch
        if batch is None or self._turn.locked():
            return
        if (
            self._waiting
            and batch.writers < self.max_writers
            and asyncio.get_running_loop().time() - batch.opened < self.max_seconds
        ):
            return  # the next writer joins this group
        self._batch = None
        self._committing = asyncio.get_running_loop().create_task(self._commit(batch))

    async def _commit(self, batch: _Batch) -> None:
        try:
            if batch.broken is not None:
                await batch.connection.rollback()
                raise RuntimeError("a write of this batch left it unusable") from batch.broken
            await batch.connection.commit()
        except BaseException as exc:
            batch.committed.set_exception(exc)
            batch.committed.exception()  # retrieved: writers that gave up will not ask
        else:
            batch.committed.set_result(None)
        finally:
            await batch.connection.close()
