"""Which blocks a hashmap PUT may name without sending them: the block-hash oracle closed.

A hashmap PUT commits an object from blocks the store has, and answers 409 with those it
lacks. Over the whole store that answer says whether any account anywhere holds some
content (guess a document, hash its blocks, ask), and it lets a user whose share was
revoked rebuild the data from hashes seen while it lasted. So by default
(``storage.hashmap_reuse = "known"``) a hashmap PUT may name without sending only the
blocks its caller's account has had: sent in a body (PUT, a partial update, a block
upload), or found in a map copied into the account from one the caller could read.
Every other block is reported missing, stored or not, and the client sends it; the
store keeps one copy of a block however often it is sent, so nothing is written twice.
The answer then tells the caller only about its own data. ``"any"`` is Synnefo's
behaviour: any stored block, no upload, and the oracle open.

An account keeps a block it once had after deleting the object: it had the bytes then.
What is remembered is (account, hash), once; the rows of a write go in its own
transaction, the rows of a block upload in the transaction that charges the block.
Data stored before this table existed is not in it: naming such blocks costs one upload.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nefos.blocks import EMPTY_HASH
from nefos.storage.models import KnownBlock

KNOWN = KnownBlock.__table__
ASKED_AT_ONCE = 500  # hashes per IN (...): within every engine's parameter limit

_REMEMBER = {
    dialect: insert_(KNOWN).on_conflict_do_nothing(index_elements=["account", "hash"])
    for dialect, insert_ in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}
_KNOWN_AMONG = select(KNOWN.c.hash).where(
    KNOWN.c.account == bindparam("account"), KNOWN.c.hash.in_(bindparam("hashes", expanding=True))
)


async def remember(conn: AsyncConnection, accounts: Collection[str], hashes: Sequence[str]) -> None:
    """``accounts`` have had these blocks (the zero block needs no remembering)."""
    names = [h for h in dict.fromkeys(hashes) if h != EMPTY_HASH]
    rows = [{"account": a, "hash": h} for a in sorted(set(accounts)) if a for h in names]
    if rows:
        await conn.execute(_REMEMBER[conn.dialect.name], rows)


async def unknown(
    conn: AsyncConnection | AsyncSession, account: str, hashes: Sequence[str]
) -> set[str]:
    """Those of ``hashes`` that ``account`` has never had (the zero block it always has:
    it reveals nothing)."""
    asked = [h for h in dict.fromkeys(hashes) if h != EMPTY_HASH]
    found: set[str] = set()
    for start in range(0, len(asked), ASKED_AT_ONCE):
        chunk = asked[start : start + ASKED_AT_ONCE]
        params = {"account": account, "hashes": chunk}
        found.update((await conn.execute(_KNOWN_AMONG, params)).scalars())
    return set(asked) - found
