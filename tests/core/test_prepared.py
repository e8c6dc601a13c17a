"""Prepared statements give what SQLAlchemy's execution gives, on every database; on
SQLite they skip its per-execution machinery where that is safe, and only there."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy.exc
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from nefos.core.db import Database, UtcDateTime
from nefos.core.prepared import Prepared

METADATA = MetaData()
THINGS = Table(
    "prepared_things",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("at", UtcDateTime, nullable=False),
    Column("ident", Uuid, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("note", String(40), nullable=False, default=lambda: "defaulted"),
)
NEW = Prepared(insert(THINGS).returning(THINGS.c.id, THINGS.c.at, THINGS.c.ident))
BY_NAME = Prepared(
    select(THINGS.c.id, THINGS.c.name, THINGS.c.at, THINGS.c.ident, THINGS.c.size, THINGS.c.note)
    .where(THINGS.c.name == bindparam("name"))
    .order_by(THINGS.c.id)
)
NAMED_IN = Prepared(
    select(THINGS.c.name).where(THINGS.c.name.in_(bindparam("names", expanding=True)))
)
GROW = Prepared(
    update(THINGS).where(THINGS.c.size < bindparam("below")).values(size=THINGS.c.size + 1)
)
DROP = Prepared(delete(THINGS).where(THINGS.c.name == bindparam("name")))


def _thing(name: str, size: int = 1) -> dict[str, object]:
    return {
        "name": name,
        "at": dt.datetime(2026, 11, 21, 10, 30, 5, 123456, tzinfo=dt.UTC),
        "ident": uuid.UUID(int=size),
        "size": size,
        "note": f"note of {name}",
    }


@pytest.fixture
async def things(db: Database) -> Database:
    async with db.engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    return db


async def test_rows_and_types_match_sqlalchemy(things: Database):
    async with things.write() as conn:
        made = (await NEW(conn, _thing("a", 7))).first()
        assert made.at == dt.datetime(2026, 11, 21, 10, 30, 5, 123456, tzinfo=dt.UTC)
        assert made.ident == uuid.UUID(int=7)
        assert (await GROW(conn, {"below": 100})).rowcount == 1
    async with things.reading() as conn:
        fast = (await BY_NAME(conn, {"name": "a"})).all()
    async with things.session() as s:
        slow = (await s.execute(BY_NAME.statement, {"name": "a"})).all()
    assert [tuple(row) for row in fast] == [tuple(row) for row in slow]
    row = fast[0]
    assert (row.id, row.name, row.size, row.note) == (made.id, "a", 8, "note of a")
    assert row.at.tzinfo is dt.UTC and isinstance(row.ident, uuid.UUID)


async def test_a_constraint_error_is_sqlalchemys_and_the_write_is_undone(things: Database):
    async with things.write() as conn:
        await NEW(conn, _thing("same"))
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        async with things.write() as conn:
            await DROP(conn, {"name": "same"})
            await NEW(conn, _thing("other"))
            await NEW(conn, _thing("other"))
    async with things.reading() as conn:
        assert len((await BY_NAME(conn, {"name": "same"})).all()) == 1
        assert (await BY_NAME(conn, {"name": "other"})).all() == []


async def test_many_rows_defaults_and_expanding_in(things: Database):
    without_note = _thing("b", 2)
    del without_note["note"]
    async with things.write() as conn:
        await NEW(conn, [_thing("c", 3), _thing("d", 4)])
        await NEW(conn, without_note)  # the column's Python default still applies
        names = (await NAMED_IN(conn, {"names": ["b", "d", "x"]})).scalars()
    assert sorted(names) == ["b", "d"]
    async with things.reading() as conn:
        assert (await BY_NAME(conn, {"name": "b"})).first().note == "defaulted"
        assert (await BY_NAME(conn, {"name": "d"})).first().size == 4


async def test_sqlite_skips_sqlalchemy_where_it_is_safe(things: Database):
    if not things.url.startswith("sqlite"):
        pytest.skip("the fast path is SQLite's")
    async with things.write() as conn:
        await NEW(conn, _thing("e"))
    async with things.reading() as conn:
        await BY_NAME(conn, {"name": "e"})
        with pytest.raises(TypeError):  # an expanding IN needs SQLAlchemy's execution
            await NAMED_IN(conn, {"names": ["e"]})
    assert BY_NAME._plans[frozenset({"name"})] is not None
    assert NEW._plans[frozenset(_thing("e"))] is not None
    assert NAMED_IN._plans[frozenset({"names"})] is None
    keys_without_note = frozenset(_thing("e")) - {"note"}
    if keys_without_note in NEW._plans:  # run by the test above: computed defaults
        assert NEW._plans[keys_without_note] is None
