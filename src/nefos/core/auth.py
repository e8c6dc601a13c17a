"""Who is calling: the credentials a token resolves to, and route dependencies.

The authentication middleware resolves the token once; routes declare what they need
with :func:`current_user` or :func:`current_admin` and get typed credentials.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from starlette.requests import Request

from nefos.core import errors


@dataclass(frozen=True, slots=True)
class Credentials:
    user_id: uuid.UUID
    email: str
    display_name: str
    is_admin: bool
    project_id: uuid.UUID
    project_name: str
    token_digest: str
    methods: tuple[str, ...]
    audit_id: str
    issued_at: dt.datetime
    expires_at: dt.datetime


# Keystone's default roles and what each implies: a token lists a role's implied roles
# too, so a service whose policy asks for ``reader`` lets every member in.
IMPLIED_ROLES: dict[str, tuple[str, ...]] = {"admin": ("member",), "member": ("reader",)}


def role_names(is_admin: bool) -> list[str]:
    """Keystone-style roles: everyone is a ``member``, admins also ``admin``; then the
    roles those imply, as Keystone lists them in a token."""
    names = ["admin"] if is_admin else ["member"]
    for name in names:  # grows as it goes: the implied roles' own implications too
        names.extend(n for n in IMPLIED_ROLES.get(name, ()) if n not in names)
    return names


async def current_user(request: Request) -> Credentials:
    credentials = request.scope.get("nefos.credentials")
    if credentials is None:
        raise request.scope.get("nefos.auth_error") or errors.NotAuthenticated(
            "Authentication required: pass a valid token in X-Auth-Token"
        )
    return credentials


async def current_admin(request: Request) -> Credentials:
    credentials = await current_user(request)
    if not credentials.is_admin:
        raise errors.PermissionDenied("This needs the admin role")
    return credentials


def client_address(request: Request) -> str:
    """The caller's address, as the server saw it: uvicorn puts the client from
    ``X-Forwarded-For`` there only for proxies in its ``forwarded_allow_ips``."""
    return request.client.host if request.client else ""
