"""Commit, then settle the quota: the calling side of the commission protocol.

A service that changes a resource (a project application, later a VM or a file) pays
for it like this::

    async with settled(db, quotas, "astakos") as settlement:
        await settlement.issue(charge(user, project, "astakos.pending_app", 1))
        async with settlement.transaction() as session:
            session.add(application)        # the resource change

The commission is issued first, in its own transaction, so the quota is reserved and
visible to every other issuer. Its serial is then recorded in the same transaction as
the resource change, and only after that commits is it accepted; if anything fails
before the commit the serial is rejected. A crash anywhere in between leaves a pending
serial that :func:`reconcile` settles: accepted if the local record (hence the resource
change) committed, rejected if it did not.

A serial may also be recorded undecided (``accept=None``), for changes whose outcome is
known later (a backend job); :func:`decide` marks it and :func:`reconcile` leaves it
alone until then.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.db import Database
from nefos.quotas.models import QuotaSerial
from nefos.quotas.service import Charge, Quotas

log = logging.getLogger("nefos.quotas.serials")

# The services of this deployment that keep their serials in its database; each later
# service (compute, storage, volumes) adds its clientkey. Serials of services deployed
# apart are theirs to reconcile.
LOCAL_CLIENTS: tuple[str, ...] = ("astakos", "pithos", "cyclades")


class Settlement:
    def __init__(self, db: Database, quotas: Quotas, clientkey: str):
        self.db = db
        self.quotas = quotas
        self.clientkey = clientkey
        self.issued: list[tuple[int, bool | None]] = []
        self.committed = False

    async def issue(
        self,
        provisions: Sequence[Charge],
        name: str = "",
        force: bool = False,
        accept: bool | None = True,
    ) -> int:
        """Reserve now (committed at once); ``accept=None`` leaves the outcome open."""
        if self.committed:
            raise RuntimeError("issue commissions before the transaction that records them")
        serial = await self.quotas.issue(self.clientkey, provisions, name, force=force)
        self.issued.append((serial, accept))
        return serial

    async def withdraw(self, serial: int) -> None:
        """Reject a commission issued here at once (before the transaction): what it
        reserved is free again, for a smaller one to take."""
        if self.committed:
            raise RuntimeError("withdraw commissions before the transaction that records them")
        await self.quotas.reject(self.clientkey, serial)
        self.issued = [(s, accept) for s, accept in self.issued if s != serial]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The resource change's transaction; it also records the issued serials."""
        async with self.db.transaction() as session:
            yield session
            for serial, accept in self.issued:
                session.add(
                    QuotaSerial(
                        serial=serial,
                        clientkey=self.clientkey,
                        pending=accept is None,
                        accept=bool(accept),
                        resolved=False,
                    )
                )
        self.committed = True

    def _decided(self) -> list[int]:
        return [serial for serial, accept in self.issued if accept is not None]

    async def _resolve(self, serials: list[int], accept: bool) -> list[int]:
        done = []
        for serial in serials:
            try:
                if accept:
                    await self.quotas.accept(self.clientkey, serial)
                else:
                    await self.quotas.reject(self.clientkey, serial)
            except errors.NefosError as exc:  # `nefos quota reconcile` settles it later
                log.warning("could not resolve serial %s: %s", serial, exc.message)
            else:
                done.append(serial)
        return done


async def _mark_resolved(db: Database, clientkey: str, serials: list[int]) -> None:
    if not serials:
        return
    async with db.transaction() as s:
        await s.execute(
            update(QuotaSerial)
            .where(QuotaSerial.clientkey == clientkey, QuotaSerial.serial.in_(serials))
            .values(resolved=True)
        )


@asynccontextmanager
async def settled(db: Database, quotas: Quotas, clientkey: str) -> AsyncIterator[Settlement]:
    """Issue commissions, change resources, then settle: accept after the commit,
    reject if the change never committed."""
    settlement = Settlement(db, quotas, clientkey)
    try:
        yield settlement
    except BaseException:
        if not settlement.committed:
            await settlement._resolve([serial for serial, _ in settlement.issued], accept=False)
            raise
        done = await settlement._resolve(settlement._decided(), accept=True)
        await _mark_resolved(db, clientkey, done)
        raise
    if not settlement.committed:
        await settlement._resolve([serial for serial, _ in settlement.issued], accept=False)
        if settlement.issued:
            raise RuntimeError("commissions issued without a transaction to record them")
        return
    done = await settlement._resolve(settlement._decided(), accept=True)
    await _mark_resolved(db, clientkey, done)


async def settle(db: Database, quotas: Quotas, clientkey: str, serial: int, accept: bool) -> None:
    """Resolve a serial already decided with :func:`decide` (after that transaction
    committed); a failure is left to :func:`reconcile`."""
    try:
        if accept:
            await quotas.accept(clientkey, serial)
        else:
            await quotas.reject(clientkey, serial)
    except errors.NefosError as exc:
        log.warning("could not resolve serial %s: %s", serial, exc.message)
        return
    await _mark_resolved(db, clientkey, [serial])


async def decide(session: AsyncSession, clientkey: str, serial: int, accept: bool) -> None:
    """Mark an undecided serial, in the transaction that learns the outcome."""
    await session.execute(
        update(QuotaSerial)
        .where(QuotaSerial.clientkey == clientkey, QuotaSerial.serial == serial)
        .values(pending=False, accept=accept)
    )


async def reconcile(db: Database, quotas: Quotas, clientkey: str) -> tuple[list[int], list[int]]:
    """Settle what a crash left pending: accept serials recorded as accepted, reject
    those recorded as rejected and those never recorded (their change rolled back)."""
    pending = await quotas.pending(clientkey)
    if not pending:
        return [], []
    async with db.session() as s:
        local = {
            row.serial: row
            for row in await s.scalars(
                select(QuotaSerial).where(
                    QuotaSerial.clientkey == clientkey, QuotaSerial.serial.in_(pending)
                )
            )
        }
    accept = [n for n in pending if n in local and not local[n].pending and local[n].accept]
    reject = [n for n in pending if n not in local or not (local[n].pending or local[n].accept)]
    accepted, rejected, failed = await quotas.resolve(clientkey, accept, reject)
    for serial, problem in failed:
        log.warning("reconcile could not resolve serial %s: %s", serial, problem.message)
    await _mark_resolved(db, clientkey, accepted + rejected)
    return accepted, rejected
