"""Counting the statements a call sends the database: listings must cost a bounded
number, however many rows there are (issue 19)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event

from nefos.server.engines import Engines


@asynccontextmanager
async def counted(engines: Engines) -> AsyncIterator[list[str]]:
    """Every statement the database is sent meanwhile."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    engine = engines.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def statements(engines: Engines, call: Callable[[], Awaitable[Any]]) -> tuple[int, Any]:
    async with counted(engines) as sent:
        result = await call()
    return len(sent), result
