"""The quotaholder (Astakos): holdings and the two-phase commission protocol.

A commission is a set of provisions applied to holdings atomically or not at all. Each
provision moves one holding in two steps, so a crash between them never loses quota:

============  ===========================================  ==========================
quantity      issue (checked unless ``force``)             accept        / reject
============  ===========================================  ==========================
q > 0 import  usage_max + q <= limit;  usage_max += q       usage_min += q / usage_max -= q
q < 0 release usage_min + q >= 0;      usage_min += q       usage_max += q / usage_min -= q
============  ===========================================  ==========================

A charge to a user in a project is the pair ``user:<u>`` from ``project:<p>`` and
``project:<p>`` from nothing, so the project's own limit caps its members together:
the effective limit of a member is ``min(limit, project_limit - (project_usage - usage))``.

Every method is one transaction, except :meth:`Quotas.take`, which runs in the caller's:
a service that keeps its records in this same database (the file store) pays for a
change inside the change's own transaction, issued and accepted at once, so the two
commit together or not at all and no serial is ever left pending. Holdings are locked
in a fixed order (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write transactions
are serial), so concurrent issues never oversell and never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.core.numbers import INT32_MAX
from nefos.core.prepared import Prepared
from nefos.identity.models import Project, User
from nefos.quotas.models import (
    NO_SOURCE,
    Commission,
    Holding,
    ProjectResource,
    Provision,
    ProvisionLog,
)
from nefos.quotas.resources import RESOURCES, Resource
from nefos.units import human_amount

MAX_QUANTITY = 1 << 62  # beyond any real resource; keeps sums inside 64 bits
MAX_PROVISIONS = 1000
PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"


def user_holder(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}"


def project_holder(project_id: uuid.UUID | str) -> str:
    return f"project:{project_id}"


def _holder_uuid(holder: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(holder.split(":", 1)[1])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Charge:
    """One provision: ``quantity`` of ``resource`` to ``holder`` from ``source``."""

    holder: str
    source: str | None
    resource: str
    quantity: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "source": self.source,
            "resource": self.resource,
            "quantity": self.quantity,
        }


def charge(
    user_id: uuid.UUID | str, project_id: uuid.UUID | str, resource: str, quantity: int
) -> list[Charge]:
    """The pair of provisions that charges ``user`` in ``project`` (spec §3.3)."""
    project = project_holder(project_id)
    return [
        Charge(user_holder(user_id), project, resource, quantity),
        Charge(project, None, resource, quantity),
    ]


def _key(holder: str, source: str | None, resource: str) -> tuple[str, str, str]:
    return holder, source or NO_SOURCE, resource


class Quotas:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        unknown = set(settings.quota_defaults) - set(RESOURCES)
        if unknown:
            raise errors.InvalidInput(f"quota_defaults names unknown resources: {sorted(unknown)}")

    async def explained(self, refusal: errors.OverQuota) -> errors.OverQuota:
        """A refusal from a commission, its message written for people: the resource
        by its description and name, how much its holder uses of its limit and how much
        more was asked, and the project by its name (a user's system project as their
        personal project), never a holder's raw id. The data stays as it was, for
        clients that compose their own text (the web UI does)."""
        data = refusal.data if isinstance(refusal.data, dict) else {}
        provision = data.get("provision")
        if not isinstance(provision, dict) or "limit" not in data or "usage" not in data:
            return refusal
        name = str(provision.get("resource"))
        resource = RESOURCES.get(name)
        unit = resource.unit if resource else ""
        holder, source = str(provision.get("holder")), provision.get("source")
        project_ref = holder if source is None else str(source)
        project_id = _holder_uuid(project_ref)
        project_text = project_ref
        if project_id is not None:
            async with self.db.session() as s:
                project = await s.get(Project, project_id)
            if project is not None:
                project_text = (
                    "your personal project" if project.is_system else f"project {project.name!r}"
                )
        who = "its members together" if source is None else "you"
        what = f"{name} ({resource.description})" if resource else name
        message = (
            f"Quota exceeded for {what} in {project_text}: {who} use "
            f"{human_amount(int(data['usage']), unit)} of a limit of "
            f"{human_amount(int(data['limit']), unit)}, and "
            f"{human_amount(int(provision.get('quantity', 0)), unit)} more was asked"
        )
        return errors.OverQuota(message, data=data)

    # -- resources ----------------------------------------------------------------------

    def resource(self, name: str) -> Resource:
        found = RESOURCES.get(name)
        if found is None:
            raise errors.InvalidInput(f"Unknown resource {name!r}")
        return found

    def default_limit(self, resource: str) -> int:
        return self.settings.quota_defaults.get(resource, self.resource(resource).default)

    def resources(self) -> dict[str, Resource]:
        return dict(RESOURCES)

    # -- holdings -----------------------------------------------------------------------

    async def _lock(self, s: AsyncSession, keys: Iterable[tuple[str, str, str]]) -> dict:
        """Load and lock holdings in one fixed order (no deadlocks between issuers)."""
        found: dict[tuple[str, str, str], Holding] = {}
        for key in sorted(set(keys)):
            holder, source, resource = key
            holding = await s.scalar(
                select(Holding)
                .where(
                    Holding.holder == holder,
                    Holding.source == source,
                    Holding.resource == resource,
                )
                .with_for_update()
            )
            if holding is not None:
                found[key] = holding
        return found

    async def set_limit(
        self, s: AsyncSession, holder: str, source: str | None, resource: str, limit: int
    ) -> Holding:
        """Create or change a holding's limit inside the caller's transaction."""
        self.resource(resource)
        _check_limit(limit)
        key = _key(holder, source, resource)
        holding = (await self._lock(s, [key])).get(key)
        if holding is None:
            holding = Holding(
                holder=key[0],
                source=key[1],
                resource=resource,
                limit=limit,
                usage_min=0,
                usage_max=0,
            )
            s.add(holding)
            await s.flush()
        else:
            holding.limit = limit
        return holding

    async def set_limits(self, holdings: Sequence[tuple[str, str | None, str, int]]) -> None:
        """Set several limits in one transaction (operators, project approval)."""
        async with self.db.transaction() as s:
            for holder, source, resource, limit in holdings:
                await self.set_limit(s, holder, source, resource, limit)

    async def holdings(
        self, holders: Iterable[str] | None = None, sources: Iterable[str] | None = None
    ) -> list[Holding]:
        async with self.db.session() as s:
            query = select(Holding)
            if holders is not None:
                query = query.where(Holding.holder.in_(list(holders)))
            if sources is not None:
                query = query.where(Holding.source.in_(list(sources)))
            return list(await s.scalars(query.order_by(Holding.holder, Holding.resource)))

    async def init_project(
        self,
        s: AsyncSession,
        project_id: uuid.UUID,
        capacities: dict[str, tuple[int, int]],
        members: Iterable[uuid.UUID] = (),
    ) -> None:
        """Give a project its holdings (``project_capacity``) and each member theirs."""
        for resource, (project_capacity, member_capacity) in capacities.items():
            await self.set_limit(s, project_holder(project_id), None, resource, project_capacity)
            for member in members:
                await self.set_limit(
                    s, user_holder(member), project_holder(project_id), resource, member_capacity
                )

    def system_capacities(self) -> dict[str, tuple[int, int]]:
        return {name: (self.default_limit(name),) * 2 for name in RESOURCES}

    async def init_user(self, s: AsyncSession, user_id: uuid.UUID) -> None:
        """A new user's system project holds the base quota (hooked into user creation)."""
        capacities = self.system_capacities()
        for resource, (project_capacity, member_capacity) in capacities.items():
            s.add(
                ProjectResource(
                    project_id=user_id,
                    resource=resource,
                    project_capacity=project_capacity,
                    member_capacity=member_capacity,
                )
            )
        await self.init_project(s, user_id, capacities, [user_id])

    async def set_base_quota(self, user_id: uuid.UUID, resource: str, limit: int) -> None:
        """A user's base quota: their system project's capacity, in all and for them."""
        async with self.db.transaction() as s:
            await self.set_limit(s, project_holder(user_id), None, resource, limit)
            await self.set_limit(s, user_holder(user_id), project_holder(user_id), resource, limit)
            await self._set_capacity(s, user_id, resource, limit, limit)

    async def set_project_capacity(self, project_id: uuid.UUID, resource: str, limit: int) -> None:
        """What a project grants in all, over its members together.

        A project that is not active keeps its holdings at zero; the new capacity
        applies when it is reinstated or unsuspended.
        """
        async with self.db.transaction() as s:
            project = await s.get(Project, project_id)
            if project is None:
                raise errors.NotFound(f"No project {project_id}")
            self.resource(resource)
            _check_limit(limit)
            if project.state == "active":
                await self.set_limit(s, project_holder(project_id), None, resource, limit)
            await self._set_capacity(s, project_id, resource, limit, None)

    async def set_project_quota(self, project_id: uuid.UUID, resource: str, limit: int) -> None:
        """A project's quota as an OpenStack client sets it: a system project's is its
        user's base quota (project and member alike), any other's its capacity."""
        async with self.db.session() as s:
            project = await s.get(Project, project_id)
        if project is None:
            raise errors.NotFound(f"No project {project_id}")
        if project.is_system:
            await self.set_base_quota(project_id, resource, limit)
        else:
            await self.set_project_capacity(project_id, resource, limit)

    async def set_member_quota(
        self, user_id: uuid.UUID, project_id: uuid.UUID, resource: str, limit: int
    ) -> None:
        """One member's limit in a project; only a member has one to change."""
        self.resource(resource)
        _check_limit(limit)
        key = _key(user_holder(user_id), project_holder(project_id), resource)
        async with self.db.transaction() as s:
            holding = (await self._lock(s, [key])).get(key)
            if holding is None:
                raise errors.NotFound(f"User {user_id} has no quota in project {project_id}")
            holding.limit = limit

    async def _set_capacity(
        self,
        s: AsyncSession,
        project_id: uuid.UUID,
        resource: str,
        project_capacity: int,
        member_capacity: int | None,
    ) -> None:
        row = await s.scalar(
            select(ProjectResource).where(
                ProjectResource.project_id == project_id, ProjectResource.resource == resource
            )
        )
        if row is None:
            s.add(
                ProjectResource(
                    project_id=project_id,
                    resource=resource,
                    project_capacity=project_capacity,
                    member_capacity=member_capacity or 0,
                )
            )
            return
        row.project_capacity = project_capacity
        if member_capacity is not None:
            row.member_capacity = member_capacity

    async def init_missing_users(self) -> int:
        """Base quotas for users created before quotas existed; returns how many."""
        async with self.db.transaction() as s:
            users = set(await s.scalars(select(User.id)))
            have = set(
                await s.scalars(
                    select(Holding.holder).where(Holding.source.like("project:%")).distinct()
                )
            )
            missing = [u for u in users if user_holder(u) not in have]
            for user_id in missing:
                await self.init_user(s, user_id)
        return len(missing)

    # -- commissions ----------------------------------------------------------------------

    def _check(self, provisions: Sequence[Charge]) -> None:
        if not provisions:
            raise errors.InvalidInput("A commission needs at least one provision")
        if len(provisions) > MAX_PROVISIONS:
            raise errors.InvalidInput(f"A commission takes at most {MAX_PROVISIONS} provisions")
        for p in provisions:
            self.resource(p.resource)
            if not p.holder or isinstance(p.quantity, bool) or not isinstance(p.quantity, int):
                raise errors.InvalidInput(f"Malformed provision {p.as_dict()}")
            if abs(p.quantity) > MAX_QUANTITY:
                raise errors.InvalidInput(f"Quantity out of range in {p.as_dict()}")

    async def issue(
        self,
        clientkey: str,
        provisions: Sequence[Charge],
        name: str = "",
        force: bool = False,
        auto_accept: bool = False,
    ) -> int:
        """Reserve every provision or none; return the serial to accept or reject later.

        Raises NotFound for a missing holding and OverQuota (with Synnefo's ``data``)
        for a provision beyond its limit or below zero.
        """
        self._check(provisions)
        if len(name) > 255:
            raise errors.InvalidInput("A commission name has at most 255 characters")
        async with self.db.transaction() as s:
            locked = await self._lock(s, (_key(p.holder, p.source, p.resource) for p in provisions))
            for p in provisions:
                holding = locked.get(_key(p.holder, p.source, p.resource))
                if holding is None:
                    raise _no_holding(p)
                _reserve(holding, p, force)
            commission = Commission(clientkey=clientkey, name=name, state=PENDING)
            s.add(commission)
            await s.flush()
            for p in provisions:
                s.add(
                    Provision(
                        serial=commission.serial,
                        holder=p.holder,
                        source=p.source or NO_SOURCE,
                        resource=p.resource,
                        quantity=p.quantity,
                    )
                )
            if auto_accept:
                await s.flush()
                await self._resolve(s, commission, accept=True, locked=locked)
            return commission.serial

    async def take(
        self, conn: AsyncConnection, clientkey: str, provisions: Sequence[Charge], name: str = ""
    ) -> int:
        """Issue and accept a commission inside the caller's open transaction (Core
        statements: this is on every file write's path). Lock holdings after the
        caller's own rows, so every writer locks in the same order. Raises as
        :meth:`issue` does; the caller's transaction then rolls back with it."""
        self._check(provisions)
        keys = [_key(p.holder, p.source, p.resource) for p in provisions]
        if len(set(keys)) == len(keys):
            found = await self._move_each(conn, provisions)
        else:
            found = await self._move_together(conn, provisions)
        now = utcnow()
        commission = {
            "clientkey": clientkey,
            "name": name,
            "state": ACCEPTED,
            "issue_time": now,
            "resolve_time": now,
        }
        serial = (await _NEW_COMMISSION(conn, commission)).scalar()
        assert serial is not None
        # No provision rows: the commission is settled, and its log entries say the same.
        logged = []
        for p in provisions:
            held = found[_key(p.holder, p.source, p.resource)]
            logged.append(
                {
                    "serial": serial,
                    "clientkey": clientkey,
                    "name": name,
                    "outcome": "accept",
                    "issue_time": now,
                    "log_time": now,
                    "holder": p.holder,
                    "source": p.source or NO_SOURCE,
                    "resource": p.resource,
                    "quantity": p.quantity,
                    "limit": held.limit,
                    "usage_min": held.usage_min,
                    "usage_max": held.usage_max,
                }
            )
        await _NEW_LOG_ENTRIES(conn, logged)
        return serial

    async def check(self, conn: AsyncConnection, provisions: Sequence[Charge]) -> None:
        """Raise what :meth:`take` would raise for ``provisions`` now, writing nothing: a
        write refuses early, before it stores anything, what its commit would refuse.
        The commit checks again; this only spares the work."""
        self._check(provisions)
        for p in provisions:
            key = _key(p.holder, p.source, p.resource)
            wanted = {"holder": key[0], "source": key[1], "resource": key[2]}
            row = (await _HOLDING(conn, wanted)).first()
            if row is None:
                raise _no_holding(p)
            _reserve(_Held(row.id, row.limit, row.usage_min, row.usage_max), p, force=False)

    async def _move_each(
        self, conn: AsyncConnection, provisions: Sequence[Charge]
    ) -> dict[tuple[str, str, str], _Held]:
        """One provision per holding: each is checked and moved by one conditional
        UPDATE; one that moves nothing is read to say why."""
        found: dict[tuple[str, str, str], _Held] = {}
        for p in sorted(provisions, key=lambda p: _key(p.holder, p.source, p.resource)):
            key = _key(p.holder, p.source, p.resource)
            wanted = {"holder": key[0], "source": key[1], "resource": key[2]}
            taking = {
                "of_holder": key[0],
                "of_source": key[1],
                "of_resource": key[2],
                "quantity": p.quantity,
            }
            row = (await _TAKE_HOLDING(conn, taking)).first()
            if row is None:
                held = (await _HOLDING_LOCKED(conn, wanted)).first()
                if held is None:
                    raise _no_holding(p)
                _reserve(_Held(held.id, held.limit, held.usage_min, held.usage_max), p, False)
                raise AssertionError("a provision within limits moved no holding")
            found[key] = _Held(row.id, row.limit, row.usage_min, row.usage_max)
        return found

    async def _move_together(
        self, conn: AsyncConnection, provisions: Sequence[Charge]
    ) -> dict[tuple[str, str, str], _Held]:
        """Several provisions on one holding: read, apply in order, write back."""
        found: dict[tuple[str, str, str], _Held] = {}
        for key in sorted({_key(p.holder, p.source, p.resource) for p in provisions}):
            wanted = {"holder": key[0], "source": key[1], "resource": key[2]}
            row = (await _HOLDING_LOCKED(conn, wanted)).first()
            if row is not None:
                found[key] = _Held(row.id, row.limit, row.usage_min, row.usage_max)
        for p in provisions:
            held = found.get(_key(p.holder, p.source, p.resource))
            if held is None:
                raise _no_holding(p)
            _reserve(held, p, force=False)
            _settle(held, p.quantity, accept=True)
        for held in found.values():
            await conn.execute(
                _MOVE_HOLDING,
                {"held": held.id, "new_min": held.usage_min, "new_max": held.usage_max},
            )
        return found

    async def accept(self, clientkey: str, serial: int) -> None:
        await self._resolve_one(clientkey, serial, accept=True)

    async def reject(self, clientkey: str, serial: int) -> None:
        await self._resolve_one(clientkey, serial, accept=False)

    async def _resolve_one(self, clientkey: str, serial: int, accept: bool) -> None:
        async with self.db.transaction() as s:
            commission = await self._pending(s, clientkey, serial)
            await self._resolve(s, commission, accept)

    async def _pending(self, s: AsyncSession, clientkey: str, serial: int) -> Commission:
        commission = None
        if _serial_in_range(serial):
            commission = await s.scalar(
                select(Commission).where(Commission.serial == serial).with_for_update()
            )
        if commission is None or commission.clientkey != clientkey:
            raise errors.NotFound(f"No commission {serial} of this service")
        if commission.state != PENDING:
            raise errors.Conflict(f"Commission {serial} is already {commission.state}")
        return commission

    async def _resolve(
        self,
        s: AsyncSession,
        commission: Commission,
        accept: bool,
        locked: dict | None = None,
    ) -> None:
        provisions = list(
            await s.scalars(
                select(Provision)
                .where(Provision.serial == commission.serial)
                .order_by(Provision.id)
            )
        )
        if locked is None:
            locked = await self._lock(s, (_key(p.holder, p.source, p.resource) for p in provisions))
        now = utcnow()
        for p in provisions:
            holding = locked[_key(p.holder, p.source, p.resource)]
            _settle(holding, p.quantity, accept)
            s.add(
                ProvisionLog(
                    serial=commission.serial,
                    clientkey=commission.clientkey,
                    name=commission.name,
                    outcome="accept" if accept else "reject",
                    issue_time=commission.issue_time,
                    log_time=now,
                    holder=p.holder,
                    source=p.source,
                    resource=p.resource,
                    quantity=p.quantity,
                    limit=holding.limit,
                    usage_min=holding.usage_min,
                    usage_max=holding.usage_max,
                )
            )
        commission.state = ACCEPTED if accept else REJECTED
        commission.resolve_time = now

    async def resolve(
        self, clientkey: str, accept: Iterable[int], reject: Iterable[int]
    ) -> tuple[list[int], list[int], list[tuple[int, errors.NefosError]]]:
        """Resolve many serials; each succeeds or fails alone (Synnefo's bulk action)."""
        accept, reject = list(accept), list(reject)
        both = set(accept) & set(reject)
        accepted: list[int] = []
        rejected: list[int] = []
        failed: list[tuple[int, errors.NefosError]] = []
        for serial in sorted(both):
            failed.append((serial, errors.Conflict(f"Serial {serial} both accepted and rejected")))
        for serials, outcome, done in ((accept, True, accepted), (reject, False, rejected)):
            for serial in serials:
                if serial in both:
                    continue
                try:
                    await self._resolve_one(clientkey, serial, outcome)
                except errors.NefosError as exc:
                    failed.append((serial, exc))
                else:
                    done.append(serial)
        return accepted, rejected, failed

    async def pending(self, clientkey: str) -> list[int]:
        async with self.db.session() as s:
            query = select(Commission.serial).where(
                Commission.clientkey == clientkey, Commission.state == PENDING
            )
            return list(await s.scalars(query.order_by(Commission.serial)))

    async def commission(self, clientkey: str, serial: int) -> tuple[Commission, list[Provision]]:
        async with self.db.session() as s:
            commission = await s.get(Commission, serial) if _serial_in_range(serial) else None
            if commission is None or commission.clientkey != clientkey:
                raise errors.NotFound(f"No commission {serial} of this service")
            provisions = list(
                await s.scalars(
                    select(Provision).where(Provision.serial == serial).order_by(Provision.id)
                )
            )
            if not provisions:  # taken at once (Quotas.take): only its log has them
                logged = await s.scalars(
                    select(ProvisionLog)
                    .where(ProvisionLog.serial == serial)
                    .order_by(ProvisionLog.id)
                )
                provisions = [
                    Provision(
                        serial=serial,
                        holder=entry.holder,
                        source=entry.source,
                        resource=entry.resource,
                        quantity=entry.quantity,
                    )
                    for entry in logged
                ]
        return commission, provisions


HOLDINGS = Holding.__table__
COMMISSIONS = Commission.__table__
PROVISION_LOG = ProvisionLog.__table__
# Built once: Quotas.take runs with every file write (see nefos.storage.statements).
_HOLDING_SELECT = select(
    HOLDINGS.c.id, HOLDINGS.c.limit, HOLDINGS.c.usage_min, HOLDINGS.c.usage_max
).where(
    HOLDINGS.c.holder == bindparam("holder"),
    HOLDINGS.c.source == bindparam("source"),
    HOLDINGS.c.resource == bindparam("resource"),
)
_HOLDING = Prepared(_HOLDING_SELECT)
_HOLDING_LOCKED = Prepared(_HOLDING_SELECT.with_for_update())
_MOVE_HOLDING = (
    update(HOLDINGS)
    .where(HOLDINGS.c.id == bindparam("held"))
    .values(usage_min=bindparam("new_min"), usage_max=bindparam("new_max"))
)
_QUANTITY = bindparam("quantity", type_=BigInteger)
# Issue and accept at once (see _reserve and _settle): both ends move by the quantity,
# if an import stays within the limit and a release leaves no negative usage.
_TAKE_HOLDING = Prepared(
    update(HOLDINGS)
    .where(
        HOLDINGS.c.holder == bindparam("of_holder"),
        HOLDINGS.c.source == bindparam("of_source"),
        HOLDINGS.c.resource == bindparam("of_resource"),
        or_(_QUANTITY < 0, HOLDINGS.c.usage_max + _QUANTITY <= HOLDINGS.c.limit),
        or_(_QUANTITY >= 0, HOLDINGS.c.usage_min + _QUANTITY >= 0),
    )
    .values(usage_min=HOLDINGS.c.usage_min + _QUANTITY, usage_max=HOLDINGS.c.usage_max + _QUANTITY)
    .returning(HOLDINGS.c.id, HOLDINGS.c.limit, HOLDINGS.c.usage_min, HOLDINGS.c.usage_max)
)
_NEW_COMMISSION = Prepared(insert(COMMISSIONS).returning(COMMISSIONS.c.serial))
_NEW_LOG_ENTRIES = Prepared(insert(PROVISION_LOG))


@dataclass
class _Held:
    """A holding as :meth:`Quotas.take` reads and moves it (a Core row, not the ORM)."""

    id: int
    limit: int
    usage_min: int
    usage_max: int


def _no_holding(p: Charge) -> errors.NotFound:
    return errors.NotFound(
        f"No holding for {p.holder} from {p.source} of {p.resource}",
        data={"provision": p.as_dict()},
    )


def _serial_in_range(serial: int) -> bool:
    """Serials are numbered in an Integer column: one past it names no commission (and
    the database would refuse to compare with it)."""
    return isinstance(serial, int) and 0 < serial <= INT32_MAX


def _check_limit(limit: int) -> None:
    if limit < 0 or limit > MAX_QUANTITY:
        raise errors.InvalidInput(f"A limit must be between 0 and {MAX_QUANTITY}")


def _over(p: Charge, holding: Holding | _Held, kind: str, message: str) -> errors.OverQuota:
    return errors.OverQuota(
        message,
        data={
            "provision": p.as_dict(),
            "name": kind,
            "limit": holding.limit,
            "usage": holding.usage_max,
        },
    )


def _amount(p: Charge, quantity: int) -> str:
    """A quantity of the charge's resource as its message shows it: sizes in binary
    units (the fault's data keeps the exact numbers)."""
    resource = RESOURCES.get(p.resource)
    return human_amount(quantity, resource.unit if resource else "")


def _reserve(holding: Holding | _Held, p: Charge, force: bool) -> None:
    if p.quantity >= 0:
        if not force and holding.usage_max + p.quantity > holding.limit:
            raise _over(
                p,
                holding,
                "NoCapacityError",
                f"{p.resource}: {p.holder} would use {_amount(p, holding.usage_max + p.quantity)} "
                f"of a limit of {_amount(p, holding.limit)}",
            )
        holding.usage_max += p.quantity
    else:
        if not force and holding.usage_min + p.quantity < 0:
            raise _over(
                p,
                holding,
                "NoQuantityError",
                f"{p.resource}: {p.holder} cannot release {_amount(p, -p.quantity)}, "
                f"it holds {_amount(p, holding.usage_min)}",
            )
        holding.usage_min += p.quantity


def _settle(holding: Holding | _Held, quantity: int, accept: bool) -> None:
    if quantity >= 0:
        if accept:
            holding.usage_min += quantity
        else:
            holding.usage_max -= quantity
    elif accept:
        holding.usage_max += quantity
    else:
        holding.usage_min -= quantity
