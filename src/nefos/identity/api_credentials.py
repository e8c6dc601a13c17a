"""Keystone v3 application credentials, access rules and OS-EC2 credentials: parse,
call, render. ``nefos.identity.api`` mounts these routes under ``/identity/v3``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import Credentials, current_user
from nefos.core.body import parse_json
from nefos.core.faults import json_response
from nefos.identity.delegation import ApplicationCredentials, RuleSpec, Shown
from nefos.identity.ec2 import Ec2Credentials, Ec2Key
from nefos.identity.models import AccessRule

router = APIRouter()
Caller = Annotated[Credentials, Depends(current_user)]


async def application_credentials(request: Request) -> ApplicationCredentials:
    return ApplicationCredentials(request.app.state.identity)


async def ec2_credentials(request: Request) -> Ec2Credentials:
    return Ec2Credentials(request.app.state.identity)


AppCreds = Annotated[ApplicationCredentials, Depends(application_credentials)]
Ec2 = Annotated[Ec2Credentials, Depends(ec2_credentials)]


def v3_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/identity/v3"


def keystone_time(moment: dt.datetime | None) -> str | None:
    """As Keystone writes a credential's expiry: microseconds, no zone (it is UTC)."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_expiry(value: str | None) -> dt.datetime | None:
    """ISO 8601, with or without a zone (none means UTC), as Keystone reads it."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise errors.InvalidInput(f"Invalid expires_at: {value!r} is no ISO 8601 time") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RoleRef(Body):
    id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)


class RuleRef(Body):
    id: str | None = Field(default=None, max_length=64)
    service: str | None = Field(default=None, max_length=64)
    method: str | None = Field(default=None, max_length=16)
    path: str | None = Field(default=None, max_length=255)


class NewCredential(Body):
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, max_length=1024)
    secret: str | None = Field(default=None, max_length=4096)
    expires_at: str | None = Field(default=None, max_length=64)
    roles: list[RoleRef] | None = Field(default=None, max_length=16)
    unrestricted: bool = False
    access_rules: list[RuleRef] | None = Field(default=None, max_length=1000)


class NewCredentialRequest(Body):
    application_credential: NewCredential


def _role(name: str) -> dict[str, Any]:
    return {"id": name, "name": name, "domain_id": None}


def _rule(request: Request, rule: AccessRule, linked: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": str(rule.id),
        "service": rule.service,
        "method": rule.method,
        "path": rule.path,
    }
    if linked:
        shown["links"] = {"self": f"{v3_base(request)}/access_rules/{rule.id}"}
    return shown


def _credential(request: Request, shown: Shown, secret: str | None = None) -> dict[str, Any]:
    credential = shown.credential
    document: dict[str, Any] = {
        "id": str(credential.id),
        "name": credential.name,
        "description": credential.description or None,
        "project_id": str(credential.project_id),
        "roles": [_role(name) for name in credential.roles.split(",")],
        "expires_at": keystone_time(credential.expires_at),
        "unrestricted": credential.unrestricted,
        "access_rules": [_rule(request, r) for r in shown.rules],
        "links": {
            "self": f"{v3_base(request)}/users/{credential.user_id}"
            f"/application_credentials/{credential.id}"
        },
    }
    if secret is not None:
        document["secret"] = secret
    return document


def _listing(request: Request, key: str, items: list[Any]) -> Response:
    return json_response(
        {key: items, "links": {"self": str(request.url), "next": None, "previous": None}}
    )


@router.post("/users/{user_id}/application_credentials", status_code=201)
async def create_application_credential(
    user_id: str, request: Request, creds: AppCreds, caller: Caller
) -> Response:
    body = parse_json(NewCredentialRequest, await request.body()).application_credential
    roles = None
    if body.roles is not None:
        roles = [role.name or role.id or "" for role in body.roles]
    rules = [RuleSpec(r.id, r.service, r.method, r.path) for r in body.access_rules or []]
    shown, secret = await creds.create(
        caller,
        user_id,
        body.name,
        description=body.description or "",
        secret=body.secret,
        expires_at=parse_expiry(body.expires_at),
        roles=roles,
        unrestricted=body.unrestricted,
        access_rules=rules,
    )
    return json_response({"application_credential": _credential(request, shown, secret)}, 201)


@router.get("/users/{user_id}/application_credentials")
async def list_application_credentials(
    user_id: str, request: Request, creds: AppCreds, caller: Caller, name: str | None = None
) -> Response:
    found = await creds.listing(caller, user_id, name)
    return _listing(request, "application_credentials", [_credential(request, c) for c in found])


@router.get("/users/{user_id}/application_credentials/{credential_id}")
async def show_application_credential(
    user_id: str, credential_id: str, request: Request, creds: AppCreds, caller: Caller
) -> Response:
    shown = await creds.get(caller, user_id, credential_id)
    return json_response({"application_credential": _credential(request, shown)})


@router.delete("/users/{user_id}/application_credentials/{credential_id}", status_code=204)
async def delete_application_credential(
    user_id: str, credential_id: str, creds: AppCreds, caller: Caller
) -> Response:
    await creds.delete(caller, user_id, credential_id)
    return Response(status_code=204)


@router.get("/users/{user_id}/access_rules")
async def list_access_rules(
    user_id: str, request: Request, creds: AppCreds, caller: Caller
) -> Response:
    rules = await creds.list_rules(caller, user_id)
    return _listing(request, "access_rules", [_rule(request, r, linked=True) for r in rules])


@router.get("/users/{user_id}/access_rules/{rule_id}")
async def show_access_rule(
    user_id: str, rule_id: str, request: Request, creds: AppCreds, caller: Caller
) -> Response:
    rule = await creds.get_rule(caller, user_id, rule_id)
    return json_response({"access_rule": _rule(request, rule, linked=True)})


@router.delete("/users/{user_id}/access_rules/{rule_id}", status_code=204)
async def delete_access_rule(
    user_id: str, rule_id: str, creds: AppCreds, caller: Caller
) -> Response:
    await creds.delete_rule(caller, user_id, rule_id)
    return Response(status_code=204)


# -- OS-EC2 -----------------------------------------------------------------------------


class NewEc2Credential(Body):
    tenant_id: str | None = Field(default=None, max_length=64)


def _ec2(request: Request, key: Ec2Key) -> dict[str, Any]:
    return {
        "user_id": str(key.user_id),
        "tenant_id": str(key.project_id),
        "access": key.access,
        "secret": key.secret,
        "trust_id": None,
        "links": {
            "self": f"{v3_base(request)}/users/{key.user_id}/credentials/OS-EC2/{key.access}"
        },
    }


@router.post("/users/{user_id}/credentials/OS-EC2", status_code=201)
async def create_ec2_credential(
    user_id: str, request: Request, ec2: Ec2, caller: Caller
) -> Response:
    raw = await request.body()
    body = parse_json(NewEc2Credential, raw) if raw.strip() else NewEc2Credential()
    key = await ec2.create(caller, user_id, body.tenant_id)
    return json_response({"credential": _ec2(request, key)}, 201)


@router.get("/users/{user_id}/credentials/OS-EC2")
async def list_ec2_credentials(
    user_id: str, request: Request, ec2: Ec2, caller: Caller
) -> Response:
    keys = await ec2.listing(caller, user_id)
    return _listing(request, "credentials", [_ec2(request, k) for k in keys])


@router.get("/users/{user_id}/credentials/OS-EC2/{access}")
async def show_ec2_credential(
    user_id: str, access: str, request: Request, ec2: Ec2, caller: Caller
) -> Response:
    return json_response({"credential": _ec2(request, await ec2.get(caller, user_id, access))})


@router.delete("/users/{user_id}/credentials/OS-EC2/{access}", status_code=204)
async def delete_ec2_credential(user_id: str, access: str, ec2: Ec2, caller: Caller) -> Response:
    await ec2.delete(caller, user_id, access)
    return Response(status_code=204)
