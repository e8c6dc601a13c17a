"""Synnefo's project API (``/account/v1.0/projects``): parse, call the service, render.

Bodies are checked for shape and JSON types here (a wrong type is a 400 before any
work); the service checks what the values mean. Membership routes come first, so that
``projects/memberships`` is never read as a project id.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import Credentials, current_user
from nefos.core.body import describe_validation, parse_json
from nefos.core.faults import json_response
from nefos.core.numbers import ascii_int
from nefos.quotas import project_rules as rules
from nefos.quotas.project_rules import Actor
from nefos.quotas.projects import Projects

router = APIRouter(prefix="/account/v1.0")


async def _projects(request: Request) -> Projects:
    return request.app.state.engines.projects


async def _actor(credentials: Annotated[Credentials, Depends(current_user)]) -> Actor:
    return Actor(credentials.user_id, credentials.is_admin)


Service = Annotated[Projects, Depends(_projects)]
Caller = Annotated[Actor, Depends(_actor)]
Policy = Literal["auto", "moderated", "closed"]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class Capacity(Strict):
    project_capacity: int
    member_capacity: int


class ApplicationBody(Strict):
    """Every field of a new project; a modification gives only those that change."""

    name: str | None = None
    owner: uuid.UUID | None = None
    homepage: str | None = None
    description: str | None = None
    comments: str | None = None
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    join_policy: Policy | None = None
    leave_policy: Policy | None = None
    max_members: int | None = None
    private: bool | None = None
    resources: dict[str, Capacity] | None = None


class ProjectAction(Strict):
    reason: str | None = Field(default=None, max_length=rules.MAX_TEXT)
    app_id: int | None = None

    @field_validator("app_id", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        """kamaki passes the id as the user typed it."""
        if isinstance(value, str):
            number = ascii_int(value, 1, rules.MAX_ID)
            return value if number is None else number
        return value


class Join(Strict):
    project: str


class Enroll(Strict):
    project: str
    user: str


PROJECT_ACTIONS = {
    name: ProjectAction for name in (*rules.APPLICATION_ACTIONS, *rules.PROJECT_ACTIONS)
}
MEMBERSHIP_REQUESTS = {"join": Join, "enroll": Enroll}
MEMBERSHIP_ACTIONS = {name: str | None for name in rules.API_MEMBERSHIP_ACTIONS}


def _one_action(raw: bytes, known: dict[str, Any]) -> tuple[str, Any]:
    """Synnefo's action bodies: ``{"<action>": <its arguments>}``, exactly one."""
    body = parse_json(dict[str, Any], raw)
    if len(body) != 1:
        raise errors.InvalidInput(f"Give exactly one action of: {', '.join(known)}")
    ((name, value),) = body.items()
    if name not in known:
        raise errors.InvalidInput(f"Unknown action {name!r}: one of {', '.join(known)}")
    try:
        return name, TypeAdapter(known[name]).validate_python(value, strict=True)
    except ValidationError as exc:
        raise errors.InvalidInput(describe_validation(exc.errors())) from None


def _membership_id(value: str) -> int:
    """ASCII digits within the column, else no such membership (``²`` is a digit to
    ``str.isdigit`` but not to ``int``)."""
    number = ascii_int(value, 1, rules.MAX_ID)
    if number is None:
        raise errors.NotFound(f"No membership {value}")
    return number


# -- memberships -------------------------------------------------------------------------


@router.get("/projects/memberships")
async def list_memberships(service: Service, caller: Caller, project: str | None = None):
    views = await service.memberships(caller, project)
    return json_response([rules.describe_membership(v) for v in views])


@router.post("/projects/memberships")
async def request_membership(request: Request, service: Service, caller: Caller):
    name, body = _one_action(await request.body(), MEMBERSHIP_REQUESTS)
    if name == "join":
        membership = await service.join(caller, body.project)
    else:
        membership = await service.enroll(caller, body.project, body.user)
    return json_response({"id": membership.id}, 201)


@router.get("/projects/memberships/{membership_id}")
async def show_membership(membership_id: str, service: Service, caller: Caller):
    view = await service.membership(caller, _membership_id(membership_id))
    return json_response(rules.describe_membership(view))


@router.post("/projects/memberships/{membership_id}/action")
async def membership_action(membership_id: str, request: Request, service: Service, caller: Caller):
    number = _membership_id(membership_id)
    name, reason = _one_action(await request.body(), MEMBERSHIP_ACTIONS)
    await service.membership_action(caller, number, name, reason or "")
    return Response(status_code=200)


# -- projects ----------------------------------------------------------------------------


@router.get("/projects")
async def list_projects(
    service: Service,
    caller: Caller,
    state: str | None = None,
    owner: str | None = None,
    name: str | None = None,
    mode: str = "default",
):
    views = await service.list_projects(caller, state=state, owner=owner, name=name, mode=mode)
    return json_response([rules.describe_project(v) for v in views])


@router.post("/projects")
async def create_project(request: Request, service: Service, caller: Caller):
    body = parse_json(ApplicationBody, await request.body())
    project_id, app_id = await service.submit(caller, body.model_dump(exclude_unset=True))
    return json_response({"id": str(project_id), "application": app_id}, 201)


@router.get("/projects/{project_id}")
async def show_project(project_id: str, service: Service, caller: Caller):
    view = await service.get_project(caller, project_id)
    return json_response(rules.describe_project(view))


@router.put("/projects/{project_id}")
async def modify_project(project_id: str, request: Request, service: Service, caller: Caller):
    body = parse_json(ApplicationBody, await request.body())
    fields = body.model_dump(exclude_unset=True)
    project, app_id = await service.submit(caller, fields, project_id=project_id)
    return json_response({"id": str(project), "application": app_id}, 201)


@router.post("/projects/{project_id}/action")
async def project_action(project_id: str, request: Request, service: Service, caller: Caller):
    name, body = _one_action(await request.body(), PROJECT_ACTIONS)
    await service.act(caller, project_id, name, body.reason or "", body.app_id)
    return Response(status_code=200)
