"""The quotaholder: holdings arithmetic and the commission protocol, on every database."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from nefos.core import errors
from nefos.core.db import Database
from nefos.identity.service import Identity
from nefos.quotas.models import Commission, Holding, ProvisionLog
from nefos.quotas.resources import RESOURCES
from nefos.quotas.service import (
    Charge,
    Quotas,
    _reserve,
    _settle,
    charge,
    project_holder,
    user_holder,
)

VM = "cyclades.vm"


@pytest.fixture
def quotas(engines) -> Quotas:
    return engines.quotas


async def holding(
    quotas: Quotas, holder: str, resource: str = VM, source: str | None = None
) -> Holding:
    (found,) = [
        h
        for h in await quotas.holdings([holder])
        if h.resource == resource and (source is None or h.source == source)
    ]
    return found


async def new_user(identity: Identity, name: str = "u") -> uuid.UUID:
    user, _ = await identity.create_user(f"{name}-{uuid.uuid4().hex[:6]}@example.org")
    return user.id


async def test_new_users_get_base_quota(identity: Identity, quotas: Quotas):
    user = await new_user(identity)
    mine = await quotas.holdings([user_holder(user)])
    assert {h.resource for h in mine} == set(RESOURCES)
    assert all(h.source == project_holder(user) for h in mine)
    project = await quotas.holdings([project_holder(user)])
    assert {h.resource: h.limit for h in project} == {n: r.default for n, r in RESOURCES.items()}


async def test_configured_defaults(db: Database, settings):
    quotas = Quotas(db, settings.model_copy(update={"quota_defaults": {VM: 1}}))
    assert quotas.default_limit(VM) == 1
    with pytest.raises(errors.InvalidInput):
        Quotas(db, settings.model_copy(update={"quota_defaults": {"cyclades.nope": 1}}))


async def test_issue_accept_reject_move_usage(identity: Identity, quotas: Quotas):
    user = await new_user(identity)
    serial = await quotas.issue("svc", charge(user, user, VM, 2), name="two vms")
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (0, 2)
    assert await quotas.pending("svc") == [serial]
    await quotas.accept("svc", serial)
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (2, 2)
    release = await quotas.issue("svc", charge(user, user, VM, -1))
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (1, 2)
    await quotas.reject("svc", release)
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (2, 2)
    assert await quotas.pending("svc") == []
    commission, provisions = await quotas.commission("svc", serial)
    assert commission.state == "accepted" and commission.name == "two vms"
    assert [(p.holder, p.source, p.quantity) for p in provisions] == [
        (user_holder(user), project_holder(user), 2),
        (project_holder(user), "", 2),
    ]


async def test_over_limit_is_refused_with_synnefo_data(identity: Identity, quotas: Quotas, db):
    user = await new_user(identity)
    limit = RESOURCES[VM].default
    with pytest.raises(errors.OverQuota) as caught:
        await quotas.issue("svc", charge(user, user, VM, limit + 1))
    data = caught.value.data
    assert data["name"] == "NoCapacityError"
    assert data["limit"] == limit and data["usage"] == 0
    assert data["provision"]["resource"] == VM
    with pytest.raises(errors.OverQuota) as caught:
        await quotas.issue("svc", charge(user, user, VM, -1))
    assert caught.value.data["name"] == "NoQuantityError"
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (0, 0)
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Commission)) == 0


async def test_over_limit_of_a_size_says_it_in_binary_units(identity: Identity, quotas: Quotas):
    """A refusal people read: "would use 50 GiB", not 53687091200; the data stays exact."""
    user = await new_user(identity)
    limit = RESOURCES["pithos.diskspace"].default  # 50 GiB
    with pytest.raises(errors.OverQuota) as caught:
        await quotas.issue("svc", charge(user, user, "pithos.diskspace", limit + (512 << 20)))
    message = caught.value.message
    assert "would use 50.5 GiB of a limit of 50 GiB" in message, message
    assert str(limit) not in message
    assert caught.value.data["limit"] == limit
    with pytest.raises(errors.OverQuota) as caught:
        await quotas.issue("svc", charge(user, user, "pithos.diskspace", -(3 << 20)))
    assert "cannot release 3 MiB, it holds 0 B" in caught.value.message
    with pytest.raises(errors.OverQuota) as caught:  # counts stay counts
        await quotas.issue("svc", charge(user, user, VM, RESOURCES[VM].default + 1))
    assert f"would use {RESOURCES[VM].default + 1} of a limit of" in caught.value.message


async def test_take_pays_inside_the_callers_transaction(
    identity: Identity, quotas: Quotas, db: Database
):
    """Issued and accepted with the caller's own change: both commit, or neither."""
    user = await new_user(identity)
    limit = RESOURCES[VM].default
    async with db.transaction() as s:
        serial = await quotas.take(await s.connection(), "svc", charge(user, user, VM, 2), "two")
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (2, 2)
    assert await quotas.pending("svc") == []
    commission, provisions = await quotas.commission("svc", serial)
    assert commission.state == "accepted" and commission.name == "two"
    assert [(p.holder, p.quantity) for p in provisions] == [
        (user_holder(user), 2),
        (project_holder(user), 2),
    ]
    async with db.session() as s:
        logged = (await s.scalars(select(ProvisionLog).where(ProvisionLog.serial == serial))).all()
    assert sorted((r.holder, r.outcome, r.usage_min, r.usage_max) for r in logged) == sorted(
        [(user_holder(user), "accept", 2, 2), (project_holder(user), "accept", 2, 2)]
    )

    with pytest.raises(errors.OverQuota) as caught:
        async with db.transaction() as s:
            conn = await s.connection()
            await quotas.take(conn, "svc", charge(user, user, VM, -1), "release one")
            await quotas.take(conn, "svc", charge(user, user, VM, limit), "too many")
    assert caught.value.data["name"] == "NoCapacityError"
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (2, 2)  # the release rolled back with it

    async def take(provisions: list[Charge]) -> None:
        async with db.transaction() as s:
            await quotas.take(await s.connection(), "svc", provisions)

    with pytest.raises(errors.OverQuota) as caught:
        await take(charge(user, user, VM, -3))
    assert caught.value.data["name"] == "NoQuantityError"
    with pytest.raises(errors.NotFound):
        await take([Charge(user_holder(uuid.uuid4()), None, VM, 1)])
    # Provisions on one holding apply in order: up to the limit, then a release.
    await take(charge(user, user, VM, limit - 2) + charge(user, user, VM, -1))
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (limit - 1, limit - 1)
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Commission)) == 2


async def test_project_limit_caps_members_together(identity: Identity, quotas: Quotas):
    """The effective limit: min(limit, project_limit - (project_usage - usage))."""
    project = uuid.uuid4()
    a, b = await new_user(identity, "a"), await new_user(identity, "b")
    await quotas.set_limits(
        [
            (project_holder(project), None, VM, 8),
            (user_holder(a), project_holder(project), VM, 5),
            (user_holder(b), project_holder(project), VM, 5),
        ]
    )
    await quotas.issue("svc", charge(a, project, VM, 5), auto_accept=True)
    await quotas.issue("svc", charge(b, project, VM, 3), auto_accept=True)
    with pytest.raises(errors.OverQuota) as caught:
        await quotas.issue("svc", charge(b, project, VM, 1))
    assert caught.value.data["provision"]["holder"] == project_holder(project)
    # Nothing of the failed commission stuck to b's holding either.
    mine = await holding(quotas, user_holder(b), source=project_holder(project))
    assert (mine.usage_min, mine.usage_max) == (3, 3)


async def test_force_exceeds_limits(identity: Identity, quotas: Quotas):
    user = await new_user(identity)
    serial = await quotas.issue("svc", charge(user, user, VM, 100), force=True, auto_accept=True)
    assert (await holding(quotas, user_holder(user))).usage_min == 100
    assert await quotas.pending("svc") == []
    _, provisions = await quotas.commission("svc", serial)
    assert len(provisions) == 2


async def test_bad_commissions_change_nothing(identity: Identity, quotas: Quotas, db: Database):
    user = await new_user(identity)
    stranger = uuid.uuid4()
    cases = [
        ([], errors.InvalidInput),
        (
            [Charge(user_holder(user), project_holder(user), "cyclades.nope", 1)],
            errors.InvalidInput,
        ),
        ([Charge("", None, VM, 1)], errors.InvalidInput),
        ([Charge(user_holder(user), project_holder(user), VM, 1 << 63)], errors.InvalidInput),
        (charge(stranger, stranger, VM, 1), errors.NotFound),
        # One good provision and one bad: all or nothing.
        ([*charge(user, user, VM, 1), Charge(user_holder(stranger), None, VM, 1)], errors.NotFound),
    ]
    for provisions, kind in cases:
        with pytest.raises(kind):
            await quotas.issue("svc", provisions)
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (0, 0)
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Commission)) == 0


async def test_resolution_faults(identity: Identity, quotas: Quotas):
    user = await new_user(identity)
    serial = await quotas.issue("svc", charge(user, user, VM, 1))
    with pytest.raises(errors.NotFound):
        await quotas.accept("other-service", serial)
    with pytest.raises(errors.NotFound):
        await quotas.accept("svc", serial + 1000)
    await quotas.reject("svc", serial)
    with pytest.raises(errors.Conflict, match="rejected"):
        await quotas.accept("svc", serial)
    with pytest.raises(errors.Conflict):
        await quotas.reject("svc", serial)
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (0, 0)


async def test_bulk_resolve(identity: Identity, quotas: Quotas, db: Database):
    user = await new_user(identity)
    one, two, three = [await quotas.issue("svc", charge(user, user, VM, 1)) for _ in range(3)]
    accepted, rejected, failed = await quotas.resolve("svc", [one, three, 999], [two, three])
    assert accepted == [one] and rejected == [two]
    assert sorted(serial for serial, _ in failed) == [three, 999]
    assert await quotas.pending("svc") == [three]
    async with db.session() as s:
        outcomes = list(await s.scalars(select(ProvisionLog.outcome).order_by(ProvisionLog.id)))
    assert outcomes == ["accept", "accept", "reject", "reject"]


async def test_set_limit_checks(identity: Identity, quotas: Quotas, db: Database):
    user = await new_user(identity)
    async with db.transaction() as s:
        with pytest.raises(errors.InvalidInput):
            await quotas.set_limit(s, user_holder(user), project_holder(user), VM, -1)
        with pytest.raises(errors.InvalidInput):
            await quotas.set_limit(s, user_holder(user), project_holder(user), "x.y", 1)
    assert (await holding(quotas, user_holder(user))).limit == RESOURCES[VM].default


async def test_two_hundred_concurrent_issues_against_ten(identity: Identity, quotas: Quotas):
    """Real concurrent transactions, not a loop: exactly ten may win."""
    user = await new_user(identity)
    await quotas.set_limits(
        [(user_holder(user), project_holder(user), VM, 10), (project_holder(user), None, VM, 50)]
    )

    async def attempt() -> int | None:
        try:
            return await quotas.issue("svc", charge(user, user, VM, 1))
        except errors.OverQuota:
            return None

    serials = [s for s in await asyncio.gather(*(attempt() for _ in range(200))) if s]
    assert len(serials) == 10
    accepted, _, failed = await quotas.resolve("svc", serials, [])
    assert len(accepted) == 10 and not failed
    mine = await holding(quotas, user_holder(user))
    assert (mine.usage_min, mine.usage_max) == (10, 10)
    project = await holding(quotas, project_holder(user))
    assert project.usage_min == project.usage_max == 10


# -- the arithmetic, as properties ------------------------------------------------------

quantities = st.integers(min_value=-50, max_value=50)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(min_value=0, max_value=100),
    steps=st.lists(st.tuples(quantities, st.booleans()), max_size=40),
)
def test_usage_never_exceeds_the_limit_and_stays_ordered(limit, steps):
    """Any sequence of issues, each then accepted or rejected, keeps
    0 <= usage_min <= usage_max <= limit."""
    holding = Holding(holder="h", source="", resource=VM, limit=limit, usage_min=0, usage_max=0)
    for quantity, accept in steps:
        provision = Charge("h", None, VM, quantity)
        try:
            _reserve(holding, provision, force=False)
        except errors.OverQuota:
            continue
        assert 0 <= holding.usage_min <= holding.usage_max <= limit
        _settle(holding, quantity, accept)
        assert 0 <= holding.usage_min <= holding.usage_max <= limit


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(min_value=0, max_value=100),
    pending=st.lists(quantities, max_size=20),
    outcomes=st.lists(st.booleans(), min_size=20, max_size=20),
)
def test_interleaved_pending_commissions_settle_consistently(limit, pending, outcomes):
    """Many commissions pending at once, settled in any order: usage ends as the sum
    of the accepted ones, and usage_min <= usage_max throughout."""
    holding = Holding(holder="h", source="", resource=VM, limit=limit, usage_min=0, usage_max=0)
    issued = []
    for quantity in pending:
        try:
            _reserve(holding, Charge("h", None, VM, quantity), force=False)
        except errors.OverQuota:
            continue
        issued.append(quantity)
        assert holding.usage_min <= holding.usage_max <= limit
    accepted_total = 0
    for quantity, accept in zip(reversed(issued), outcomes, strict=False):
        _settle(holding, quantity, accept)
        accepted_total += quantity if accept else 0
        assert 0 <= holding.usage_min <= holding.usage_max <= limit
    if len(issued) <= len(outcomes):
        assert holding.usage_min == holding.usage_max == accepted_total


async def test_project_capacity_of_a_suspended_project_waits(identity: Identity, engines):
    from nefos.identity.models import Project
    from nefos.quotas.models import ProjectResource

    quotas = engines.quotas
    owner = await new_user(identity)
    project_id = uuid.uuid4()
    async with engines.db.transaction() as s:
        s.add(Project(id=project_id, name=f"p-{project_id.hex[:8]}", owner_id=owner))
        await s.flush()
        await quotas.set_limit(s, project_holder(project_id), None, VM, 0)
    await quotas.set_project_capacity(project_id, VM, 9)
    assert (await holding(quotas, project_holder(project_id))).limit == 9
    async with engines.db.transaction() as s:
        (await s.get(Project, project_id)).state = "suspended"
        await quotas.set_limit(s, project_holder(project_id), None, VM, 0)
    await quotas.set_project_capacity(project_id, VM, 12)
    assert (await holding(quotas, project_holder(project_id))).limit == 0
    async with engines.db.session() as s:
        row = await s.scalar(
            select(ProjectResource).where(ProjectResource.project_id == project_id)
        )
    assert row.project_capacity == 12
    with pytest.raises(errors.InvalidInput):
        await quotas.set_project_capacity(project_id, VM, -1)
    with pytest.raises(errors.NotFound):
        await quotas.set_project_capacity(uuid.uuid4(), VM, 1)
