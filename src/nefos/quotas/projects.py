"""Projects and memberships (Astakos): applications, their approval, who is a member,
and the quota that follows from all three.

A project is born from an application and changed only by applications: each one is
a full snapshot of what the project should become, kept pending until an admin
approves it (then copied onto the project) or it is denied, cancelled or replaced. A
pending application costs its applicant one ``astakos.pending_app`` in their system
project, so nobody floods the admins; the charge is released when the application
stops being pending.

Quota follows state, never the other way round: after every change :meth:`_sync` sets
the holdings a project's state, resources and memberships imply (the project holding
gets ``project_capacity``, each accepted member ``member_capacity`` from the project;
anything not active gets 0). Usage is never touched: a removed member or a suspended
project keeps what it holds and can only release it.

Every rule about who may do what, from which state, is in the tables below; an action
outside them is a Conflict (or PermissionDenied) that writes nothing.

Names are unique among live projects. The ``projects.name`` column is unique outright,
so a terminated or deleted project gives its name up by holding a placeholder
(``released:<id>``); its real name stays in its applications.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.identity.models import Project, User
from nefos.identity.service import Identity, parse_uuid
from nefos.quotas.models import (
    NO_SOURCE,
    Holding,
    ProjectApplication,
    ProjectLog,
    ProjectMembership,
    ProjectResource,
)
from nefos.quotas.resources import RESOURCES
from nefos.quotas.serials import settled
from nefos.quotas.service import MAX_QUANTITY, Charge, Quotas, charge, project_holder, user_holder

CLIENTKEY = "astakos"
PENDING_APP = "astakos.pending_app"
POLICIES = ("auto", "moderated", "closed")
PROJECT_STATES = ("uninitialized", "active", "suspended", "terminated", "deleted")
RELEASED = "released:"
MAX_TEXT = 1024  # the width of description, comments and reasons in the tables
MAX_MEMBERS = (1 << 31) - 1
_BAD_NAME = re.compile(r"[:\x00-\x1f\x7f]")

# Who may act: an admin always; otherwise the role's own person.
ADMIN, APPLICANT, MANAGER, MEMBER = "admin", "applicant", "owner", "member"

# -- applications ------------------------------------------------------------------------

APPLICATION_ACTIONS: dict[str, set[str]] = {
    "approve": {"pending"},
    "deny": {"pending"},
    "cancel": {"pending"},
    "dismiss": {"denied"},
}
APPLICATION_TARGET = {
    "replace": "replaced",  # by a newer application, never asked for
    "approve": "approved",
    "deny": "denied",
    "cancel": "cancelled",
    "dismiss": "dismissed",
}
APPLICATION_ROLE = {"approve": ADMIN, "deny": ADMIN, "cancel": APPLICANT, "dismiss": APPLICANT}
RELEASES_PENDING_APP = {"approve", "deny", "cancel"}
APPROVABLE = {"uninitialized", "active", "suspended"}  # project states an approval applies to
MODIFIABLE = {"active", "suspended"}  # project states that take modification applications

# -- projects ----------------------------------------------------------------------------

PROJECT_ACTIONS: dict[str, set[str]] = {
    "suspend": {"active"},
    "unsuspend": {"suspended"},
    "terminate": {"active", "suspended"},
    "reinstate": {"terminated"},
}
PROJECT_TARGET = {
    "suspend": "suspended",
    "unsuspend": "active",
    "terminate": "terminated",
    "reinstate": "active",
}
NAMED = {"uninitialized", "active", "suspended"}  # states that hold their name
DEACTIVATED = {"suspended", "terminated"}

# -- memberships -------------------------------------------------------------------------

NEW = ""  # the state of a membership that does not exist yet
BY_POLICY = "*"  # the target depends on the project's join or leave policy
MEMBERSHIP_ACTIONS: dict[str, dict[str, str]] = {
    "join": {NEW: BY_POLICY, "rejected": BY_POLICY, "cancelled": BY_POLICY, "removed": BY_POLICY},
    "enroll": {
        NEW: "accepted",
        "requested": "accepted",
        "rejected": "accepted",
        "cancelled": "accepted",
        "removed": "accepted",
    },
    "leave": {"accepted": BY_POLICY},
    "cancel": {"requested": "cancelled"},
    "accept": {"requested": "accepted", "leave_requested": "removed"},
    "reject": {"requested": "rejected", "leave_requested": "accepted"},
    "remove": {"accepted": "removed", "leave_requested": "removed", "suspended": "removed"},
}
BY_POLICY_TARGET = {
    "join": ("join_policy", {"auto": "accepted", "moderated": "requested"}),
    "leave": ("leave_policy", {"auto": "removed", "moderated": "leave_requested"}),
}
MEMBERSHIP_ROLE = {
    "join": MEMBER,
    "leave": MEMBER,
    "cancel": MEMBER,
    "enroll": MANAGER,
    "accept": MANAGER,
    "reject": MANAGER,
    "remove": MANAGER,
}
API_MEMBERSHIP_ACTIONS = ("leave", "cancel", "accept", "reject", "remove")
MEMBER_STATES = {"accepted", "leave_requested", "suspended"}  # count against max_members
QUOTA_STATES = {"accepted", "leave_requested"}  # hold member_capacity
ALIVE = {"active"}  # project states whose memberships may change
DATE_OF_STATE = {"requested": "requested", "accepted": "accepted", "removed": "removed"}

# -- application fields ------------------------------------------------------------------

NEW_DEFAULTS: dict[str, Any] = {
    "homepage": "",
    "description": "",
    "comments": "",
    "start_date": None,
    "join_policy": "moderated",
    "leave_policy": "auto",
    "max_members": None,
    "private": False,
    "resources": {},
}
COPIED = (  # application fields that become the project's when approved
    "name",
    "homepage",
    "description",
    "end_date",
    "join_policy",
    "leave_policy",
    "max_members",
    "private",
)


@dataclass(frozen=True)
class Actor:
    """Who asks: a user. ``None`` in its place is an operator at the command line."""

    user_id: uuid.UUID
    is_admin: bool = False


@dataclass(frozen=True)
class ProjectView:
    """A project as one caller may see it (``last_application`` only if theirs to see)."""

    project: Project
    name: str
    resources: dict[str, dict[str, int]]
    last_application: ProjectApplication | None


@dataclass(frozen=True)
class MembershipView:
    membership: ProjectMembership
    allowed_actions: list[str]


def _is_admin(actor: Actor | None) -> bool:
    return actor is None or actor.is_admin


def _actor_id(actor: Actor | None) -> uuid.UUID | None:
    return None if actor is None else actor.user_id


def _pending_app(user_id: uuid.UUID, quantity: int) -> list[Charge]:
    """A system project pays for its user's pending applications."""
    return charge(user_id, user_id, PENDING_APP, quantity)


def project_resources() -> list[str]:
    return [name for name, r in RESOURCES.items() if r.allow_in_projects]


class Projects:
    def __init__(self, db: Database, settings: Settings, identity: Identity, quotas: Quotas):
        self.db = db
        self.settings = settings
        self.identity = identity
        self.quotas = quotas
        self._field_checks = {
            "name": self._check_name,
            "owner": self._check_owner,
            "homepage": lambda v: self._text("homepage", v, 255),
            "description": lambda v: self._text("description", v, MAX_TEXT),
            "comments": lambda v: self._text("comments", v, MAX_TEXT),
            "start_date": lambda v: self._date("start_date", v),
            "end_date": self._check_end_date,
            "join_policy": lambda v: self._policy("join_policy", v),
            "leave_policy": lambda v: self._policy("leave_policy", v),
            "max_members": self._check_max_members,
            "private": self._check_private,
            "resources": self._check_resources,
        }
        self._after = {
            "approve": self._after_approve,
            "deny": self._after_deny,
            "cancel": self._after_withdrawal,
            "dismiss": self._after_withdrawal,
        }

    # -- checking fields -----------------------------------------------------------------

    def check_fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The given application fields, checked and normalised; ``None`` means not
        given, except for ``max_members`` where it means no limit."""
        unknown = sorted(set(fields) - set(self._field_checks))
        if unknown:
            raise errors.InvalidInput(f"Unknown application fields: {', '.join(unknown)}")
        checked = {}
        for key, value in fields.items():
            if value is None and key != "max_members":
                continue
            checked[key] = self._field_checks[key](value)
        return checked

    def _check_name(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise errors.InvalidInput("name must be a non-empty string")
        value = value.strip()
        if len(value) > min(self.settings.limits.name_length, 255):
            raise errors.InvalidInput("name is too long")
        if _BAD_NAME.search(value):
            raise errors.InvalidInput("name may not contain ':' or control characters")
        return value

    def _check_owner(self, value: Any) -> uuid.UUID:
        owner = value if isinstance(value, uuid.UUID) else parse_uuid(value)
        if owner is None:
            raise errors.InvalidInput("owner must be a user's UUID")
        return owner

    def _text(self, key: str, value: Any, limit: int) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise errors.InvalidInput(f"{key} must be a string of at most {limit} characters")
        return value

    def _date(self, key: str, value: Any) -> dt.datetime:
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                raise errors.InvalidInput(f"{key} must be an ISO 8601 date and time") from None
        if not isinstance(value, dt.datetime):
            raise errors.InvalidInput(f"{key} must be an ISO 8601 date and time")
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    def _check_end_date(self, value: Any) -> dt.datetime:
        end = self._date("end_date", value)
        if end <= utcnow():
            raise errors.InvalidInput("end_date must be in the future")
        return end

    def _policy(self, key: str, value: Any) -> str:
        if value not in POLICIES:
            raise errors.InvalidInput(f"{key} must be one of {', '.join(POLICIES)}")
        return value

    def _check_max_members(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MEMBERS:
            raise errors.InvalidInput(f"max_members must be an integer from 0 to {MAX_MEMBERS}")
        return value

    def _check_private(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise errors.InvalidInput("private must be true or false")
        return value

    def _check_resources(self, value: Any) -> dict[str, dict[str, int]]:
        if not isinstance(value, Mapping):
            raise errors.InvalidInput("resources must map resource names to capacities")
        allowed = project_resources()
        checked = {}
        for name, spec in value.items():
            if name not in allowed:
                raise errors.InvalidInput(f"Resource {name!r} cannot be granted by projects")
            if not isinstance(spec, Mapping) or set(spec) != {
                "project_capacity",
                "member_capacity",
            }:
                raise errors.InvalidInput(
                    f"{name}: give exactly project_capacity and member_capacity"
                )
            for key, amount in spec.items():
                if isinstance(amount, bool) or not isinstance(amount, int):
                    raise errors.InvalidInput(f"{name}: {key} must be an integer")
                if not 0 <= amount <= MAX_QUANTITY:
                    raise errors.InvalidInput(f"{name}: {key} must be from 0 to {MAX_QUANTITY}")
            if spec["project_capacity"] < spec["member_capacity"]:
                raise errors.InvalidInput(f"{name}: project_capacity is below member_capacity")
            checked[name] = {
                "project_capacity": spec["project_capacity"],
                "member_capacity": spec["member_capacity"],
            }
        return checked

    # -- applications --------------------------------------------------------------------

    async def submit(
        self, actor: Actor, fields: Mapping[str, Any], project_id: uuid.UUID | str | None = None
    ) -> tuple[uuid.UUID, int]:
        """Apply for a new project, or (with ``project_id``) for a change to one.

        Returns the project's id and the application's. A still pending earlier
        application of the project is replaced, and its charge released.
        """
        given = self.check_fields(fields)
        owner = given.get("owner", actor.user_id)
        if owner != actor.user_id and not actor.is_admin:
            raise errors.PermissionDenied("Only admins may apply on behalf of another owner")
        async with self.db.session() as s:
            await self._check_owner_exists(s, owner)
            if project_id is None:
                snapshot = self._new_snapshot(given, owner)
                replaced: list[ProjectApplication] = []
            else:
                project = await self._project(s, project_id)
                self._check_modifiable(actor, project)
                snapshot = await self._modified_snapshot(s, project, given, owner)
                replaced = await self._pending_of(s, project.id)
            self._check_dates(snapshot)
            await self._check_name_free(s, snapshot["name"], project_id)
        try:
            async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
                provisions = self._submission_charges(actor.user_id, replaced)
                if provisions:
                    await settlement.issue(
                        provisions, name="project application", force=actor.is_admin
                    )
                async with settlement.transaction() as s:
                    return await self._record_submission(s, actor, snapshot, project_id, replaced)
        except IntegrityError:
            raise errors.Conflict(f"A project named {snapshot['name']!r} exists") from None

    async def _check_owner_exists(self, s: AsyncSession, owner: uuid.UUID) -> None:
        user = await s.get(User, owner)
        if user is None or not user.is_active:
            raise errors.InvalidInput(f"No active user {owner} to own the project")

    def _new_snapshot(self, given: dict[str, Any], owner: uuid.UUID) -> dict[str, Any]:
        for required in ("name", "end_date"):
            if required not in given:
                raise errors.InvalidInput(f"{required} is required")
        snapshot = {**NEW_DEFAULTS, **given, "owner": owner}
        snapshot["resources"] = _filled({}, given.get("resources", {}))
        return snapshot

    def _check_modifiable(self, actor: Actor, project: Project) -> None:
        if not actor.is_admin and project.owner_id != actor.user_id:
            raise errors.PermissionDenied("Only the project's owner or an admin may modify it")
        if project.is_system:
            raise errors.Conflict("A system project is not changed by applications")
        if project.state not in MODIFIABLE:
            raise errors.Conflict(f"A project that is {project.state} cannot be modified")

    async def _modified_snapshot(
        self, s: AsyncSession, project: Project, given: dict[str, Any], owner: uuid.UUID
    ) -> dict[str, Any]:
        current: dict[str, Any] = {key: getattr(project, key) for key in COPIED}
        current.update(comments="", start_date=None)
        if "owner" not in given:
            owner = project.owner_id or owner
        snapshot = {**current, **given, "owner": owner}
        rows = await self._resource_rows(s, [project.id])
        have = {r.resource: _capacity(r) for r in rows.get(project.id, [])}
        snapshot["resources"] = _filled(have, given.get("resources", {}))
        return snapshot

    def _check_dates(self, snapshot: Mapping[str, Any]) -> None:
        start, end = snapshot.get("start_date"), snapshot["end_date"]
        if start is not None and end is not None and start > end:
            raise errors.InvalidInput("start_date is after end_date")

    async def _check_name_free(
        self, s: AsyncSession, name: str, project_id: uuid.UUID | str | None
    ) -> None:
        query = select(Project.id).where(Project.name == name)
        if project_id is not None:
            query = query.where(Project.id != _uuid(project_id))
        if await s.scalar(query.limit(1)) is not None:
            raise errors.Conflict(f"A project named {name!r} exists")

    def _submission_charges(
        self, applicant: uuid.UUID, replaced: Sequence[ProjectApplication]
    ) -> list[Charge]:
        """One more pending application for the applicant, one fewer for each applicant
        whose application this replaces; netted, so replacing one's own costs nothing."""
        net: dict[uuid.UUID, int] = {applicant: 1}
        for app in replaced:
            net[app.applicant_id] = net.get(app.applicant_id, 0) - 1
        return [p for user, n in sorted(net.items()) if n for p in _pending_app(user, n)]

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
            _copy(project, snapshot)
            s.add(project)
            await s.flush()
            await self._set_resources(s, project.id, snapshot["resources"])
        else:
            project = await self._project(s, project_id, lock=True)
            self._check_modifiable(actor, project)
            now_pending = await self._pending_of(s, project.id)
            if {a.id for a in now_pending} != {a.id for a in replaced}:
                raise errors.Conflict("The project changed meanwhile; apply again")
            for old in now_pending:
                await self._set_application_state(s, project, old, "replace", actor, "")
        app = ProjectApplication(
            project_id=project.id,
            applicant_id=actor.user_id,
            owner_id=snapshot["owner"],
            state="pending",
            comments=snapshot["comments"],
            start_date=snapshot["start_date"],
            resources=snapshot["resources"],
            **{key: snapshot[key] for key in COPIED},
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
        """One action on a project or on one of its applications (Synnefo's
        ``projects/<id>/action``)."""
        _check_reason(reason)
        if action in APPLICATION_ACTIONS:
            if app_id is None:
                raise errors.InvalidInput(f"{action} needs app_id")
            await self.application_action(actor, project_id, action, app_id, reason)
        elif action in PROJECT_ACTIONS:
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
        _check_reason(reason)
        if action not in APPLICATION_ACTIONS:
            raise errors.InvalidInput(f"Unknown application action {action!r}")
        async with self.db.session() as s:
            project, app = await self._application(s, project_id, app_id)
            await self._check_application_action(s, actor, project, app, action)
        try:
            async with settled(self.db, self.quotas, CLIENTKEY) as settlement:
                if action in RELEASES_PENDING_APP:
                    await settlement.issue(_pending_app(app.applicant_id, -1), name=action)
                async with settlement.transaction() as s:
                    project, app = await self._application(s, project_id, app_id, lock=True)
                    await self._check_application_action(s, actor, project, app, action)
                    await self._set_application_state(s, project, app, action, actor, reason)
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
        role = APPLICATION_ROLE[action]
        if not _is_admin(actor) and (role == ADMIN or app.applicant_id != _actor_id(actor)):
            raise errors.PermissionDenied(f"{action} is not yours to do on application {app.id}")
        if app.state not in APPLICATION_ACTIONS[action]:
            raise errors.Conflict(f"Cannot {action} application {app.id}: it is {app.state}")
        if project.last_application_id != app.id:
            raise errors.Conflict(f"Application {app.id} is not the project's latest")
        if action == "approve":
            if project.state not in APPROVABLE:
                raise errors.Conflict(f"Cannot approve for a project that is {project.state}")
            await self._check_name_free(s, app.name, project.id)

    async def _set_application_state(
        self,
        s: AsyncSession,
        project: Project,
        app: ProjectApplication,
        action: str,
        actor: Actor | None,
        reason: str,
    ) -> None:
        state = APPLICATION_TARGET[action]
        self._log(s, project.id, actor, f"{action}:{app.id}", app.state, state, reason)
        app.state = state
        app.response = reason
        app.response_date = utcnow()
        app.response_actor_id = _actor_id(actor)

    async def _after_approve(
        self,
        s: AsyncSession,
        actor: Actor | None,
        project: Project,
        app: ProjectApplication,
        reason: str,
    ) -> None:
        """The application becomes the project; quota follows at once."""
        _copy(project, {"owner": app.owner_id, **{key: getattr(app, key) for key in COPIED}})
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
            _release_name(project)  # a refused project must not hold its name

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
        """The project's application awaiting a decision (for operators, who rarely
        know its number)."""
        async with self.db.session() as s:
            project = await self._project(s, project_id)
            app = (
                await s.get(ProjectApplication, project.last_application_id)
                if project.last_application_id is not None
                else None
            )
        if app is None or app.state != "pending":
            raise errors.Conflict(f"Project {project.id} has no pending application")
        return app.id

    # -- project actions -----------------------------------------------------------------

    async def project_action(
        self, actor: Actor | None, project_id: uuid.UUID | str, action: str, reason: str = ""
    ) -> Project:
        """Suspend, unsuspend, terminate or reinstate a project (admins only)."""
        _check_reason(reason)
        if action not in PROJECT_ACTIONS:
            raise errors.InvalidInput(f"Unknown project action {action!r}")
        try:
            async with self.db.transaction() as s:
                project = await self._project(s, project_id, lock=True)
                await self._check_project_action(s, actor, project, action)
                if PROJECT_TARGET[action] in NAMED:
                    project.name = await self._realname(s, project)
                self._set_state(s, project, PROJECT_TARGET[action], actor, action, reason)
                await s.flush()
                await self._sync(s, project, await self._memberships_of(s, project.id))
        except IntegrityError:
            raise errors.Conflict("Another project took this project's name") from None
        return project

    async def _check_project_action(
        self, s: AsyncSession, actor: Actor | None, project: Project, action: str
    ) -> None:
        if not _is_admin(actor):
            raise errors.PermissionDenied(f"Only admins may {action} a project")
        if project.is_system:
            raise errors.Conflict("A system project cannot be suspended or terminated")
        if project.state not in PROJECT_ACTIONS[action]:
            raise errors.Conflict(f"Cannot {action} project {project.id}: it is {project.state}")
        if action == "reinstate":
            await self._check_name_free(s, await self._realname(s, project), project.id)

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
        project.deactivation_date = utcnow() if state in DEACTIVATED else None
        if state not in NAMED:
            _release_name(project)

    # -- memberships ---------------------------------------------------------------------

    async def join(
        self, actor: Actor, project_id: uuid.UUID | str, reason: str = ""
    ) -> ProjectMembership:
        """Ask to join (moderated), or join at once (auto)."""
        return await self._change_membership(actor, project_id, actor.user_id, "join", reason)

    async def enroll(
        self, actor: Actor | None, project_id: uuid.UUID | str, user: str, reason: str = ""
    ) -> ProjectMembership:
        """Make a user (by e-mail or UUID) a member at once: owners and admins."""
        async with self.db.session() as s:
            found = await self._user(s, user)
        return await self._change_membership(actor, project_id, found.id, "enroll", reason)

    async def membership_action(
        self, actor: Actor | None, membership_id: int, action: str, reason: str = ""
    ) -> ProjectMembership:
        if action not in API_MEMBERSHIP_ACTIONS:
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
        _check_reason(reason)
        async with self.db.transaction() as s:
            project = await self._project(s, project_id, lock=True)
            membership = await s.scalar(
                select(ProjectMembership)
                .where(
                    ProjectMembership.project_id == project.id,
                    ProjectMembership.user_id == user_id,
                )
                .with_for_update()
            )
            state = membership.state if membership is not None else NEW
            members = await self._member_count(s, project.id)
            target = self._membership_target(actor, project, user_id, state, action, members)
            if membership is None:
                membership = ProjectMembership(project_id=project.id, user_id=user_id, state=NEW)
                s.add(membership)
                await s.flush()
            self._log(s, project.id, actor, action, state, target, reason, membership.id)
            membership.state = target
            if target in DATE_OF_STATE:
                setattr(membership, DATE_OF_STATE[target], utcnow())
            await self._sync(s, project, [membership], with_project=False)
        return membership

    def _membership_target(
        self,
        actor: Actor | None,
        project: Project,
        user_id: uuid.UUID,
        state: str,
        action: str,
        members: int,
    ) -> str:
        """The state ``action`` leads to, or the reason it may not happen."""
        if not _is_admin(actor):
            assert actor is not None
            person = user_id if MEMBERSHIP_ROLE[action] == MEMBER else project.owner_id
            if person != actor.user_id:
                raise errors.PermissionDenied(f"{action} is not yours to do in this project")
        if project.is_system:
            raise errors.Conflict("A system project has no members but its user")
        if project.state not in ALIVE:
            raise errors.Conflict(f"Project {project.id} is {project.state}")
        if state not in MEMBERSHIP_ACTIONS[action]:
            raise errors.Conflict(f"Cannot {action}: the membership is {state or 'absent'}")
        target = MEMBERSHIP_ACTIONS[action][state]
        if target == BY_POLICY:
            policy_field, by_policy = BY_POLICY_TARGET[action]
            policy = getattr(project, policy_field)
            if policy not in by_policy:
                raise errors.Conflict(f"The project's {policy_field} is {policy}")
            target = by_policy[policy]
        if target == "accepted" and state not in MEMBER_STATES:
            if project.join_policy == "closed":
                raise errors.Conflict("The project takes no new members (join_policy closed)")
            if project.max_members is not None and members >= project.max_members:
                raise errors.Conflict(f"The project has its {project.max_members} members")
        return target

    async def _member_count(self, s: AsyncSession, project_id: uuid.UUID) -> int:
        return (
            await s.scalar(
                select(func.count())
                .select_from(ProjectMembership)
                .where(
                    ProjectMembership.project_id == project_id,
                    ProjectMembership.state.in_(MEMBER_STATES),
                )
            )
            or 0
        )

    def _allowed_actions(
        self, actor: Actor | None, project: Project, membership: ProjectMembership, members: int
    ) -> list[str]:
        allowed = []
        for action in API_MEMBERSHIP_ACTIONS:
            try:
                self._membership_target(
                    actor, project, membership.user_id, membership.state, action, members
                )
            except (errors.Conflict, errors.PermissionDenied):
                continue
            allowed.append(action)
        return allowed

    async def memberships(
        self, actor: Actor | None, project_id: uuid.UUID | str | None = None
    ) -> list[MembershipView]:
        """The memberships the caller may see: their own and those of projects they own."""
        query = select(ProjectMembership)
        if project_id is not None:
            wanted = _uuid(project_id)
            if wanted is None:
                raise errors.InvalidInput(f"Invalid project id {project_id!r}")
            query = query.where(ProjectMembership.project_id == wanted)
        if not _is_admin(actor):
            assert actor is not None
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
        found = await s.get(ProjectMembership, membership_id)
        if found is not None and not _is_admin(actor):
            assert actor is not None
            project = await s.get(Project, found.project_id)
            if actor.user_id not in (found.user_id, project.owner_id if project else None):
                found = None
        if found is None:
            raise errors.NotFound(f"No membership {membership_id}")
        return found

    async def _membership_views(
        self, s: AsyncSession, actor: Actor | None, found: list[ProjectMembership]
    ) -> list[MembershipView]:
        ids = {m.project_id for m in found}
        projects = {p.id: p for p in await s.scalars(select(Project).where(Project.id.in_(ids)))}
        counts = dict(
            (
                await s.execute(
                    select(ProjectMembership.project_id, func.count())
                    .where(
                        ProjectMembership.project_id.in_(ids),
                        ProjectMembership.state.in_(MEMBER_STATES),
                    )
                    .group_by(ProjectMembership.project_id)
                )
            ).all()
        )
        return [
            MembershipView(
                m,
                self._allowed_actions(
                    actor, projects[m.project_id], m, counts.get(m.project_id, 0)
                ),
            )
            for m in found
        ]

    async def member_projects(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Projects a token of this user may be scoped to by membership (the system
        project is the user's by identity, and not listed here)."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Project.id)
                .join(ProjectMembership, ProjectMembership.project_id == Project.id)
                .where(
                    ProjectMembership.user_id == user_id,
                    ProjectMembership.state.in_(QUOTA_STATES),
                    Project.state.in_(("active", "suspended")),
                )
                .order_by(Project.created_at)
            )
            return list(rows)

    # -- reading projects ----------------------------------------------------------------

    async def list_projects(
        self,
        actor: Actor | None,
        state: str | None = None,
        owner: uuid.UUID | str | None = None,
        name: str | None = None,
        mode: str = "default",
    ) -> list[ProjectView]:
        """Admins see every project; others those they own or belong to and the public
        active ones. ``mode="member"`` keeps only the caller's memberships."""
        query = select(Project)
        if state is not None:
            if state not in PROJECT_STATES:
                raise errors.InvalidInput(f"Unknown project state {state!r}")
            query = query.where(Project.state == state)
        if owner is not None:
            owner_id = _uuid(owner)
            if owner_id is None:
                raise errors.InvalidInput("owner must be a user's UUID")
            query = query.where(Project.owner_id == owner_id)
        if name is not None:
            named = select(ProjectApplication.project_id).where(ProjectApplication.name == name)
            query = query.where(or_(Project.name == name, Project.id.in_(named)))
        query = query.where(self._visible(actor, mode))
        async with self.db.session() as s:
            found = list(await s.scalars(query.order_by(Project.created_at, Project.id)))
            views = await self._views(s, actor, found)
        return [v for v in views if name is None or v.name == name]

    def _visible(self, actor: Actor | None, mode: str) -> Any:
        if mode not in ("default", "member"):
            raise errors.InvalidInput(f"Unknown mode {mode!r}: default or member")
        if mode == "member":
            if actor is None:
                raise errors.InvalidInput("mode=member needs a user")
            mine = select(ProjectMembership.project_id).where(
                ProjectMembership.user_id == actor.user_id,
                ProjectMembership.state.in_(QUOTA_STATES),
            )
            return or_(Project.id.in_(mine), Project.id == actor.user_id)
        if _is_admin(actor):
            return true()
        assert actor is not None
        belongs = select(ProjectMembership.project_id).where(
            ProjectMembership.user_id == actor.user_id,
            ProjectMembership.state.in_(MEMBER_STATES),
        )
        return or_(
            Project.owner_id == actor.user_id,
            Project.id.in_(belongs),
            and_(Project.state == "active", Project.private.is_(False)),
        )

    async def get_project(self, actor: Actor | None, project_id: uuid.UUID | str) -> ProjectView:
        """One project, if the caller may see it (a private one looks absent)."""
        wanted = _uuid(project_id)
        if wanted is None:
            raise errors.NotFound(f"No project {project_id}")
        async with self.db.session() as s:
            project = await s.scalar(
                select(Project).where(Project.id == wanted, self._visible(actor, "default"))
            )
            if project is None:
                raise errors.NotFound(f"No project {project_id}")
            return (await self._views(s, actor, [project]))[0]

    async def _views(
        self, s: AsyncSession, actor: Actor | None, projects: list[Project]
    ) -> list[ProjectView]:
        rows = await self._resource_rows(s, [p.id for p in projects if not p.is_system])
        system = await self._system_resources(s, [p.id for p in projects if p.is_system])
        app_ids = [p.last_application_id for p in projects if p.last_application_id is not None]
        apps = {
            a.id: a
            for a in await s.scalars(
                select(ProjectApplication).where(ProjectApplication.id.in_(app_ids))
            )
        }
        names = await self._realnames(s, [p for p in projects if p.name.startswith(RELEASED)])
        views = []
        for project in projects:
            app = apps.get(project.last_application_id)  # type: ignore[arg-type]
            if app is not None and not _is_admin(actor):
                assert actor is not None
                if actor.user_id not in (project.owner_id, app.applicant_id):
                    app = None
            resources = system.get(project.id) if project.is_system else None
            if resources is None:
                resources = {r.resource: _capacity(r) for r in rows.get(project.id, [])}
            views.append(
                ProjectView(
                    project, names.get(project.id, project.name), _api_visible(resources), app
                )
            )
        return views

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

    async def _system_resources(
        self, s: AsyncSession, project_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, dict[str, int]]]:
        """A system project grants what its holdings say (set by operators, not by
        applications)."""
        if not project_ids:
            return {}
        holders = [project_holder(p) for p in project_ids]
        found: dict[uuid.UUID, dict[str, dict[str, int]]] = {p: {} for p in project_ids}
        query = select(Holding).where(or_(Holding.holder.in_(holders), Holding.source.in_(holders)))
        for h in await s.scalars(query):
            own = h.source == NO_SOURCE
            project_id = uuid.UUID((h.holder if own else h.source).split(":", 1)[1])
            if not own and h.holder != user_holder(project_id):
                continue
            entry = found[project_id].setdefault(
                h.resource, {"project_capacity": 0, "member_capacity": 0}
            )
            entry["project_capacity" if own else "member_capacity"] = h.limit
        return found

    async def _realnames(self, s: AsyncSession, projects: list[Project]) -> dict[uuid.UUID, str]:
        """Names of projects that gave theirs up: from the last approved application,
        else the last one."""
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
        if not project.name.startswith(RELEASED):
            return project.name
        return (await self._realnames(s, [project]))[project.id]

    # -- shared steps --------------------------------------------------------------------

    async def _project(
        self, s: AsyncSession, project_id: uuid.UUID | str, lock: bool = False
    ) -> Project:
        wanted = _uuid(project_id)
        project = None
        if wanted is not None:
            query = select(Project).where(Project.id == wanted)
            project = await s.scalar(query.with_for_update() if lock else query)
        if project is None:
            raise errors.NotFound(f"No project {project_id}")
        return project

    async def _application(
        self, s: AsyncSession, project_id: uuid.UUID | str, app_id: int, lock: bool = False
    ) -> tuple[Project, ProjectApplication]:
        project = await self._project(s, project_id, lock=lock)
        app = await s.get(ProjectApplication, app_id)
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
        wanted = parse_uuid(ref)
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
        rows = {
            r.resource: r for r in (await self._resource_rows(s, [project_id])).get(project_id, [])
        }
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
        """Set the holdings the project's state, resources and these memberships imply.

        Limits are set in one sorted order, as the quotaholder locks them, so a sync and
        a commission never wait on each other in a cycle.
        """
        source = project_holder(project.id)
        live = project.state == "active"
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
                limits[(holder, source, resource)] = 0  # what no accepted member may keep
        for holder, m in holders.items():
            if m.state in QUOTA_STATES:
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
                actor_id=_actor_id(actor),
                action=action,
                from_state=from_state,
                to_state=to_state,
                reason=reason,
            )
        )


# -- helpers -------------------------------------------------------------------------------


def _uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return parse_uuid(value)


def _check_reason(reason: str) -> None:
    if not isinstance(reason, str) or len(reason) > MAX_TEXT:
        raise errors.InvalidInput(f"A reason is a string of at most {MAX_TEXT} characters")


def _capacity(row: ProjectResource) -> dict[str, int]:
    return {"project_capacity": row.project_capacity, "member_capacity": row.member_capacity}


def _filled(
    have: Mapping[str, dict[str, int]], given: Mapping[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Every resource a project may grant: given, else as it was, else nothing (as
    Synnefo fills a project from its skeleton)."""
    empty = {"project_capacity": 0, "member_capacity": 0}
    return {name: dict(given.get(name) or have.get(name) or empty) for name in project_resources()}


def _api_visible(resources: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {
        name: spec
        for name, spec in sorted(resources.items())
        if name in RESOURCES and RESOURCES[name].api_visible
    }


def _copy(project: Project, snapshot: Mapping[str, Any]) -> None:
    project.owner_id = snapshot["owner"]
    for key in COPIED:
        setattr(project, key, snapshot[key])


def _release_name(project: Project) -> None:
    project.name = f"{RELEASED}{project.id}"


# -- representation (shared by the account API and the command line) -----------------------


def iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def describe_application(app: ProjectApplication) -> dict[str, Any]:
    return {
        "id": app.id,
        "state": app.state,
        "name": app.name,
        "owner": _str(app.owner_id),
        "applicant": str(app.applicant_id),
        "homepage": app.homepage,
        "description": app.description,
        "comments": app.comments,
        "start_date": iso(app.start_date),
        "end_date": iso(app.end_date),
        "issue_date": iso(app.issue_date),
        "join_policy": app.join_policy,
        "leave_policy": app.leave_policy,
        "max_members": app.max_members,
        "private": app.private,
        "resources": _api_visible(app.resources),
    }


def describe_project(view: ProjectView) -> dict[str, Any]:
    """Synnefo's project document (spec §3.4)."""
    project = view.project
    described: dict[str, Any] = {
        "id": str(project.id),
        "state": project.state,
        "creation_date": iso(project.created_at),
        "name": view.name,
        "owner": _str(project.owner_id),
        "homepage": project.homepage,
        "description": project.description,
        "end_date": iso(project.end_date),
        "join_policy": project.join_policy,
        "leave_policy": project.leave_policy,
        "max_members": project.max_members,
        "private": project.private,
        "system_project": project.is_system,
        "resources": view.resources,
    }
    if view.last_application is not None:
        described["last_application"] = describe_application(view.last_application)
    if project.deactivation_date is not None:
        described["deactivation_date"] = iso(project.deactivation_date)
    return described


def describe_membership(view: MembershipView) -> dict[str, Any]:
    m = view.membership
    return {
        "id": m.id,
        "user": str(m.user_id),
        "project": str(m.project_id),
        "state": m.state,
        "requested": iso(m.requested),
        "accepted": iso(m.accepted),
        "removed": iso(m.removed),
        "allowed_actions": view.allowed_actions,
    }
