"""The rules of projects and memberships, apart from the database: state tables, who may
act, field checks, and the documents the account API and the command line show.

Every transition a project, an application or a membership may make is in a table here;
anything else is a Conflict (or, for the wrong person, PermissionDenied) and the service
writes nothing. Tests enumerate these tables.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nefos.core import errors
from nefos.core.db import utcnow
from nefos.core.numbers import ascii_uuid
from nefos.identity.models import Project
from nefos.quotas.models import ProjectApplication, ProjectMembership, ProjectResource
from nefos.quotas.resources import RESOURCES
from nefos.quotas.service import MAX_QUANTITY

POLICIES = ("auto", "moderated", "closed")
PROJECT_STATES = ("uninitialized", "active", "suspended", "terminated", "deleted")
RELEASED = "released:"  # the placeholder name of a project that gave its name up
MAX_TEXT = 1024  # the width of description, comments and reasons in the tables
MAX_HOMEPAGE = 255
MAX_MEMBERS = (1 << 31) - 1
MAX_ID = (1 << 31) - 1  # applications and memberships are numbered in 32-bit columns
_BAD_NAME = re.compile(r"[:\x00-\x1f\x7f]")  # ':' is for system: and released: names

# Who may act: an admin always; otherwise only the role's own person.
ADMIN, APPLICANT, OWNER, MEMBER = "admin", "applicant", "owner", "member"

# -- applications ------------------------------------------------------------------------

APPLICATION_ACTIONS: dict[str, set[str]] = {
    "approve": {"pending"},
    "deny": {"pending"},
    "cancel": {"pending"},
    "dismiss": {"denied"},
}
APPLICATION_TARGET = {
    "replace": "replaced",  # by a newer application; nobody asks for it
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
NAMED = {"uninitialized", "active", "suspended"}  # states in which a project holds its name
DEACTIVATED = {"suspended", "terminated"}
QUOTA_LIVE = "active"  # the one project state whose holdings have their limits

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
    "enroll": OWNER,
    "accept": OWNER,
    "reject": OWNER,
    "remove": OWNER,
}
MEMBERSHIP_STATES = (
    "requested",
    "accepted",
    "leave_requested",
    "suspended",
    "rejected",
    "cancelled",
    "removed",
)
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
REQUIRED_NEW = ("name", "end_date")
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


def is_admin(actor: Actor | None) -> bool:
    return actor is None or actor.is_admin


def actor_id(actor: Actor | None) -> uuid.UUID | None:
    return None if actor is None else actor.user_id


def project_resources() -> list[str]:
    return [name for name, r in RESOURCES.items() if r.allow_in_projects]


# -- who may do what, from where -----------------------------------------------------------


def check_application_action(
    actor: Actor | None, project: Project, app: ProjectApplication, action: str
) -> None:
    """Raise unless ``actor`` may ``action`` this application now (name clashes aside,
    which need the database)."""
    if not is_admin(actor) and (
        APPLICATION_ROLE[action] == ADMIN or app.applicant_id != actor_id(actor)
    ):
        raise errors.PermissionDenied(f"{action} is not yours to do on application {app.id}")
    if app.state not in APPLICATION_ACTIONS[action]:
        raise errors.Conflict(f"Cannot {action} application {app.id}: it is {app.state}")
    if project.last_application_id != app.id:
        raise errors.Conflict(f"Application {app.id} is not the project's latest")
    if action == "approve" and project.state not in APPROVABLE:
        raise errors.Conflict(f"Cannot approve for a project that is {project.state}")


def check_modifiable(actor: Actor, project: Project) -> None:
    if not actor.is_admin and project.owner_id != actor.user_id:
        raise errors.PermissionDenied("Only the project's owner or an admin may modify it")
    if project.is_system:
        raise errors.Conflict("A system project is not changed by applications")
    if project.state not in MODIFIABLE:
        raise errors.Conflict(f"A project that is {project.state} cannot be modified")


def check_project_action(actor: Actor | None, project: Project, action: str) -> None:
    if not is_admin(actor):
        raise errors.PermissionDenied(f"Only admins may {action} a project")
    if project.is_system:
        raise errors.Conflict("A system project cannot be suspended or terminated")
    if project.state not in PROJECT_ACTIONS[action]:
        raise errors.Conflict(f"Cannot {action} project {project.id}: it is {project.state}")


def membership_target(
    actor: Actor | None,
    project: Project,
    user_id: uuid.UUID,
    state: str,
    action: str,
    members: int,
) -> str:
    """The state ``action`` takes the membership of ``user_id`` to, or why it may not
    (``members`` is how many count against ``max_members`` now)."""
    if not is_admin(actor):
        person = user_id if MEMBERSHIP_ROLE[action] == MEMBER else project.owner_id
        if person != actor_id(actor):
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


def allowed_actions(
    actor: Actor | None, project: Project, membership: ProjectMembership, members: int
) -> list[str]:
    """What the caller may do to a membership now: the same rules, asked in advance."""
    allowed = []
    for action in API_MEMBERSHIP_ACTIONS:
        try:
            membership_target(actor, project, membership.user_id, membership.state, action, members)
        except (errors.Conflict, errors.PermissionDenied):
            continue
        allowed.append(action)
    return allowed


# -- application fields --------------------------------------------------------------------


def check_fields(fields: Mapping[str, Any], name_length: int = 255) -> dict[str, Any]:
    """The given application fields, checked and normalised. ``None`` means not given,
    except for ``max_members``, where it means no limit."""
    checks = _field_checks(min(name_length, 255))
    unknown = sorted(set(fields) - set(checks))
    if unknown:
        raise errors.InvalidInput(f"Unknown application fields: {', '.join(unknown)}")
    return {
        key: checks[key](value)
        for key, value in fields.items()
        if value is not None or key == "max_members"
    }


def _field_checks(name_length: int) -> dict[str, Callable[[Any], Any]]:
    return {
        "name": lambda v: _name(v, name_length),
        "owner": _owner,
        "homepage": lambda v: _text("homepage", v, MAX_HOMEPAGE),
        "description": lambda v: _text("description", v, MAX_TEXT),
        "comments": lambda v: _text("comments", v, MAX_TEXT),
        "start_date": lambda v: _date("start_date", v),
        "end_date": _end_date,
        "join_policy": lambda v: _policy("join_policy", v),
        "leave_policy": lambda v: _policy("leave_policy", v),
        "max_members": _max_members,
        "private": _private,
        "resources": _resources,
    }


def _name(value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise errors.InvalidInput("name must be a non-empty string")
    value = value.strip()
    if len(value) > limit:
        raise errors.InvalidInput(f"name has at most {limit} characters")
    if _BAD_NAME.search(value):
        raise errors.InvalidInput("name may not contain ':' or control characters")
    return value


def _owner(value: Any) -> uuid.UUID:
    owner = parse_id(value)
    if owner is None:
        raise errors.InvalidInput("owner must be a user's UUID")
    return owner


def _text(key: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise errors.InvalidInput(f"{key} must be a string of at most {limit} characters")
    return value


def _date(key: str, value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise errors.InvalidInput(f"{key} must be an ISO 8601 date and time") from None
    if not isinstance(value, dt.datetime):
        raise errors.InvalidInput(f"{key} must be an ISO 8601 date and time")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _end_date(value: Any) -> dt.datetime:
    end = _date("end_date", value)
    if end <= utcnow():
        raise errors.InvalidInput("end_date must be in the future")
    return end


def _policy(key: str, value: Any) -> str:
    if value not in POLICIES:
        raise errors.InvalidInput(f"{key} must be one of {', '.join(POLICIES)}")
    return value


def _max_members(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MEMBERS:
        raise errors.InvalidInput(f"max_members must be an integer from 0 to {MAX_MEMBERS}")
    return value


def _private(value: Any) -> bool:
    if not isinstance(value, bool):
        raise errors.InvalidInput("private must be true or false")
    return value


def _resources(value: Any) -> dict[str, dict[str, int]]:
    if not isinstance(value, Mapping):
        raise errors.InvalidInput("resources must map resource names to capacities")
    allowed = project_resources()
    checked = {}
    for name, spec in value.items():
        if name not in allowed:
            raise errors.InvalidInput(f"Resource {name!r} cannot be granted by projects")
        if not isinstance(spec, Mapping) or set(spec) != {"project_capacity", "member_capacity"}:
            raise errors.InvalidInput(f"{name}: give exactly project_capacity and member_capacity")
        for key, amount in spec.items():
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise errors.InvalidInput(f"{name}: {key} must be an integer")
            if not 0 <= amount <= MAX_QUANTITY:
                raise errors.InvalidInput(f"{name}: {key} must be from 0 to {MAX_QUANTITY}")
        if spec["project_capacity"] < spec["member_capacity"]:
            raise errors.InvalidInput(f"{name}: project_capacity is below member_capacity")
        checked[name] = capacity(spec["project_capacity"], spec["member_capacity"])
    return checked


def check_dates(snapshot: Mapping[str, Any]) -> None:
    start, end = snapshot.get("start_date"), snapshot.get("end_date")
    if start is not None and end is not None and start > end:
        raise errors.InvalidInput("start_date is after end_date")


def check_reason(reason: Any) -> str:
    if not isinstance(reason, str) or len(reason) > MAX_TEXT:
        raise errors.InvalidInput(f"A reason is a string of at most {MAX_TEXT} characters")
    return reason


def parse_id(value: Any) -> uuid.UUID | None:
    return ascii_uuid(value)


def capacity(project_capacity: int, member_capacity: int) -> dict[str, int]:
    return {"project_capacity": project_capacity, "member_capacity": member_capacity}


def capacity_of(row: ProjectResource) -> dict[str, int]:
    return capacity(row.project_capacity, row.member_capacity)


def filled(
    have: Mapping[str, dict[str, int]], given: Mapping[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Every resource a project may grant: as given, else as it was, else nothing (as
    Synnefo fills a new project from its skeleton)."""
    return {
        name: dict(given.get(name) or have.get(name) or capacity(0, 0))
        for name in project_resources()
    }


def copy_onto(project: Project, snapshot: Mapping[str, Any]) -> None:
    project.owner_id = snapshot["owner"]
    for key in COPIED:
        setattr(project, key, snapshot[key])


def release_name(project: Project) -> None:
    project.name = f"{RELEASED}{project.id}"


# -- documents -----------------------------------------------------------------------------


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


def iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def api_visible(resources: Mapping[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {
        name: dict(spec)
        for name, spec in sorted(resources.items())
        if name in RESOURCES and RESOURCES[name].api_visible
    }


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
        "resources": api_visible(app.resources),
        # nefos adds the decision's reason, so an applicant learns why they were refused
        "response": app.response,
        "response_date": iso(app.response_date),
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
