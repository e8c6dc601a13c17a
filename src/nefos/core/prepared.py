"""Hot statements, compiled once, and run on SQLite straight on the driver's connection.

Executing a prebuilt Core statement through SQLAlchemy's async engine costs about
150 us of CPU here (cache key, execution context, greenlet hand-off, result set-up)
around the 10 to 15 us SQLite takes to run it; checking a connection out of the pool
and back costs 250 us more. Object storage runs a handful of such statements per
request on the one event loop, so that machinery was a third of every small request.

A :class:`Prepared` statement is compiled once per set of parameter names and, on
SQLite, executed on the connection's ``sqlite3`` handle with the column types' own bind
and result processors, so values come and go exactly as through SQLAlchemy; errors are
raised as SQLAlchemy's (``IntegrityError`` and the rest). On PostgreSQL, in an ORM
session, and for what the fast path does not cover (expanding ``IN``, Python-side
column defaults, many parameter sets), it is plain ``conn.execute``.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable

from nefos.core import sqlite

Processor = Callable[[Any], Any] | None


class Reader:
    """A SQLite connection for reads outside any transaction, used from the event
    loop's thread only: each statement runs to its last row before the loop moves on,
    so one connection serves every concurrent reader of the process."""

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect):
        self.connection = connection
        self.dialect = dialect


class Fetched:
    """What a fast-path statement gave: the part of SQLAlchemy's result the callers use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]


class _Plan:
    """One compiled form: the SQL, where each positional value comes from, the row."""

    def __init__(
        self,
        sql: str,
        slots: list[tuple[str | None, Any, Processor]],
        row: Callable[..., Any] | None,
        columns: list[tuple[int, Processor]],
    ):
        self.sql = sql
        self.slots = slots
        self.row = row
        self.columns = columns

    def run(self, connection: sqlite3.Connection, params: Mapping[str, Any]) -> Fetched:
        values = []
        for key, constant, process in self.slots:
            value = constant if key is None else params[key]
            values.append(value if process is None or key is None else process(value))
        try:
            cursor = connection.execute(self.sql, values)
            found = cursor.fetchall() if self.row is not None else []
        except sqlite3.Error as exc:
            raise DBAPIError.instance(self.sql, values, exc, sqlite3.Error) from exc
        if self.row is None:
            return Fetched([], cursor.rowcount)
        rows = []
        make = self.row
        for raw in found:
            if self.columns:
                raw = list(raw)
                for index, process in self.columns:
                    raw[index] = process(raw[index])  # type: ignore[misc]
            rows.append(make(raw))
        return Fetched(rows, cursor.rowcount)


def _plan(statement: Any, keys: frozenset[str], dialect: Dialect) -> _Plan | None:
    """The fast form of ``statement`` for these parameter names, or None where only
    SQLAlchemy's execution does it right."""
    compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
        return None  # Python-side column defaults: SQLAlchemy computes them per execution
    if compiled.positiontup is None:
        return None
    slots: list[tuple[str | None, Any, Processor]] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        if bind.expanding or bind.callable is not None:
            return None
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind.key in keys:
            slots.append((bind.key, None, process))
        elif bind.required:
            return None  # a missing parameter: let SQLAlchemy say so
        else:
            value = bind.value if process is None else process(bind.value)
            slots.append((None, value, None))
    exported = list(getattr(statement, "exported_columns", ()) or ())
    returns_rows = statement.is_select or bool(exported)
    if not returns_rows:
        return _Plan(str(compiled), slots, None, [])
    names = [column.key for column in exported]
    if len(set(names)) != len(names):
        return None
    row = namedtuple("Row", names)._make  # type: ignore[misc]
    columns = []
    for index, column in enumerate(exported):
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is not None:
            columns.append((index, process))
    return _Plan(str(compiled), slots, row, columns)


def _sqlite_handle(conn: Any) -> tuple[sqlite3.Connection, Dialect] | None:
    """The ``sqlite3`` connection under ``conn`` when statements may bypass SQLAlchemy:
    a :class:`Reader`, or a SQLite connection already inside its transaction (outside
    one, SQLAlchemy's execute would BEGIN first)."""
    if isinstance(conn, Reader):
        return conn.connection, conn.dialect
    if not isinstance(conn, AsyncConnection) or conn.dialect.name != "sqlite":
        return None
    if not conn.in_transaction():
        return None
    return sqlite.handle_of(conn), conn.dialect


class Prepared:
    """A Core statement run as ``await statement(conn, params)``."""

    def __init__(self, statement: Executable):
        self.statement = statement
        self._plans: dict[frozenset[str], _Plan | None] = {}

    async def __call__(
        self,
        conn: AsyncConnection | AsyncSession | Reader,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> Any:
        given = params if params is not None else {}
        handle = _sqlite_handle(conn)
        if handle is not None:
            connection, dialect = handle
            many = [given] if isinstance(given, Mapping) else list(given)
            plans = [self._plan_for(frozenset(one), dialect) for one in many]
            fast = [plan for plan in plans if plan is not None]
            if len(fast) == len(many) and (len(many) == 1 or all(p.row is None for p in fast)):
                done = [plan.run(connection, one) for plan, one in zip(fast, many, strict=True)]
                return done[0] if len(done) == 1 else Fetched([], sum(d.rowcount for d in done))
        if isinstance(conn, Reader):
            raise TypeError(f"not a statement for a Reader: {self.statement}")
        return await conn.execute(self.statement, given)

    def _plan_for(self, keys: frozenset[str], dialect: Dialect) -> _Plan | None:
        try:
            return self._plans[keys]
        except KeyError:
            self._plans[keys] = _plan(self.statement, keys, dialect)
            return self._plans[keys]
