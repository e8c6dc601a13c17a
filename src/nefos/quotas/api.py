"""Synnefo's quota API under ``/account/v1.0``: resources, quotas, commissions.

Users read their own quotas; services (admin tokens) read everyone's and run the
commission protocol. A service is known by its token's user: that is the ``clientkey``
that owns its serials, so one service cannot resolve another's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import Credentials, current_admin, current_user
from nefos.core.body import parse_json
from nefos.core.faults import SYNNEFO_NAMES, json_response, status_of
from nefos.core.numbers import INT32_MAX, INT64_MAX, INT64_MIN, ascii_int, ascii_uuid
from nefos.quotas.history import History, UsageHistory
from nefos.quotas.models import NO_SOURCE, Holding
from nefos.quotas.project_rules import Actor
from nefos.quotas.resources import describe
from nefos.quotas.service import (
    MAX_QUANTITY,
    Charge,
    Quotas,
    project_holder,
    user_holder,
)

router = APIRouter(prefix="/account/v1.0")


async def quotas(request: Request) -> Quotas:
    return request.app.state.engines.quotas


async def usage_history(request: Request) -> UsageHistory:
    return request.app.state.engines.usage_history


Service = Annotated[Quotas, Depends(quotas)]
HistoryService = Annotated[UsageHistory, Depends(usage_history)]
User_ = Annotated[Credentials, Depends(current_user)]
Admin = Annotated[Credentials, Depends(current_admin)]


def clientkey(caller: Credentials) -> str:
    return str(caller.user_id)


@router.get("/resources")
async def resources(service: Service) -> Response:
    """Public, like Synnefo's: clients learn names and units before they log in."""
    return json_response(
        {
            name: describe(resource, service.default_limit(name))
            for name, resource in service.resources().items()
        }
    )


def _project_id(source: str) -> str:
    return source.removeprefix("project:")


def _quota_entries(holdings: list[Holding]) -> dict[str, dict[str, dict[str, int]]]:
    """Member holdings with their project's, as ``{project: {resource: {...}}}``."""
    projects = {(h.holder, h.resource): h for h in holdings if h.source == NO_SOURCE}
    entries: dict[str, dict[str, dict[str, int]]] = {}
    for h in holdings:
        if h.source == NO_SOURCE or not h.holder.startswith("user:"):
            continue
        project = projects.get((h.source, h.resource))
        entries.setdefault(_project_id(h.source), {})[h.resource] = {
            "limit": h.limit,
            "usage": h.usage_max,
            "pending": h.usage_max - h.usage_min,
            "project_limit": project.limit if project else 0,
            "project_usage": project.usage_max if project else 0,
            "project_pending": project.usage_max - project.usage_min if project else 0,
        }
    return entries


async def _user_quotas(service: Quotas, user_ids: list[str] | None) -> dict[str, Any]:
    holders = [user_holder(u) for u in user_ids] if user_ids is not None else None
    mine = await service.holdings(holders)
    mine = [h for h in mine if h.holder.startswith("user:")]
    sources = sorted({h.source for h in mine})
    projects = await service.holdings(sources) if sources else []
    by_user: dict[str, list[Holding]] = {}
    for h in mine:
        by_user.setdefault(h.holder.removeprefix("user:"), []).append(h)
    return {user: _quota_entries(held + projects) for user, held in by_user.items()}


@router.get("/quotas")
async def user_quotas(service: Service, caller: User_) -> Response:
    per_user = await _user_quotas(service, [str(caller.user_id)])
    return json_response(per_user.get(str(caller.user_id), {}))


@router.get("/service_quotas")
async def service_quotas(service: Service, caller: Admin, user: str | None = None) -> Response:
    return json_response(await _user_quotas(service, [user] if user else None))


@router.get("/service_project_quotas")
async def service_project_quotas(
    service: Service, caller: Admin, project: str | None = None
) -> Response:
    holders = [project_holder(project)] if project else None
    found: dict[str, dict[str, dict[str, int]]] = {}
    for h in await service.holdings(holders, [NO_SOURCE]):
        if h.holder.startswith("project:"):
            found.setdefault(_project_id(h.holder), {})[h.resource] = {
                "limit": h.limit,
                "usage": h.usage_max,
                "pending": h.usage_max - h.usage_min,
            }
    return json_response(found)


# -- usage over time ---------------------------------------------------------------------


def _moment(value: str | None, name: str) -> dt.datetime | None:
    """An ISO 8601 time; one without a zone is UTC, as every time nefos writes."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise errors.InvalidInput(
            f"{name} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z): {value!r}",
            data={"field": name},
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _uuid_param(value: str | None, name: str) -> uuid.UUID | None:
    if value is None:
        return None
    found = ascii_uuid(value)
    if found is None:
        raise errors.InvalidInput(f"{name} is not a UUID: {value!r}", data={"field": name})
    return found


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _render_history(history: History, service: Quotas) -> dict[str, Any]:
    units = {name: resource.unit for name, resource in service.resources().items()}
    return {
        "since": _iso(history.since),
        "until": _iso(history.until),
        "step": history.step,
        "kept_since": _iso(history.kept_since) if history.kept_since else None,
        "times": history.times,
        "series": [
            {
                "project": s.project,
                "holder": s.holder,
                "resource": s.resource,
                "unit": units.get(s.resource, ""),
                "limit": s.limit,
                "usage": s.usage,
                "peak": s.peak,
            }
            for s in history.series
        ],
    }


@router.get("/usage")
async def usage(
    history: HistoryService,
    service: Service,
    caller: User_,
    resource: str | None = None,
    project: str | None = None,
    user: str | None = None,
    scope: str = "user",
    since: str | None = None,
    until: str | None = None,
    step: str | None = None,
) -> Response:
    """Usage over time as series to plot (docs/identity.md, "Usage over time")."""
    if scope not in ("user", "project"):
        raise errors.InvalidInput("scope is user or project", data={"field": "scope"})
    seconds = None
    if step is not None:
        seconds = ascii_int(step, 1, INT32_MAX)
        if seconds is None:
            raise errors.InvalidInput(
                f"step is a whole number of seconds: {step!r}", data={"field": "step"}
            )
    found = await history.history(
        Actor(caller.user_id, caller.is_admin),
        scope="project" if scope == "project" else "user",
        project=_uuid_param(project, "project"),
        user=_uuid_param(user, "user"),
        resource=resource,
        since=_moment(since, "since"),
        until=_moment(until, "until"),
        step=seconds,
    )
    return json_response(_render_history(found, service))


# -- commissions ------------------------------------------------------------------------


class ProvisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holder: str = Field(min_length=1, max_length=80)
    source: str | None = Field(default=None, max_length=80)
    resource: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY, strict=True)


class CommissionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = False
    auto_accept: bool = False
    name: str = Field(default="", max_length=255)
    provisions: list[ProvisionBody] = Field(min_length=1)


def _capped(items: list[Any], most: int, what: str) -> None:
    """A request's list within its setting (``[limits]``), checked before any work."""
    if len(items) > most:
        raise errors.InvalidInput(f"At most {most} {what} in one request")


def _holder_ref(value: str, default_kind: str) -> str:
    """``user:<uuid>``/``project:<uuid>``, or a bare UUID of the kind its place implies."""
    if value.startswith(("user:", "project:")):
        return value
    if ascii_uuid(value) is None:
        raise errors.InvalidInput(f"Bad holder {value!r}: want user:<uuid> or project:<uuid>")
    return f"{default_kind}:{value}"


def _charge(p: ProvisionBody) -> Charge:
    source = _holder_ref(p.source, "project") if p.source else None
    holder = _holder_ref(p.holder, "user" if source else "project")
    return Charge(holder, source, p.resource, p.quantity)


@router.post("/commissions", status_code=201)
async def issue(request: Request, service: Service, caller: Admin) -> Response:
    body = parse_json(CommissionBody, await request.body())
    _capped(body.provisions, request.app.state.settings.limits.quota_provisions, "provisions")
    serial = await service.issue(
        clientkey(caller),
        [_charge(p) for p in body.provisions],
        name=body.name,
        force=body.force,
        auto_accept=body.auto_accept,
    )
    return json_response({"serial": serial}, 201)


@router.get("/commissions")
async def pending(service: Service, caller: Admin) -> Response:
    return json_response(await service.pending(clientkey(caller)))


def _serial(value: str) -> int:
    """A serial in the path: ASCII digits within the column, else no such commission."""
    serial = ascii_int(value, 1, INT32_MAX)
    if serial is None:
        raise errors.NotFound(f"No commission {value} of this service")
    return serial


@router.get("/commissions/{serial}")
async def show(serial: str, service: Service, caller: Admin) -> Response:
    commission, provisions = await service.commission(clientkey(caller), _serial(serial))
    return json_response(
        {
            "serial": commission.serial,
            "name": commission.name,
            "issue_time": commission.issue_time.isoformat().replace("+00:00", "Z"),
            "state": commission.state,
            "provisions": [
                {
                    "holder": p.holder,
                    "source": p.source or None,
                    "resource": p.resource,
                    "quantity": p.quantity,
                }
                for p in provisions
            ],
        }
    )


@router.post("/commissions/{serial}/action")
async def resolve_one(serial: str, request: Request, service: Service, caller: Admin) -> Response:
    number = _serial(serial)
    body = parse_json(dict[str, Any], await request.body())
    if set(body) == {"accept"}:
        await service.accept(clientkey(caller), number)
    elif set(body) == {"reject"}:
        await service.reject(clientkey(caller), number)
    else:
        raise errors.InvalidInput('Give exactly one of {"accept": ""} or {"reject": ""}')
    return Response(status_code=200)


# A serial the answer can echo: past 64 bits no JSON encoder here writes it.
Serial = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


class BulkAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept: list[Serial] = Field(default_factory=list)
    reject: list[Serial] = Field(default_factory=list)


def _fault(error: errors.NefosError) -> dict[str, Any]:
    status = status_of(error)
    return {
        SYNNEFO_NAMES.get(status, "internalServerError"): {"code": status, "message": error.message}
    }


@router.post("/commissions/action")
async def resolve_many(request: Request, service: Service, caller: Admin) -> Response:
    body = parse_json(BulkAction, await request.body())
    most = request.app.state.settings.limits.quota_serials
    _capped(body.accept, most, "serials to accept")
    _capped(body.reject, most, "serials to reject")
    accepted, rejected, failed = await service.resolve(clientkey(caller), body.accept, body.reject)
    return json_response(
        {
            "accepted": accepted,
            "rejected": rejected,
            "failed": [[serial, _fault(problem)] for serial, problem in failed],
        }
    )
