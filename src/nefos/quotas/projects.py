"""Projects and memberships (Astakos): applications, their approval, who is a member,
and the quota that follows from all three. The rules live in
:mod:`nefos.quotas.project_rules`; this module loads, locks, checks, writes.

A project is born from an application and changed only by applications: each is a full
snapshot of what the project should become, pending until an admin approves it (it is
then copied onto the project) or it is denied, cancelled or replaced. A pending
application costs its applicant one ``astakos.pending_app`` in their system project, so
nobody floods the admins; the charge is released when the application stops pending.
Commissions go through :func:`~nefos.quotas.serials.settled`: issued first, recorded in
the transaction that makes the change, accepted after it commits.

Quota follows state, never the other way round: after every change :meth:`_sync` sets
the limits a project's state, resources and memberships imply (the project's holding
gets ``project_capacity``, each accepted member ``member_capacity`` from the project;
in a project that is not active, all are 0). Usage is never touched: a removed member
or a suspended project keeps what it holds and can only release it.

Names are unique among live projects, but ``projects.name`` is unique outright, so a
terminated, deleted or refused project holds a placeholder (``released:<id>``) and its
real name stays in its applications.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.identity.models import Project, User
from nefos.identity.service import Identity
from nefos.quotas import project_rules as rules
from nefos.quotas.models import (
    NO_SOURCE,
    Holding,
    ProjectApplication,
    ProjectLog,
    ProjectMembership,
    ProjectResource,
)
from nefos.quotas.project_rules import Actor, MembershipView, ProjectView
from nefos.quotas.serials import settled
from nefos.quotas.service import Charge, Quotas, charge, project_holder, user_holder

CLIENTKEY = "astakos"
PENDING_APP = "astakos.pending_app"

After = Callable[[AsyncSession, Actor | None, Project, ProjectApplication, str], Awaitable[None]]


def _pending_app(user_id: uuid.UUID, quantity: int) -> list[Charge]:
    """A system project pays for its user's pending applications."""
    return charge(user_id, user_id, PENDING_APP, quantity)


class Projects:
    def __init__(self, db: Database, settings: Settings, identity: Identity, quotas: Quotas):
        self.db = db
        self.settings = settings
        self.identity = identity
        self.quotas = quotas
        self._after: dict[str, After] = {
            "approve": self._after_approve,
            "deny": self._after_deny,
            "cancel": self._after_withdrawal,
            "dismiss": self._after_withdrawal,
        }

    # -- applications --------------------------------------------------------------------

    async def submit(
        self, actor: Actor, fields: Mapping[str, Any], project_id: uuid.UUID | str | None = None
    ) -> tuple[uuid.UUID, int]:
        """Apply for a new project or, with ``project_id``, for a change to one; returns
        the project's id and the application's.

        A modification gives only what changes; a still pending earlier application of
        the project is replaced, and its applicant's charge released.
        """
        given = rules.check_fields(fields, self.settings.limits.name_length)
        owner = given.get("owner", actor.user_id)
        if owner != actor.user_id and not actor.is_admin:
            raise errors.PermissionDenied("Only admins may apply on behalf of another owner")
        async with self.db.session() as s:
            await self._check_owner(s, owner)
            replaced: list[ProjectApplication] = []
            if project_id is None:
                snapshot = _new_snapshot(given, owner)
            else:
                project = await self._project(s, project_id, visible_to=actor)
                rules.check_modifiable(actor, project)
                snapshot = await self._modified_snapshot(s, project, given, owner)
                replaced = await self._pending_of(s, project.id)
            rules.check_dates(snapshot)
            await self._check_name_free(s, snapshot["name"], project_id)
        try:
            async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
                provisions = _submission_charges(actor.user_id, replaced)
                if provisions:
                    # Synnefo's admins are not held to the pending application limit.
                    await settlement.issue(provisions, name="submit", force=actor.is_admin)
                async with settlement.transaction() as s:
                    return await self._record_submission(s, actor, snapshot, project_id, replaced)
        except IntegrityError:
            raise errors.Conflict(f"A project named {snapshot['name']!r} exists") from None

    async def _check_owner(self, s: AsyncSession, owner: uuid.UUID) -> None:
        user = await s.get(User, owner)
        if user is None or not user.is_active:
            raise errors.InvalidInput(f"No active user {owner} to own the project")

    async def _modified_snapshot(
        self, s: AsyncSession, project: Project, given: dict[str, Any], owner: uuid.UUID
    ) -> dict[str, Any]:
        current: dict[str, Any] = {key: getattr(project, key) for key in rules.COPIED}
        snapshot = {**current, "comments": "", "start_date": None, **given}
        if "owner" not in given:  # an owner whose account is gone passes it to the applicant
            snapshot["owner"] = project.owner_id or owner
        rows = (await self._resource_rows(s, [project.id])).get(project.id, [])
        have = {r.resource: rules.capacity_of(r) for r in rows}
        snapshot["resources"] = rules.filled(have, given.get("resources", {}))
        return snapshot

    async def _check_name_free(
        self, s: AsyncSession, name: str, project_id: uuid.UUID | str | None
    ) -> None:
        query = select(Project.id).where(Project.name == name)
        if project_id is not None:
            query = query.where(Project.id != rules.parse_id(project_id))
        if await s.scalar(query.limit(1)) is not None:
            raise errors.Conflict(f"A project named {name!r} exists")

    async def _record_submission(
        self,
        s: AsyncSession,
        actor: Actor,
        snapshot: dict[str, Any],
        project_id: uuid.UUID | str | None,
        replaced: Sequence[ProjectApplication],
    ) -> tuple[uuid.UUID, int]:
        await self._check_name_free(s, snapshot["name"], project_id)
        if project_id is None:
            project = Project(id=uuid.uuid4(), state="uninitialized", is_system=False)
            rules.copy_onto(project, snapshot)
            s.add(project)
            await s.flush()
            await self._set_resources(s, project.id, snapshot["resources"])
        else:
            project = await self._project(s, project_id, lock=True, visible_to=actor)
            rules.check_modifiable(actor, project)
            now_pending = await self._pending_of(s, project.id)
            if {a.id for a in now_pending} != {a.id for a in replaced}:
                raise errors.Conflict("The project changed meanwhile; apply again")
            for old in now_pending:
                self._set_application_state(s, project, old, "replace", actor, "")
        app = ProjectApplication(
            project_id=project.id,
            applicant_id=actor.user_id,
            owner_id=snapshot["owner"],
            state="pending",
            comments=snapshot["comments"],
            start_date=snapshot["start_date"],
            resources=snapshot["resources"],
            **{key: snapshot[key] for key in rules.COPIED},
        )
        s.add(app)
        await s.flush()
        project.last_application_id = app.id
        self._log(s, project.id, actor, f"submit:{app.id}", "", "pending")
        return project.id, app.id

    async def act(
        self,
        actor: Actor | None,
        project_id: uuid.UUID | str,
        action: str,
        reason: str = "",
        app_id: int | None = None,
    ) -> None:
        """Synnefo's ``projects/<id>/action``: on the project, or on its application."""
        if action in rules.APPLICATION_ACTIONS:
            if app_id is None:
                raise errors.InvalidInput(f"{action} needs app_id")
            await self.application_action(actor, project_id, action, app_id, reason)
        elif action in rules.PROJECT_ACTIONS:
            await self.project_action(actor, project_id, action, reason)
        else:
            raise errors.InvalidInput(f"Unknown project action {action!r}")

    async def application_action(
        self,
        actor: Actor | None,
        project_id: uuid.UUID | str,
        action: str,
        app_id: int,
        reason: str = "",
    ) -> ProjectApplication:
        """Approve, deny, cancel or dismiss an application; the first three release the
        applicant's pending_app charge."""
        rules.check_reason(reason)
        if action not in rules.APPLICATION_ACTIONS:
            raise errors.InvalidInput(f"Unknown application action {action!r}")
        async with self.db.session() as s:
            project, app = await self._application(s, actor, project_id, app_id)
            await self._check_application_action(s, actor, project, app, action)
        try:
            async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
                if action in rules.RELEASES_PENDING_APP:
                    await settlement.issue(_pending_app(app.applicant_id, -1), name=action)
                async with settlement.transaction() as s:
                    project, app = await self._application(s, actor, project_id, app_id, lock=True)
                    await self._check_application_action(s, actor, project, app, action)
                    self._set_application_state(s, project, app, action, actor, reason)
                    await self._after[action](s, actor, project, app, reason)
        except IntegrityError:
            raise errors.Conflict(f"A project named {app.name!r} exists") from None
        return app

    async def _check_application_action(
        self,
        s: AsyncSession,
        actor: Actor | None,
        project: Project,
        app: ProjectApplication,
        action: str,
    ) -> None:
        rules.check_application_action(actor, project, app, action)
        if action == "approve":
            await self._check_name_free(s, app.name, project.id)

    def _set_application_state(
        self,
        s: AsyncSession,
        project: Project,
        app: ProjectApplication,
        action: str,
        actor: Actor | None,
        reason: str,
    ) -> None:
        state = rules.APPLICATION_TARGET[action]
        self._log(s, project.id, actor, f"{action}:{app.id}", app.state, state, reason)
        app.state = state
        app.response = reason
        app.response_date = utcnow()
        app.response_actor_id = rules.actor_id(actor)

    async def _after_approve(
        self,
        s: AsyncSession,
        actor: Actor | None,
        project: Project,
        app: ProjectApplication,
        reason: str,
    ) -> None:
        """The application becomes the project, and quota follows at once."""
        snapshot = {"owner": app.owner_id, **{key: getattr(app, key) for key in rules.COPIED}}
        rules.copy_onto(project, snapshot)
        await self._set_resources(s, project.id, app.resources)
        if project.state == "uninitialized":
            self._set_state(s, project, "active", actor, "approve", reason)
        await s.flush()
        await self._sync(s, project, await self._memberships_of(s, project.id))

    async def _after_deny(
        self,
        s: AsyncSession,
        actor: Actor | None,
        project: Project,
        app: ProjectApplication,
        reason: str,
    ) -> None:
        if project.state == "uninitialized":
            rules.release_name(project)  # a refused project must not keep its name from others

    async def _after_withdrawal(
        self,
        s: AsyncSession,
        actor: Actor | None,
        project: Project,
        app: ProjectApplication,
        reason: str,
    ) -> None:
        """A project that never came to be is gone once its application is withdrawn."""
        if project.state == "uninitialized":
            self._set_state(s, project, "deleted", actor, "delete", reason)

    async def pending_application(self, project_id: uuid.UUID | str) -> int:
        """The project's application awaiting a decision (operators rarely know its id)."""
        async with self.db.session() as s:
            project = await self._project(s, project_id)
            app_id = project.last_application_id
            app = await s.get(ProjectApplication, app_id) if app_id is not None else None
        if app is None or app.state != "pending":
            raise errors.Conflict(f"Project {project.id} has no pending application")
        return app.id

    # -- project actions -----------------------------------------------------------------

    async def project_action(
        self, actor: Actor | None, project_id: uuid.UUID | str, action: str, reason: str = ""
    ) -> Project:
        """Suspend, unsuspend, terminate or reinstate a project (admins only)."""
        rules.check_reason(reason)
        if action not in rules.PROJECT_ACTIONS:
            raise errors.InvalidInput(f"Unknown project action {action!r}")
        target = rules.PROJECT_TARGET[action]
        try:
            async with self.db.transaction() as s:
                project = await self._project(s, project_id, lock=True, visible_to=actor)
                rules.check_project_action(actor, project, action)
                if target in rules.NAMED:
                    name = await self._realname(s, project)
                    await self._check_name_free(s, name, project.id)
                    project.name = name
                self._set_state(s, project, target, actor, action, reason)
                await s.flush()
                await self._sync(s, project, await self._memberships_of(s, project.id))
        except IntegrityError:
            raise errors.Conflict("Another project took this project's name") from None
        return project

    def _set_state(
        self,
        s: AsyncSession,
        project: Project,
        state: str,
        actor: Actor | None,
        action: str,
        reason: str,
    ) -> None:
        self._log(s, project.id, actor, action, project.state, state, reason)
        project.state = state
        project.deactivation_date = utcnow() if state in rules.DEACTIVATED else None
        if state not in rules.NAMED:
            rules.release_name(project)

    # -- memberships ---------------------------------------------------------------------

    async def join(
        self, actor: Actor, project_id: uuid.UUID | str, reason: str = ""
    ) -> ProjectMembership:
        """Ask to join (moderated projects), or join at once (auto)."""
        return await self._change_membership(actor, project_id, actor.user_id, "join", reason)

    async def enroll(
        self, actor: Actor | None, project_id: uuid.UUID | str, user: str, reason: str = ""
    ) -> ProjectMembership:
        """Make a user (by e-mail or UUID) a member at once: owners and admins do."""
        async with self.db.session() as s:
            found = await self._user(s, user)
        return await self._change_membership(actor, project_id, found.id, "enroll", reason)

    async def membership_action(
        self, actor: Actor | None, membership_id: int, action: str, reason: str = ""
    ) -> ProjectMembership:
        """leave, cancel, accept, reject or remove (Synnefo's membership actions)."""
        if action not in rules.API_MEMBERSHIP_ACTIONS:
            raise errors.InvalidInput(f"Unknown membership action {action!r}")
        async with self.db.session() as s:
            found = await self._membership(s, actor, membership_id)
        return await self._change_membership(actor, found.project_id, found.user_id, action, reason)

    async def _change_membership(
        self,
        actor: Actor | None,
        project_id: uuid.UUID | str,
        user_id: uuid.UUID,
        action: str,
        reason: str,
    ) -> ProjectMembership:
        rules.check_reason(reason)
        async with self.db.transaction() as s:
            project = await self._project(s, project_id, lock=True)  # serialises max_members
            membership = await s.scalar(
                select(ProjectMembership)
                .where(
                    ProjectMembership.project_id == project.id,
                    ProjectMembership.user_id == user_id,
                )
                .with_for_update()
            )
            state = membership.state if membership is not None else rules.NEW
            members = await self._member_count(s, project.id)
            try:
                target = rules.membership_target(actor, project, user_id, state, action, members)
            except errors.NefosError:
                # Joining by id is Synnefo's way into a private project, but a caller
                # who may not see it learns nothing from a refusal.
                if action in ("join", "enroll") and not await self._sees(s, actor, project):
                    raise errors.NotFound(f"No project {project_id}") from None
                raise
            if membership is None:
                membership = ProjectMembership(project_id=project.id, user_id=user_id, state="")
                s.add(membership)
                await s.flush()
            self._log(s, project.id, actor, action, state, target, reason, membership.id)
            membership.state = target
            if target in rules.DATE_OF_STATE:
                setattr(membership, rules.DATE_OF_STATE[target], utcnow())
            await self._sync(s, project, [membership], with_project=False)
        return membership

    async def _member_count(self, s: AsyncSession, project_id: uuid.UUID) -> int:
        query = (
            select(func.count())
            .select_from(ProjectMembership)
            .where(
                ProjectMembership.project_id == project_id,
                ProjectMembership.state.in_(rules.MEMBER_STATES),
            )
        )
        return await s.scalar(query) or 0

    async def memberships(
        self, actor: Actor | None, project_id: uuid.UUID | str | None = None
    ) -> list[MembershipView]:
        """The memberships the caller may see: their own and those of projects they own."""
        query = select(ProjectMembership)
        if project_id is not None:
            wanted = rules.parse_id(project_id)
            if wanted is None:
                raise errors.InvalidInput(f"Invalid project id {project_id!r}")
            query = query.where(ProjectMembership.project_id == wanted)
        if actor is not None and not actor.is_admin:
            owned = select(Project.id).where(Project.owner_id == actor.user_id)
            query = query.where(
                or_(
                    ProjectMembership.user_id == actor.user_id,
                    ProjectMembership.project_id.in_(owned),
                )
            )
        async with self.db.session() as s:
            found = list(await s.scalars(query.order_by(ProjectMembership.id)))
            return await self._membership_views(s, actor, found)

    async def membership(self, actor: Actor | None, membership_id: int) -> MembershipView:
        async with self.db.session() as s:
            found = await self._membership(s, actor, membership_id)
            return (await self._membership_views(s, actor, [found]))[0]

    async def _membership(
        self, s: AsyncSession, actor: Actor | None, membership_id: int
    ) -> ProjectMembership:
        found = None
        if 0 < membership_id <= rules.MAX_ID:
            found = await s.get(ProjectMembership, membership_id)
        if found is not None and actor is not None and not actor.is_admin:
            project = await s.get(Project, found.project_id)
            owner = project.owner_id if project is not None else None
            if actor.user_id not in (found.user_id, owner):
                found = None  # others' memberships are not theirs to know of
        if found is None:
            raise errors.NotFound(f"No membership {membership_id}")
        return found

    async def _membership_views(
        self, s: AsyncSession, actor: Actor | None, found: list[ProjectMembership]
    ) -> list[MembershipView]:
        ids = {m.project_id for m in found}
        projects = {p.id: p for p in await s.scalars(select(Project).where(Project.id.in_(ids)))}
        query = (
            select(ProjectMembership.project_id, func.count())
            .where(
                ProjectMembership.project_id.in_(ids),
                ProjectMembership.state.in_(rules.MEMBER_STATES),
            )
            .group_by(ProjectMembership.project_id)
        )
        counts: dict[uuid.UUID, int] = {pid: n for pid, n in (await s.execute(query)).all()}
        return [
            MembershipView(
                m,
                rules.allowed_actions(
                    actor, projects[m.project_id], m, counts.get(m.project_id, 0)
                ),
            )
            for m in found
        ]

    async def member_projects(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Projects a token of this user may be scoped to by membership: accepted in an
        active or suspended one (there they may still release what they hold). The
        system project is the user's by identity, and not listed."""
        query = (
            select(Project.id)
            .join(ProjectMembership, ProjectMembership.project_id == Project.id)
            .where(
                ProjectMembership.user_id == user_id,
                ProjectMembership.state.in_(rules.QUOTA_STATES),
                Project.state.in_(("active", "suspended")),
            )
            .order_by(Project.created_at, Project.id)
        )
        async with self.db.session() as s:
            return list(await s.scalars(query))

    # -- reading projects ----------------------------------------------------------------

    async def list_projects(
        self,
        actor: Actor | None,
        state: str | None = None,
        owner: uuid.UUID | str | None = None,
        name: str | None = None,
        mode: str = "default",
    ) -> list[ProjectView]:
        """Admins see every project; others those they own or belong to, and the public
        active ones. ``mode="member"`` keeps only those the caller is a member of."""
        query = select(Project).where(self._visible(actor, mode))
        if state is not None:
            if state not in rules.PROJECT_STATES:
                raise errors.InvalidInput(f"Unknown project state {state!r}")
            query = query.where(Project.state == state)
        if owner is not None:
            owner_id = rules.parse_id(owner)
            if owner_id is None:
                raise errors.InvalidInput("owner must be a user's UUID")
            query = query.where(Project.owner_id == owner_id)
        if name is not None:
            named = select(ProjectApplication.project_id).where(ProjectApplication.name == name)
            query = query.where(or_(Project.name == name, Project.id.in_(named)))
        async with self.db.session() as s:
            found = list(await s.scalars(query.order_by(Project.created_at, Project.id)))
            views = await self._views(s, actor, found)
        return [v for v in views if name is None or v.name == name]

    def _visible(self, actor: Actor | None, mode: str) -> Any:
        if mode not in ("default", "member"):
            raise errors.InvalidInput(f"Unknown mode {mode!r}: default or member")
        if mode == "member":
            if actor is None:
                raise errors.InvalidInput("mode=member lists a user's projects")
            mine = select(ProjectMembership.project_id).where(
                ProjectMembership.user_id == actor.user_id,
                ProjectMembership.state.in_(rules.QUOTA_STATES),
            )
            return or_(Project.id.in_(mine), Project.id == actor.user_id)
        if rules.is_admin(actor):
            return true()
        assert actor is not None
        belongs = select(ProjectMembership.project_id).where(
            ProjectMembership.user_id == actor.user_id,
            ProjectMembership.state.in_(rules.MEMBER_STATES),
        )
        return or_(
            Project.owner_id == actor.user_id,
            Project.id.in_(belongs),
            and_(Project.state == "active", Project.private.is_(False)),
        )

    async def get_project(self, actor: Actor | None, project_id: uuid.UUID | str) -> ProjectView:
        """One project, if the caller may see it (a private one looks absent)."""
        wanted = rules.parse_id(project_id)
        async with self.db.session() as s:
            project = None
            if wanted is not None:
                visible = self._visible(actor, "default")
                project = await s.scalar(select(Project).where(Project.id == wanted, visible))
            if project is None:
                raise errors.NotFound(f"No project {project_id}")
            return (await self._views(s, actor, [project]))[0]

    async def _views(
        self, s: AsyncSession, actor: Actor | None, projects: list[Project]
    ) -> list[ProjectView]:
        rows = await self._resource_rows(s, [p.id for p in projects])
        app_ids = [p.last_application_id for p in projects if p.last_application_id is not None]
        query = select(ProjectApplication).where(ProjectApplication.id.in_(app_ids))
        apps = {a.id: a for a in await s.scalars(query)}
        names = await self._realnames(s, [p for p in projects if p.name.startswith(rules.RELEASED)])
        views = []
        for project in projects:
            app = apps.get(project.last_application_id or 0)
            if app is not None and not self._may_see_application(actor, project, app):
                app = None
            resources = {r.resource: rules.capacity_of(r) for r in rows.get(project.id, [])}
            name = names.get(project.id, project.name)
            views.append(ProjectView(project, name, rules.api_visible(resources), app))
        return views

    def _may_see_application(
        self, actor: Actor | None, project: Project, app: ProjectApplication
    ) -> bool:
        """Applications are between their applicant, the project's owner and admins."""
        if rules.is_admin(actor):
            return True
        return rules.actor_id(actor) in (project.owner_id, app.applicant_id)

    async def _resource_rows(
        self, s: AsyncSession, project_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, list[ProjectResource]]:
        found: dict[uuid.UUID, list[ProjectResource]] = {}
        query = (
            select(ProjectResource)
            .where(ProjectResource.project_id.in_(list(project_ids)))
            .order_by(ProjectResource.resource)
        )
        for row in await s.scalars(query):
            found.setdefault(row.project_id, []).append(row)
        return found

    async def _realnames(self, s: AsyncSession, projects: list[Project]) -> dict[uuid.UUID, str]:
        """Names of projects that gave theirs up: that of the last approved application,
        else of the last one."""
        if not projects:
            return {}
        query = (
            select(ProjectApplication.project_id, ProjectApplication.name, ProjectApplication.state)
            .where(ProjectApplication.project_id.in_([p.id for p in projects]))
            .order_by(ProjectApplication.id)
        )
        latest: dict[uuid.UUID, str] = {}
        approved: dict[uuid.UUID, str] = {}
        for project_id, name, state in await s.execute(query):
            latest[project_id] = name
            if state == "approved":
                approved[project_id] = name
        return {**latest, **approved}

    async def _realname(self, s: AsyncSession, project: Project) -> str:
        if not project.name.startswith(rules.RELEASED):
            return project.name
        return (await self._realnames(s, [project]))[project.id]

    # -- shared steps --------------------------------------------------------------------

    async def _project(
        self,
        s: AsyncSession,
        project_id: uuid.UUID | str,
        lock: bool = False,
        visible_to: Actor | None = None,
    ) -> Project:
        """The project, or NotFound; with ``visible_to``, NotFound too if that caller
        may not see it, so that a refusal never tells a hidden project from a missing
        one (None, the operator, sees every project)."""
        wanted = rules.parse_id(project_id)
        project = None
        if wanted is not None:
            query = select(Project).where(Project.id == wanted)
            project = await s.scalar(query.with_for_update() if lock else query)
        if project is None or not await self._sees(s, visible_to, project):
            raise errors.NotFound(f"No project {project_id}")
        return project

    async def _sees(self, s: AsyncSession, actor: Actor | None, project: Project) -> bool:
        """Whether the caller may know of the project: the listing's rule."""
        if rules.is_admin(actor):
            return True
        query = select(Project.id).where(Project.id == project.id, self._visible(actor, "default"))
        return await s.scalar(query) is not None

    async def _application(
        self,
        s: AsyncSession,
        actor: Actor | None,
        project_id: uuid.UUID | str,
        app_id: int,
        lock: bool = False,
    ) -> tuple[Project, ProjectApplication]:
        project = await self._project(s, project_id, lock=lock, visible_to=actor)
        app = await s.get(ProjectApplication, app_id) if 0 < app_id <= rules.MAX_ID else None
        if app is None or app.project_id != project.id:
            raise errors.NotFound(f"No application {app_id} of project {project.id}")
        return project, app

    async def _pending_of(self, s: AsyncSession, project_id: uuid.UUID) -> list[ProjectApplication]:
        query = select(ProjectApplication).where(
            ProjectApplication.project_id == project_id, ProjectApplication.state == "pending"
        )
        return list(await s.scalars(query.order_by(ProjectApplication.id)))

    async def _memberships_of(
        self, s: AsyncSession, project_id: uuid.UUID
    ) -> list[ProjectMembership]:
        query = select(ProjectMembership).where(ProjectMembership.project_id == project_id)
        return list(await s.scalars(query.order_by(ProjectMembership.id)))

    async def _user(self, s: AsyncSession, ref: str) -> User:
        wanted = rules.parse_id(ref)
        if wanted is not None:
            user = await s.get(User, wanted)
        else:
            user = await s.scalar(select(User).where(User.email == ref.strip().lower()))
        if user is None:
            raise errors.NotFound(f"No user {ref}")
        if not user.is_active:
            raise errors.Conflict(f"User {ref} is not active")
        return user

    async def _set_resources(
        self, s: AsyncSession, project_id: uuid.UUID, resources: Mapping[str, Mapping[str, int]]
    ) -> None:
        have = (await self._resource_rows(s, [project_id])).get(project_id, [])
        rows = {r.resource: r for r in have}
        for name, spec in resources.items():
            row = rows.get(name)
            if row is None:
                row = ProjectResource(project_id=project_id, resource=name)
                s.add(row)
            row.project_capacity = spec["project_capacity"]
            row.member_capacity = spec["member_capacity"]
        await s.flush()

    async def _sync(
        self,
        s: AsyncSession,
        project: Project,
        memberships: Sequence[ProjectMembership],
        with_project: bool = True,
    ) -> None:
        """Set the limits the project's state, resources and these memberships imply.

        Limits are set in one sorted order, the order the quotaholder locks holdings
        in, so a sync and a commission never wait on each other in a cycle.
        """
        source = project_holder(project.id)
        live = project.state == rules.QUOTA_LIVE
        rows = (await self._resource_rows(s, [project.id])).get(project.id, [])
        limits: dict[tuple[str, str, str], int] = {}
        if with_project:
            for r in rows:
                limits[(source, NO_SOURCE, r.resource)] = r.project_capacity if live else 0
        holders = {user_holder(m.user_id): m for m in memberships}
        if holders:
            query = select(Holding.holder, Holding.resource).where(
                Holding.source == source, Holding.holder.in_(list(holders))
            )
            for holder, resource in await s.execute(query):
                limits[(holder, source, resource)] = 0  # unless still an accepted member
        for holder, m in holders.items():
            if m.state in rules.QUOTA_STATES:
                for r in rows:
                    limits[(holder, source, r.resource)] = r.member_capacity if live else 0
        for (holder, src, resource), limit in sorted(limits.items()):
            await self.quotas.set_limit(s, holder, src or None, resource, limit)

    def _log(
        self,
        s: AsyncSession,
        project_id: uuid.UUID,
        actor: Actor | None,
        action: str,
        from_state: str,
        to_state: str,
        reason: str = "",
        membership_id: int | None = None,
    ) -> None:
        s.add(
            ProjectLog(
                project_id=project_id,
                membership_id=membership_id,
                actor_id=rules.actor_id(actor),
                action=action,
                from_state=from_state,
                to_state=to_state,
                reason=reason,
            )
        )


def _new_snapshot(given: dict[str, Any], owner: uuid.UUID) -> dict[str, Any]:
    for required in rules.REQUIRED_NEW:
        if required not in given:
            raise errors.InvalidInput(f"{required} is required")
    snapshot = {**rules.NEW_DEFAULTS, **given, "owner": owner}
    snapshot["resources"] = rules.filled({}, given.get("resources", {}))
    return snapshot


def _submission_charges(
    applicant: uuid.UUID, replaced: Sequence[ProjectApplication]
) -> list[Charge]:
    """One more pending application for the applicant, one fewer for the applicant of
    each one replaced; netted, so replacing one's own costs nothing."""
    net: dict[uuid.UUID, int] = {applicant: 1}
    for app in replaced:
        net[app.applicant_id] = net.get(app.applicant_id, 0) - 1
    return [p for user, n in sorted(net.items()) if n for p in _pending_app(user, n)]
