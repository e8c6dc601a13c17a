"""Who is calling: the credentials a token resolves to, and route dependencies.

The authentication middleware resolves the token once; routes declare what they need
with :func:`current_user` or :func:`current_admin` and get typed credentials.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from starlette.requests import Request

from nefos.core import errors


@dataclass(frozen=True, slots=True)
class AccessRule:
    """One request a delegated token may make: ``method`` on a path that ``pattern``
    matches whole (the rule's path below its service's prefix, compiled by identity)."""

    method: str
    pattern: re.Pattern[str]

    def allows(self, method: str, path: str) -> bool:
        return method == self.method and self.pattern.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class Delegation:
    """What a token got from an application credential may do, short of its user:
    its roles, and (when there are any) only the requests its access rules name."""

    credential_id: uuid.UUID
    name: str
    roles: tuple[str, ...]
    unrestricted: bool
    access_rules: tuple[AccessRule, ...] = ()


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
    delegation: Delegation | None = None


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


def token_roles(credentials: Credentials) -> list[str]:
    """The roles a token carries: its application credential's, else the user's."""
    if credentials.delegation is not None:
        return list(credentials.delegation.roles)
    return role_names(credentials.is_admin)


# A token without the member role (an application credential given ``reader`` only)
# reads and does nothing else.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def refusal(credentials: Credentials, method: str, path: str) -> errors.PermissionDenied | None:
    """Why a delegated token may not make this request, or ``None`` if it may."""
    delegation = credentials.delegation
    if delegation is None:
        return None
    rules = delegation.access_rules
    if rules and not any(rule.allows(method, path) for rule in rules):
        return errors.PermissionDenied(
            f"The application credential {delegation.name} does not allow {method} {path}"
        )
    if "member" not in delegation.roles and method not in READ_METHODS:
        return errors.PermissionDenied(
            f"The application credential {delegation.name} only reads (roles: "
            f"{', '.join(delegation.roles)})"
        )
    return None


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
