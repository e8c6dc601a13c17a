"""Accounts people make themselves, for every client (the web UI is one): sign-up,
e-mail verification, password reset, and moderation by administrators. Mounted by
``nefos.identity.api`` under ``/account/v1.0``, in Synnefo's fault format; a refused
field names itself in the fault's ``data.field``. docs/identity.md lists the calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from nefos.core.auth import Credentials, client_address, current_user
from nefos.core.body import parse_json
from nefos.core.faults import json_response
from nefos.identity.accounts import Accounts
from nefos.identity.models import User

router = APIRouter()


async def accounts(request: Request) -> Accounts:
    return request.app.state.accounts


Service = Annotated[Accounts, Depends(accounts)]
Caller = Annotated[Credentials, Depends(current_user)]


class Body(BaseModel):
    # Missing fields arrive empty, so the service names the one at fault.
    model_config = ConfigDict(extra="ignore")


class SignUp(Body):
    email: str = Field(default="", max_length=1024)
    name: str = Field(default="", max_length=1024)
    password: str = Field(default="", max_length=4096)
    accept_terms: str | None = Field(default=None, max_length=64)


class TokenBody(Body):
    token: str = Field(default="", max_length=512)


class EmailBody(Body):
    email: str = Field(default="", max_length=1024)


class NewPassword(Body):
    token: str = Field(default="", max_length=512)
    password: str = Field(default="", max_length=4096)


class Rejection(Body):
    reason: str = Field(default="", max_length=4096)


def _time(user: User) -> str:
    return user.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "name": user.display_name,
        "state": user.signup_state,
        "active": user.is_active,
        "verified": user.is_verified,
        "terms_version": user.terms_version,
        "created": _time(user),
    }


@router.get("/signup")
async def signup_info(service: Service) -> Response:
    """What a sign-up form needs: whether it is open, the terms, the password rule."""
    terms = service.terms()
    return json_response(
        {
            "signup": {
                "enabled": service.conf.enabled and "local" in service.settings.auth_providers,
                "terms": {"version": terms.version, "text": terms.text} if terms else None,
                "password_min_length": service.conf.password_min_length,
                "verify_hours": service.conf.verify_hours,
                "reset_minutes": service.conf.reset_minutes,
                "moderated": not service.settings.signup_auto_activate,
            }
        }
    )


@router.post("/signup", status_code=202)
async def signup(request: Request, service: Service) -> Response:
    body = parse_json(SignUp, await request.body())
    done = await service.sign_up(
        body.email, body.name, body.password, body.accept_terms, client_address(request)
    )
    return json_response({"user": _user(done.user), "mail_sent": done.mail_sent}, 202)


@router.post("/signup/verify")
async def verify(request: Request, service: Service) -> Response:
    body = parse_json(TokenBody, await request.body())
    return json_response({"user": _user(await service.verify(body.token))})


@router.post("/signup/resend", status_code=202)
async def resend(request: Request, service: Service) -> Response:
    body = parse_json(EmailBody, await request.body())
    await service.resend(body.email, client_address(request))
    return json_response({"sent": "if this address has an account that waits for it"}, 202)


@router.post("/password/reset", status_code=202)
async def request_reset(request: Request, service: Service) -> Response:
    body = parse_json(EmailBody, await request.body())
    await service.request_reset(body.email, client_address(request))
    return json_response({"sent": "if this address has an account with a password"}, 202)


@router.post("/password/reset/confirm")
async def reset(request: Request, service: Service) -> Response:
    body = parse_json(NewPassword, await request.body())
    return json_response({"user": _user(await service.reset(body.token, body.password))})


@router.get("/users/pending")
async def pending(service: Service, caller: Caller) -> Response:
    return json_response({"users": [_user(u) for u in await service.pending(caller)]})


@router.post("/users/{user}/activate")
async def activate(user: str, service: Service, caller: Caller) -> Response:
    done = await service.activate(caller, user)
    return json_response({"user": _user(done.user), "mail_sent": done.mail_sent})


@router.post("/users/{user}/reject")
async def reject(user: str, request: Request, service: Service, caller: Caller) -> Response:
    raw = await request.body()
    body = parse_json(Rejection, raw) if raw.strip() else Rejection()
    done = await service.reject(caller, user, body.reason)
    return json_response({"user": _user(done.user), "mail_sent": done.mail_sent})
