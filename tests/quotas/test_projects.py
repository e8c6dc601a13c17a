"""Projects and memberships, service level: every state table enumerated, quota that
follows from approval and membership, and refusals that write nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from nefos.core import errors
from nefos.core.db import Database, utcnow
from nefos.identity.models import Project
from nefos.identity.service import Identity
from nefos.quotas import project_rules as rules
from nefos.quotas.models import (
    Commission,
    Holding,
    ProjectApplication,
    ProjectLog,
    ProjectMembership,
    ProjectResource,
    QuotaSerial,
)
from nefos.quotas.project_rules import Actor
from nefos.quotas.projects import PENDING_APP, Projects
from nefos.quotas.service import Quotas, charge, project_holder, user_holder

VM = "cyclades.vm"
OPERATOR = None  # the command line's actor: every right, no user
TABLES = (
    Project,
    ProjectApplication,
    ProjectMembership,
    ProjectResource,
    ProjectLog,
    Holding,
    Commission,
    QuotaSerial,
)


@pytest.fixture
def projects(engines) -> Projects:
    return engines.projects


@pytest.fixture
def quotas(engines) -> Quotas:
    return engines.quotas


def future(days: int = 30) -> dt.datetime:
    return utcnow() + dt.timedelta(days=days)


def fields(**overrides: Any) -> dict[str, Any]:
    return {"name": f"p-{uuid.uuid4().hex[:10]}", "end_date": future(), **overrides}


async def new_user(identity: Identity, name: str = "u", admin: bool = False) -> Actor:
    user, _ = await identity.create_user(f"{name}-{uuid.uuid4().hex[:8]}@example.org", admin=admin)
    return Actor(user.id, admin)


async def email_of(identity: Identity, actor: Actor) -> str:
    return (await identity.get_user(actor.user_id)).email


async def snapshot(db: Database) -> dict[str, list[tuple]]:
    """Every row of every table projects touch: refusals must leave all of it alone."""
    found = {}
    async with db.session() as s:
        for table in TABLES:
            columns = list(table.__table__.columns)
            rows = (await s.execute(select(*columns))).all()
            found[table.__tablename__] = sorted(tuple(map(str, row)) for row in rows)
    return found


async def holding(quotas: Quotas, holder: str, resource: str, source: str = "") -> Holding | None:
    for h in await quotas.holdings([holder]):
        if h.resource == resource and h.source == source:
            return h
    return None


async def pending_apps(quotas: Quotas, user: Actor) -> tuple[int, int]:
    h = await holding(quotas, user_holder(user.user_id), PENDING_APP, project_holder(user.user_id))
    assert h is not None
    return h.usage_min, h.usage_max


async def member_limit(quotas: Quotas, user: Actor, project_id: uuid.UUID, resource: str = VM):
    h = await holding(quotas, user_holder(user.user_id), resource, project_holder(project_id))
    return None if h is None else h.limit


async def project_limit(quotas: Quotas, project_id: uuid.UUID, resource: str = VM) -> int | None:
    h = await holding(quotas, project_holder(project_id), resource)
    return None if h is None else h.limit


async def state_of(db: Database, model: type, key: Any) -> str:
    async with db.session() as s:
        return (await s.get(model, key)).state


async def active_project(projects: Projects, owner: Actor, **overrides: Any) -> uuid.UUID:
    project_id, app_id = await projects.submit(owner, fields(**overrides))
    await projects.application_action(OPERATOR, project_id, "approve", app_id)
    return project_id


# -- the tables, as the spec gives them ---------------------------------------------------


def test_state_tables_are_synnefos():
    """The enumerations below follow the tables; this pins the tables themselves to
    spec §3.4 (and Astakos where it is silent), so changing one changes a test too."""
    applications = {
        "approve": {"pending"},
        "deny": {"pending"},
        "cancel": {"pending"},
        "dismiss": {"denied"},
    }
    assert applications == rules.APPLICATION_ACTIONS
    projects = {
        "suspend": {"active"},
        "unsuspend": {"suspended"},
        "terminate": {"active", "suspended"},
        "reinstate": {"terminated"},
    }
    assert projects == rules.PROJECT_ACTIONS
    edges = {(a, s, t) for a, table in rules.MEMBERSHIP_ACTIONS.items() for s, t in table.items()}
    policy = rules.BY_POLICY
    assert edges == {
        *{("join", s, policy) for s in (rules.NEW, "rejected", "cancelled", "removed")},
        *{("enroll", s, "accepted") for s in (rules.NEW, "requested", "rejected", "cancelled")},
        ("enroll", "removed", "accepted"),
        ("leave", "accepted", policy),
        ("cancel", "requested", "cancelled"),
        ("accept", "requested", "accepted"),
        ("accept", "leave_requested", "removed"),
        ("reject", "requested", "rejected"),
        ("reject", "leave_requested", "accepted"),
        *{("remove", s, "removed") for s in ("accepted", "leave_requested", "suspended")},
    }


# -- applications and pending_app --------------------------------------------------------


async def test_application_creates_a_pending_project_and_charges_pending_app(
    identity: Identity, projects: Projects, quotas: Quotas, db: Database
):
    alice = await new_user(identity, "alice")
    resources = {VM: {"project_capacity": 8, "member_capacity": 5}}
    project_id, app_id = await projects.submit(alice, fields(name="alpha", resources=resources))
    async with db.session() as s:
        project = await s.get(Project, project_id)
        app = await s.get(ProjectApplication, app_id)
        serials = list(await s.scalars(select(QuotaSerial)))
    assert (project.state, project.name, project.owner_id) == (
        "uninitialized",
        "alpha",
        alice.user_id,
    )
    assert (project.join_policy, project.leave_policy, project.private) == (
        "moderated",
        "auto",
        False,
    )
    assert project.last_application_id == app_id
    assert (app.state, app.applicant_id, app.resources[VM]) == (
        "pending",
        alice.user_id,
        resources[VM],
    )
    assert await pending_apps(quotas, alice) == (1, 1)  # accepted after the commit
    assert [(q.accept, q.pending) for q in serials] == [(True, False)]
    assert await project_limit(quotas, project_id) is None  # no quota before approval
    view = await projects.get_project(alice, project_id)
    described = rules.describe_project(view)
    assert described["resources"][VM] == resources[VM]
    assert described["last_application"]["state"] == "pending"
    assert PENDING_APP not in described["resources"]


async def test_approval_gives_quota_that_commissions_enforce(
    identity: Identity, projects: Projects, quotas: Quotas
):
    alice, bob, carol = [await new_user(identity, n) for n in ("alice", "bob", "carol")]
    resources = {VM: {"project_capacity": 8, "member_capacity": 5}}
    project_id, app_id = await projects.submit(
        alice, fields(resources=resources, join_policy="auto")
    )
    await projects.application_action(OPERATOR, project_id, "approve", app_id, "fine")
    assert await pending_apps(quotas, alice) == (0, 0)
    assert await project_limit(quotas, project_id) == 8
    assert await project_limit(quotas, project_id, "cyclades.disk") == 0  # filled, granted none
    for member in (bob, carol):
        membership = await projects.join(member, project_id)
        assert membership.state == "accepted"
        assert await member_limit(quotas, member, project_id) == 5
    await quotas.issue("svc", charge(bob.user_id, project_id, VM, 5), auto_accept=True)
    with pytest.raises(errors.OverQuota):  # bob's own 5
        await quotas.issue("svc", charge(bob.user_id, project_id, VM, 1))
    await quotas.issue("svc", charge(carol.user_id, project_id, VM, 3), auto_accept=True)
    with pytest.raises(errors.OverQuota) as caught:  # the project's 8 together
        await quotas.issue("svc", charge(carol.user_id, project_id, VM, 1))
    assert caught.value.data["provision"]["holder"] == project_holder(project_id)
    with pytest.raises(errors.NotFound):  # alice owns it but is no member
        await quotas.issue("svc", charge(alice.user_id, project_id, VM, 1))


async def test_deny_cancel_dismiss_release_pending_app(
    identity: Identity, projects: Projects, quotas: Quotas, db: Database
):
    alice = await new_user(identity, "alice")
    denied, denied_app = await projects.submit(alice, fields(name="first"))
    cancelled, cancelled_app = await projects.submit(alice, fields(name="second"))
    assert await pending_apps(quotas, alice) == (2, 2)
    await projects.application_action(OPERATOR, denied, "deny", denied_app, "no")
    assert await pending_apps(quotas, alice) == (1, 1)
    await projects.application_action(alice, cancelled, "cancel", cancelled_app)
    assert await pending_apps(quotas, alice) == (0, 0)
    assert await state_of(db, ProjectApplication, cancelled_app) == "cancelled"
    assert await state_of(db, Project, cancelled) == "deleted"
    # A denied project keeps no hold on its name, and is gone once dismissed.
    assert (await projects.get_project(alice, denied)).name == "first"
    await projects.submit(alice, fields(name="first"))
    await projects.application_action(alice, denied, "dismiss", denied_app)
    assert await state_of(db, ProjectApplication, denied_app) == "dismissed"
    assert await state_of(db, Project, denied) == "deleted"
    assert await pending_apps(quotas, alice) == (1, 1)


async def test_pending_app_limit_refuses_and_writes_nothing(
    identity: Identity, projects: Projects, quotas: Quotas, db: Database
):
    alice = await new_user(identity, "alice")
    admin = await new_user(identity, "admin", admin=True)
    for _ in range(2):  # the base quota of astakos.pending_app
        await projects.submit(alice, fields())
    before = await snapshot(db)
    with pytest.raises(errors.OverQuota):
        await projects.submit(alice, fields())
    assert await snapshot(db) == before
    # Admins are not held to it (Synnefo forces their charge).
    for _ in range(3):
        await projects.submit(admin, fields())
    assert await pending_apps(quotas, admin) == (3, 3)


async def test_modification_replaces_the_pending_one_and_applies(
    identity: Identity, projects: Projects, quotas: Quotas, db: Database
):
    alice, bob = await new_user(identity, "alice"), await new_user(identity, "bob")
    admin = await new_user(identity, "admin", admin=True)
    resources = {VM: {"project_capacity": 8, "member_capacity": 5}}
    project_id = await active_project(projects, alice, resources=resources, name="before")
    await projects.enroll(alice, project_id, await email_of(identity, bob))
    _, first = await projects.submit(alice, {"description": "one"}, project_id)
    _, second = await projects.submit(alice, {"name": "after"}, project_id)
    assert await state_of(db, ProjectApplication, first) == "replaced"
    assert await pending_apps(quotas, alice) == (1, 1)  # replacing one's own costs nothing
    _, third = await projects.submit(
        admin, {"resources": {VM: {"project_capacity": 4, "member_capacity": 2}}}, project_id
    )
    assert await pending_apps(quotas, alice) == (0, 0)  # released with her replaced one
    assert await pending_apps(quotas, admin) == (1, 1)
    async with db.session() as s:
        app = await s.get(ProjectApplication, third)
    assert (app.name, app.owner_id, app.description) == ("before", alice.user_id, "")
    await projects.application_action(OPERATOR, project_id, "approve", third)
    view = await projects.get_project(alice, project_id)
    assert view.resources[VM] == {"project_capacity": 4, "member_capacity": 2}
    assert view.project.state == "active" and view.name == "before"
    assert await project_limit(quotas, project_id) == 4
    assert await member_limit(quotas, bob, project_id) == 2
    assert await state_of(db, ProjectApplication, second) == "replaced"


# -- the application table ---------------------------------------------------------------


async def app_in_state(projects: Projects, owner: Actor, state: str) -> tuple[uuid.UUID, int]:
    project_id, app_id = await projects.submit(owner, fields())
    if state == "pending":
        return project_id, app_id
    if state in ("approved", "replaced"):
        await projects.application_action(OPERATOR, project_id, "approve", app_id)
        if state == "approved":
            return project_id, app_id
        _, modification = await projects.submit(owner, {"description": "x"}, project_id)
        await projects.submit(owner, {"description": "y"}, project_id)
        return project_id, modification
    steps = {"denied": ["deny"], "dismissed": ["deny", "dismiss"], "cancelled": ["cancel"]}
    for action in steps[state]:
        await projects.application_action(OPERATOR, project_id, action, app_id)
    return project_id, app_id


async def test_application_state_machine(identity: Identity, projects: Projects, db: Database):
    owner = await new_user(identity, "owner", admin=True)  # no pending_app limit
    states = ("pending", "approved", "replaced", "denied", "dismissed", "cancelled")
    for state in states:
        project_id, app_id = await app_in_state(projects, owner, state)
        assert await state_of(db, ProjectApplication, app_id) == state
        before = await snapshot(db)
        for action, allowed in rules.APPLICATION_ACTIONS.items():
            if state not in allowed:
                with pytest.raises(errors.Conflict):
                    await projects.application_action(OPERATOR, project_id, action, app_id)
        assert await snapshot(db) == before, state
    for action, allowed in rules.APPLICATION_ACTIONS.items():
        for state in allowed:
            project_id, app_id = await app_in_state(projects, owner, state)
            await projects.application_action(OPERATOR, project_id, action, app_id)
            target = rules.APPLICATION_TARGET[action]
            assert await state_of(db, ProjectApplication, app_id) == target


async def test_only_the_latest_application_is_decided(identity: Identity, projects: Projects):
    alice = await new_user(identity, "alice")
    project_id = await active_project(projects, alice)
    _, denied = await projects.submit(alice, {"description": "x"}, project_id)
    await projects.application_action(OPERATOR, project_id, "deny", denied)
    await projects.submit(alice, {"description": "y"}, project_id)
    with pytest.raises(errors.Conflict):  # a newer application exists
        await projects.application_action(alice, project_id, "dismiss", denied)
    other = await active_project(projects, alice)
    with pytest.raises(errors.NotFound):  # not this project's
        await projects.application_action(OPERATOR, other, "deny", denied)


# -- the project table -------------------------------------------------------------------


async def project_in_state(projects: Projects, owner: Actor, state: str) -> uuid.UUID:
    project_id, app_id = await projects.submit(owner, fields(join_policy="auto"))
    if state == "deleted":
        await projects.application_action(OPERATOR, project_id, "cancel", app_id)
    elif state != "uninitialized":
        await projects.application_action(OPERATOR, project_id, "approve", app_id)
        if state in ("suspended", "terminated"):
            action = {"suspended": "suspend", "terminated": "terminate"}[state]
            await projects.project_action(OPERATOR, project_id, action)
    return project_id


async def test_project_state_machine(identity: Identity, projects: Projects, db: Database):
    owner = await new_user(identity, "owner", admin=True)
    for state in rules.PROJECT_STATES:
        project_id = await project_in_state(projects, owner, state)
        assert await state_of(db, Project, project_id) == state
        before = await snapshot(db)
        for action, allowed in rules.PROJECT_ACTIONS.items():
            if state not in allowed:
                with pytest.raises(errors.Conflict):
                    await projects.project_action(OPERATOR, project_id, action)
        assert await snapshot(db) == before, state
    for action, allowed in rules.PROJECT_ACTIONS.items():
        for state in allowed:
            project_id = await project_in_state(projects, owner, state)
            await projects.project_action(OPERATOR, project_id, action)
            assert await state_of(db, Project, project_id) == rules.PROJECT_TARGET[action]


async def test_suspension_zeroes_limits_keeps_usage_and_restores(
    identity: Identity, projects: Projects, quotas: Quotas
):
    alice, bob = await new_user(identity, "alice"), await new_user(identity, "bob")
    resources = {VM: {"project_capacity": 8, "member_capacity": 5}}
    name = f"keep-{uuid.uuid4().hex[:6]}"
    project_id = await active_project(
        projects, alice, name=name, resources=resources, join_policy="auto"
    )
    await projects.join(bob, project_id)
    await quotas.issue("svc", charge(bob.user_id, project_id, VM, 2), auto_accept=True)
    for stop, resume in (("suspend", "unsuspend"), ("terminate", "reinstate")):
        await projects.project_action(OPERATOR, project_id, stop, "why")
        assert await project_limit(quotas, project_id) == 0
        assert await member_limit(quotas, bob, project_id) == 0
        h = await holding(quotas, user_holder(bob.user_id), VM, project_holder(project_id))
        assert (h.usage_min, h.usage_max) == (2, 2)
        with pytest.raises(errors.OverQuota):
            await quotas.issue("svc", charge(bob.user_id, project_id, VM, 1))
        await quotas.issue("svc", charge(bob.user_id, project_id, VM, -1), auto_accept=True)
        view = await projects.get_project(alice, project_id)
        assert view.project.deactivation_date is not None and view.name == name
        assert "deactivation_date" in rules.describe_project(view)
        await projects.project_action(OPERATOR, project_id, resume)
        assert await project_limit(quotas, project_id) == 8
        assert await member_limit(quotas, bob, project_id) == 5
        view = await projects.get_project(alice, project_id)
        assert view.project.deactivation_date is None and view.project.name == name
        await quotas.issue("svc", charge(bob.user_id, project_id, VM, 1), auto_accept=True)


async def test_names_are_unique_among_live_projects(
    identity: Identity, projects: Projects, db: Database
):
    alice, bob = await new_user(identity, "alice"), await new_user(identity, "bob")
    project_id = await active_project(projects, alice, name="shared")
    before = await snapshot(db)
    with pytest.raises(errors.Conflict):
        await projects.submit(bob, fields(name="shared"))
    assert await snapshot(db) == before
    other = await active_project(projects, bob, name="other")
    with pytest.raises(errors.Conflict):
        await projects.submit(bob, {"name": "shared"}, other)
    await projects.project_action(OPERATOR, project_id, "terminate")
    assert (await projects.get_project(OPERATOR, project_id)).name == "shared"
    reused = await active_project(projects, bob, name="shared")
    with pytest.raises(errors.Conflict):  # its name went to another
        await projects.project_action(OPERATOR, project_id, "reinstate")
    assert await state_of(db, Project, project_id) == "terminated"
    assert [v.project.id for v in await projects.list_projects(OPERATOR, name="shared")] == [
        project_id,
        reused,
    ]


# -- the membership table ----------------------------------------------------------------


def moderated_target(action: str, state: str) -> str:
    """Where an action leads in a project whose join and leave policies are moderated."""
    target = rules.MEMBERSHIP_ACTIONS[action][state]
    if target == rules.BY_POLICY:
        return {"join": "requested", "leave": "leave_requested"}[action]
    return target


def route(start: str, goal: str) -> list[str]:
    """The shortest series of actions between two membership states, by the table."""
    paths: dict[str, list[str]] = {start: []}
    queue = [start]
    for state in queue:
        for action, table in rules.MEMBERSHIP_ACTIONS.items():
            if state in table and moderated_target(action, state) not in paths:
                paths[moderated_target(action, state)] = [*paths[state], action]
                queue.append(moderated_target(action, state))
    return paths[goal]


class Walker:
    """One user's membership of one project, moved from state to state by the table."""

    def __init__(self, projects: Projects, identity: Identity, db: Database, project_id):
        self.projects, self.identity, self.db, self.project_id = projects, identity, db, project_id
        self.user: Actor | None = None

    async def start(self) -> None:
        self.user = await new_user(self.identity, "m")

    async def state(self) -> str:
        async with self.db.session() as s:
            found = await s.scalar(
                select(ProjectMembership.state).where(
                    ProjectMembership.user_id == self.user.user_id,
                    ProjectMembership.project_id == self.project_id,
                )
            )
        return found or rules.NEW

    async def act(self, action: str) -> None:
        if action == "join":
            await self.projects.join(self.user, self.project_id)
        elif action == "enroll":
            email = await email_of(self.identity, self.user)
            await self.projects.enroll(OPERATOR, self.project_id, email)
        else:
            async with self.db.session() as s:
                membership_id = await s.scalar(
                    select(ProjectMembership.id).where(
                        ProjectMembership.user_id == self.user.user_id
                    )
                )
            await self.projects.membership_action(OPERATOR, membership_id, action)

    async def go(self, goal: str) -> None:
        if goal == rules.NEW:
            await self.start()
        elif goal == "suspended":  # what suspending an account does; no project action
            await self.go("accepted")
            async with self.db.transaction() as s:
                await s.execute(
                    update(ProjectMembership)
                    .values(state="suspended")
                    .where(ProjectMembership.user_id == self.user.user_id)
                )
        else:
            for action in route(await self.state(), goal):
                await self.act(action)
        assert await self.state() == goal


async def test_membership_state_machine(identity: Identity, projects: Projects, db: Database):
    owner = await new_user(identity, "owner")
    project_id = await active_project(projects, owner, leave_policy="moderated")
    walker = Walker(projects, identity, db, project_id)
    for state in (rules.NEW, *rules.MEMBERSHIP_STATES):
        await walker.go(state)
        before = await snapshot(db)
        for action, table in rules.MEMBERSHIP_ACTIONS.items():
            if state in table or (state == rules.NEW and action not in ("join", "enroll")):
                continue  # allowed; or no membership to name
            with pytest.raises(errors.Conflict):
                await walker.act(action)
        assert await snapshot(db) == before, state
    for action, table in rules.MEMBERSHIP_ACTIONS.items():
        for state in table:
            await walker.go(state)
            await walker.act(action)
            assert await walker.state() == moderated_target(action, state), (action, state)


async def test_join_and_leave_policies(
    identity: Identity, projects: Projects, quotas: Quotas, db: Database
):
    owner, bob = await new_user(identity, "owner"), await new_user(identity, "bob")
    resources = {VM: {"project_capacity": 8, "member_capacity": 5}}
    auto = await active_project(projects, owner, join_policy="auto", resources=resources)
    membership = await projects.join(bob, auto)
    assert membership.state == "accepted" and membership.accepted is not None
    assert await member_limit(quotas, bob, auto) == 5
    await projects.membership_action(bob, membership.id, "leave", "bye")  # leave_policy auto
    assert await state_of(db, ProjectMembership, membership.id) == "removed"
    assert await member_limit(quotas, bob, auto) == 0
    moderated = await active_project(
        projects, owner, join_policy="moderated", leave_policy="moderated", resources=resources
    )
    membership = await projects.join(bob, moderated)
    assert membership.state == "requested" and await member_limit(quotas, bob, moderated) is None
    await projects.membership_action(owner, membership.id, "accept")
    assert await member_limit(quotas, bob, moderated) == 5
    await projects.membership_action(bob, membership.id, "leave")
    assert await state_of(db, ProjectMembership, membership.id) == "leave_requested"
    assert await member_limit(quotas, bob, moderated) == 5  # still a member until accepted
    await projects.membership_action(owner, membership.id, "reject")
    assert await state_of(db, ProjectMembership, membership.id) == "accepted"
    closed = await active_project(projects, owner, join_policy="closed", leave_policy="closed")
    before = await snapshot(db)
    with pytest.raises(errors.Conflict):
        await projects.join(bob, closed)
    with pytest.raises(errors.Conflict):  # Synnefo: a closed project takes nobody new
        await projects.enroll(owner, closed, await email_of(identity, bob))
    assert await snapshot(db) == before
    leave_closed = await active_project(projects, owner, join_policy="auto", leave_policy="closed")
    membership = await projects.join(bob, leave_closed)
    before = await snapshot(db)
    with pytest.raises(errors.Conflict):
        await projects.membership_action(bob, membership.id, "leave")
    assert await snapshot(db) == before
    view = await projects.membership(bob, membership.id)
    assert view.allowed_actions == []
    assert (await projects.membership(owner, membership.id)).allowed_actions == ["remove"]


async def test_max_members(identity: Identity, projects: Projects, db: Database):
    owner = await new_user(identity, "owner")
    a, b, c = [await new_user(identity, n) for n in "abc"]
    auto = await active_project(projects, owner, join_policy="auto", max_members=1)
    await projects.join(a, auto)
    before = await snapshot(db)
    with pytest.raises(errors.Conflict):
        await projects.join(b, auto)
    with pytest.raises(errors.Conflict):
        await projects.enroll(owner, auto, await email_of(identity, b))
    assert await snapshot(db) == before
    moderated = await active_project(projects, owner, max_members=1)
    first = await projects.join(b, moderated)
    second = await projects.join(c, moderated)  # a request is not a member yet
    await projects.membership_action(owner, first.id, "accept")
    assert (await projects.membership(owner, second.id)).allowed_actions == ["reject"]
    with pytest.raises(errors.Conflict):
        await projects.membership_action(owner, second.id, "accept")
    await projects.membership_action(owner, first.id, "remove")
    await projects.membership_action(owner, second.id, "accept")
    assert await state_of(db, ProjectMembership, second.id) == "accepted"


# -- who may do what ---------------------------------------------------------------------


async def test_permissions(identity: Identity, projects: Projects, db: Database):
    alice, bob = await new_user(identity, "alice"), await new_user(identity, "bob")
    admin = await new_user(identity, "admin", admin=True)
    project_id, app_id = await projects.submit(alice, fields(join_policy="auto"))
    before = await snapshot(db)
    refused = [
        lambda: projects.application_action(alice, project_id, "approve", app_id),
        lambda: projects.application_action(alice, project_id, "deny", app_id),
        lambda: projects.submit(bob, fields(owner=alice.user_id)),
    ]
    for attempt in refused:
        with pytest.raises(errors.PermissionDenied):
            await attempt()
    with pytest.raises(errors.NotFound):  # a pending project is its owner's to know of
        await projects.application_action(bob, project_id, "cancel", app_id)
    assert await snapshot(db) == before
    await projects.application_action(admin, project_id, "approve", app_id)
    membership = await projects.join(bob, project_id)
    admin_email = await email_of(identity, admin)
    before = await snapshot(db)
    refused = [
        lambda: projects.project_action(alice, project_id, "suspend"),
        lambda: projects.submit(bob, {"description": "mine now"}, project_id),
        lambda: projects.enroll(bob, project_id, admin_email),
        lambda: projects.membership_action(bob, membership.id, "remove"),
    ]
    for attempt in refused:
        with pytest.raises(errors.PermissionDenied):
            await attempt()
    with pytest.raises(errors.NotFound):  # not hers to know of
        await projects.membership_action(Actor(uuid.uuid4()), membership.id, "leave")
    assert await snapshot(db) == before
    other, _ = await projects.submit(admin, fields(owner=alice.user_id))
    assert (await projects.get_project(alice, other)).project.owner_id == alice.user_id


async def test_system_projects_refuse_everything(
    identity: Identity, projects: Projects, db: Database
):
    alice, bob = await new_user(identity, "alice"), await new_user(identity, "bob")
    system = alice.user_id
    before = await snapshot(db)
    for action in rules.PROJECT_ACTIONS:
        with pytest.raises(errors.Conflict):
            await projects.project_action(OPERATOR, system, action)
    with pytest.raises(errors.NotFound):  # hidden from bob: refused as if missing
        await projects.join(bob, system)
    with pytest.raises(errors.Conflict):
        await projects.enroll(OPERATOR, system, await email_of(identity, bob))
    with pytest.raises(errors.Conflict):
        await projects.submit(alice, {"description": "more"}, system)
    assert await snapshot(db) == before
    view = await projects.get_project(alice, system)
    described = rules.describe_project(view)
    assert described["system_project"] is True and "last_application" not in described
    assert described["resources"][VM] == {"project_capacity": 5, "member_capacity": 5}
    with pytest.raises(errors.NotFound):  # private to its user
        await projects.get_project(bob, system)


# -- visibility --------------------------------------------------------------------------


async def test_visibility_of_projects(identity: Identity, projects: Projects):
    owner, member, stranger = [await new_user(identity, n) for n in ("o", "m", "s")]
    admin = await new_user(identity, "admin", admin=True)
    public = await active_project(projects, owner, join_policy="auto")
    private = await active_project(projects, owner, join_policy="auto", private=True)
    pending, _ = await projects.submit(owner, fields())
    await projects.join(member, private)

    def ids(views):
        return {v.project.id for v in views}

    everything = {public, private, pending}
    assert ids(await projects.list_projects(owner)) == everything | {owner.user_id}
    assert ids(await projects.list_projects(member)) == {public, private, member.user_id}
    assert ids(await projects.list_projects(stranger)) == {public, stranger.user_id}
    assert everything | {owner.user_id, stranger.user_id} <= ids(
        await projects.list_projects(admin)
    )
    assert ids(await projects.list_projects(member, mode="member")) == {private, member.user_id}
    assert ids(await projects.list_projects(owner, state="uninitialized")) == {pending}
    assert ids(await projects.list_projects(admin, owner=owner.user_id)) == everything | {
        owner.user_id
    }
    for hidden in (private, pending, owner.user_id):
        with pytest.raises(errors.NotFound):
            await projects.get_project(stranger, hidden)
    await projects.join(stranger, private)  # hidden, not closed: Synnefo joins by id
    seen = await projects.get_project(stranger, private)
    assert seen.last_application is None  # applications are the owner's and admins' business
    assert (await projects.get_project(owner, private)).last_application is not None
    for bad in ({"mode": "all"}, {"state": "sleeping"}, {"owner": "nobody"}):
        with pytest.raises(errors.InvalidInput):
            await projects.list_projects(owner, **bad)


async def test_memberships_listing_and_member_projects(identity: Identity, projects: Projects):
    owner, bob, carol = [await new_user(identity, n) for n in ("o", "b", "c")]
    auto = await active_project(projects, owner, join_policy="auto")
    moderated = await active_project(projects, owner)
    joined = await projects.join(bob, auto)
    asked = await projects.join(bob, moderated)
    await projects.join(carol, auto)
    assert await projects.member_projects(bob.user_id) == [auto]
    mine = await projects.memberships(bob)
    assert [v.membership.id for v in mine] == [joined.id, asked.id]
    assert [v.allowed_actions for v in mine] == [["leave"], ["cancel"]]
    assert len(await projects.memberships(owner)) == 3
    assert len(await projects.memberships(owner, project_id=moderated)) == 1
    assert [v.allowed_actions for v in await projects.memberships(owner, moderated)] == [
        ["accept", "reject"]
    ]
    with pytest.raises(errors.NotFound):
        await projects.membership(carol, joined.id)
    described = rules.describe_membership((await projects.memberships(bob))[0])
    assert set(described) == {
        "id",
        "user",
        "project",
        "state",
        "requested",
        "accepted",
        "removed",
        "allowed_actions",
    }
    assert described["accepted"].endswith("Z") and described["removed"] is None
    await projects.project_action(OPERATOR, auto, "suspend")
    assert await projects.member_projects(bob.user_id) == [auto]
    await projects.project_action(OPERATOR, auto, "terminate")
    assert await projects.member_projects(bob.user_id) == []


async def test_the_log_keeps_actor_and_reason(identity: Identity, projects: Projects, db: Database):
    owner, bob = await new_user(identity, "o"), await new_user(identity, "b")
    project_id, app_id = await projects.submit(owner, fields())
    await projects.application_action(OPERATOR, project_id, "approve", app_id, "looks good")
    membership = await projects.join(bob, project_id, "let me in")
    await projects.membership_action(owner, membership.id, "reject", "no room")
    async with db.session() as s:
        rows = list(
            await s.scalars(
                select(ProjectLog)
                .where(ProjectLog.project_id == project_id)
                .order_by(ProjectLog.id)
            )
        )
    assert [(r.action, r.from_state, r.to_state, r.actor_id, r.reason) for r in rows] == [
        (f"submit:{app_id}", "", "pending", owner.user_id, ""),
        (f"approve:{app_id}", "pending", "approved", None, "looks good"),
        ("approve", "uninitialized", "active", None, "looks good"),
        ("join", "", "requested", bob.user_id, "let me in"),
        ("reject", "requested", "rejected", owner.user_id, "no room"),
    ]
    assert rows[-1].membership_id == membership.id


# -- bad input ---------------------------------------------------------------------------


BAD_FIELDS = [
    {"name": None},  # missing
    {"name": ""},
    {"name": "a:b"},
    {"name": "x" * 256},
    {"name": 5},
    {"end_date": None},
    {"end_date": utcnow() - dt.timedelta(days=1)},
    {"end_date": "tomorrow"},
    {"start_date": future(60)},  # after the end
    {"join_policy": "open"},
    {"leave_policy": None, "join_policy": 1},
    {"max_members": -1},
    {"max_members": True},
    {"max_members": "10"},
    {"private": "yes"},
    {"homepage": "h" * 256},
    {"owner": "not-a-uuid"},
    {"owner": str(uuid.uuid4())},  # nobody
    {"colour": "blue"},
    {"resources": {"cyclades.nope": {"project_capacity": 1, "member_capacity": 1}}},
    {"resources": {PENDING_APP: {"project_capacity": 1, "member_capacity": 1}}},
    {"resources": {VM: {"project_capacity": -1, "member_capacity": 0}}},
    {"resources": {VM: {"project_capacity": 1, "member_capacity": 2}}},
    {"resources": {VM: {"project_capacity": 1}}},
    {"resources": {VM: {"project_capacity": "1", "member_capacity": 1}}},
    {"resources": [VM]},
]


async def test_bad_fields_are_refused_and_write_nothing(
    identity: Identity, projects: Projects, db: Database
):
    admin = await new_user(identity, "admin", admin=True)
    project_id = await active_project(projects, admin)
    before = await snapshot(db)
    for bad in BAD_FIELDS:
        given = {k: v for k, v in fields(**bad).items() if v is not None}
        with pytest.raises(errors.InvalidInput):
            await projects.submit(admin, given)
        if "name" not in bad and "end_date" not in bad:
            with pytest.raises(errors.InvalidInput):
                await projects.submit(admin, bad, project_id)
    for action in ("frobnicate", "join"):
        with pytest.raises(errors.InvalidInput):
            await projects.act(admin, project_id, action)
    with pytest.raises(errors.InvalidInput):  # approve needs its application
        await projects.act(admin, project_id, "approve")
    with pytest.raises(errors.InvalidInput):
        await projects.act(admin, project_id, "suspend", reason="r" * 2000)
    assert await snapshot(db) == before
    with pytest.raises(errors.NotFound):
        await projects.act(admin, uuid.uuid4(), "suspend")
    with pytest.raises(errors.NotFound):
        await projects.act(admin, "not-a-uuid", "suspend")
