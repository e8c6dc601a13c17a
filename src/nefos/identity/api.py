"""Keystone v2.0 and v3 token APIs and Synnefo's account API: parse, call, render."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import (
    IMPLIED_ROLES,
    Credentials,
    client_address,
    current_admin,
    current_user,
    role_names,
    token_roles,
)
from nefos.core.body import parse_json
from nefos.core.faults import json_response
from nefos.identity import api_accounts, api_credentials
from nefos.identity.delegation import APPLICATION_CREDENTIAL
from nefos.identity.logins import (
    CredentialProof,
    Logins,
    PasswordProof,
    ScopeAsked,
    TokenAsked,
    TokenProof,
)
from nefos.identity.models import Project, User
from nefos.identity.service import Identity, parse_uuid

DOMAIN = {"id": "default", "name": "Default"}


async def identity(request: Request) -> Identity:
    return request.app.state.identity


Service = Annotated[Identity, Depends(identity)]
User_ = Annotated[Credentials, Depends(current_user)]


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- Keystone v2.0, as Synnefo's Astakos serves it to kamaki ---------------------------

v2 = APIRouter(prefix="/identity/v2.0")


class V2TokenCredentials(Body):
    id: str = Field(max_length=512)


class V2PasswordCredentials(Body):
    username: str = Field(max_length=512)
    password: str = Field(max_length=4096)


class V2Auth(Body):
    token: V2TokenCredentials | None = None
    passwordCredentials: V2PasswordCredentials | None = None
    tenantName: str | None = None
    tenantId: str | None = None


class V2TokenRequest(Body):
    auth: V2Auth


def _v2_access(service: Identity, token: str, credentials: Credentials) -> dict[str, Any]:
    roles = [{"id": name, "name": name} for name in token_roles(credentials)]
    return {
        "access": {
            "token": {
                "id": token,
                "expires": iso(credentials.expires_at),
                "tenant": {"id": str(credentials.project_id), "name": credentials.project_name},
            },
            "user": {
                "id": str(credentials.user_id),
                "name": credentials.display_name,
                "roles": roles,
                "roles_links": [],
                "projects": [str(credentials.project_id)],
            },
            "serviceCatalog": service.catalog.v2(),
        }
    }


@v2.post("/tokens")
async def v2_issue(request: Request, service: Service) -> Response:
    """Synnefo's rule: the answer carries the token the caller proved, not a new one."""
    raw = await request.body()
    if not raw.strip():
        return json_response({"access": {"serviceCatalog": service.catalog.v2()}})
    body = parse_json(V2TokenRequest, raw)
    auth = body.auth
    tenant = auth.tenantName or auth.tenantId
    if auth.token is not None:
        credentials = await service.authenticate(auth.token.id)
        token = auth.token.id
    elif auth.passwordCredentials is not None:
        pc = auth.passwordCredentials
        user = await service.password_login(pc.username, pc.password, client_address(request))
        try:
            credentials = await service.authenticate(pc.password)
            token = pc.password
        except errors.NotAuthenticated:
            issued = await service.issue_token(user, methods=("password",))
            token = issued.token
            credentials = await service.authenticate(token)
    else:
        raise errors.InvalidInput("Give auth.token or auth.passwordCredentials")
    if tenant is not None and tenant != str(credentials.user_id):
        raise errors.InvalidInput(f"Project {tenant} is not the user's own ({credentials.user_id})")
    return json_response(_v2_access(service, token, credentials))


@v2.get("/tokens/{token}")
async def v2_validate(request: Request) -> Response:
    """Every service's token check: a hot path, so it reads the request itself rather
    than have FastAPI solve parameters."""
    service: Identity = request.app.state.identity
    token = request.path_params["token"]
    belongsTo = request.query_params.get("belongsTo")
    try:
        credentials = await service.authenticate(token)
    except errors.NotAuthenticated as exc:
        raise errors.NotFound(exc.message) from None
    if belongsTo is not None and belongsTo != str(credentials.project_id):
        raise errors.NotFound(f"The token does not belong to project {belongsTo}")
    return json_response(_v2_access(service, token, credentials))


# -- Keystone v3 ------------------------------------------------------------------------

v3 = APIRouter(prefix="/identity/v3")


class V3Domain(Body):
    id: str | None = None
    name: str | None = None


class V3PasswordUser(Body):
    id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    domain: V3Domain | None = None
    password: str = Field(max_length=4096)


class V3Password(Body):
    user: V3PasswordUser


class V3TokenMethod(Body):
    id: str = Field(max_length=512)


class V3CredentialUser(Body):
    id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    domain: V3Domain | None = None


class V3ApplicationCredential(Body):
    id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=255)
    secret: str = Field(max_length=4096)
    user: V3CredentialUser | None = None


class V3Identity(Body):
    methods: list[str]
    password: V3Password | None = None
    token: V3TokenMethod | None = None
    application_credential: V3ApplicationCredential | None = None


class V3Project(Body):
    id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    domain: V3Domain | None = None


class V3Scope(Body):
    project: V3Project | None = None
    domain: V3Domain | None = None
    system: dict[str, Any] | None = None


class V3Auth(Body):
    identity: V3Identity
    scope: V3Scope | Literal["unscoped"] | None = None


class V3TokenRequest(Body):
    auth: V3Auth


SUPPORTED_METHODS = ("password", "token", APPLICATION_CREDENTIAL)


def _v3_token(
    service: Identity,
    user: User | Credentials,
    project_id: uuid.UUID,
    project_name: str,
    methods: list[str],
    audit_ids: list[str],
    issued_at: dt.datetime,
    expires_at: dt.datetime,
    with_catalog: bool = True,
) -> dict[str, Any]:
    user_id = user.id if isinstance(user, User) else user.user_id
    names = role_names(user.is_admin) if isinstance(user, User) else token_roles(user)
    roles = [{"id": name, "name": name, "domain_id": None} for name in names]
    token: dict[str, Any] = {
        "methods": methods,
        "user": {
            "id": str(user_id),
            "name": user.email,
            "domain": DOMAIN,
            "password_expires_at": None,
        },
        "audit_ids": audit_ids,
        "issued_at": iso(issued_at),
        "expires_at": iso(expires_at),
        "project": {"id": str(project_id), "name": project_name, "domain": DOMAIN},
        "is_domain": False,
        "roles": roles,
    }
    delegation = user.delegation if isinstance(user, Credentials) else None
    if delegation is not None:
        token["application_credential"] = {
            "id": str(delegation.credential_id),
            "name": delegation.name,
            "restricted": not delegation.unrestricted,
        }
    if with_catalog:
        token["catalog"] = service.catalog.v3(project_id)
    return {"token": token}


def _v3_credentials_token(
    service: Identity, credentials: Credentials, with_catalog: bool
) -> dict[str, Any]:
    return _v3_token(
        service,
        credentials,
        credentials.project_id,
        credentials.project_name,
        list(credentials.methods),
        [credentials.audit_id],
        credentials.issued_at,
        credentials.expires_at,
        with_catalog=with_catalog,
    )


def _foreign(domain: V3Domain | None) -> bool:
    """A domain that is not nefos's one (id 'default', name 'Default')."""
    return domain is not None and (
        domain.id not in (None, "default") or domain.name not in (None, "Default")
    )


def _check_domain(domain: V3Domain | None) -> None:
    if _foreign(domain):
        raise errors.NotAuthenticated(
            "Unknown domain: nefos has one domain, id 'default', name 'Default'"
        )


def _token_asked(request: Request, body: V3TokenRequest) -> TokenAsked:
    """The body as a typed call, refused here where Keystone refuses it before it
    looks at any user (the scope is checked after the proof, in the service)."""
    ident = body.auth.identity
    if not ident.methods:
        raise errors.InvalidInput("auth.identity.methods is empty")
    unknown = [m for m in ident.methods if m not in SUPPORTED_METHODS]
    if unknown:
        raise errors.NotAuthenticated(f"Unsupported authentication method: {', '.join(unknown)}")
    proof: PasswordProof | TokenProof | CredentialProof
    if APPLICATION_CREDENTIAL in ident.methods:
        # Keystone's rule: the credential fixes the scope, so a request may not ask one.
        given = ident.application_credential
        if given is None:
            raise errors.InvalidInput("auth.identity.application_credential is missing")
        if body.auth.scope is not None:
            raise errors.NotAuthenticated("An application credential may not request a scope")
        user_ref = None
        if given.user is not None:
            _check_domain(given.user.domain)
            user_ref = given.user.id or given.user.name
        proof = CredentialProof(given.secret, given.id, given.name, user_ref)
    elif "password" in ident.methods:
        if ident.password is None:
            raise errors.InvalidInput("auth.identity.password is missing")
        user = ident.password.user
        _check_domain(user.domain)
        ref = user.id or user.name
        if not ref:
            raise errors.InvalidInput("Give the user's id or name")
        proof = PasswordProof(ref, user.password)
    else:
        if ident.token is None:
            raise errors.InvalidInput("auth.identity.token is missing")
        proof = TokenProof(ident.token.id)
    scope = body.auth.scope if isinstance(body.auth.scope, V3Scope) else None
    wanted = scope.project if scope is not None else None
    asked = ScopeAsked(
        project=wanted is not None,
        project_id=wanted.id if wanted else None,
        project_name=wanted.name if wanted else None,
        unscopable=scope is not None and (scope.domain is not None or scope.system is not None),
        foreign_domain=wanted is not None and _foreign(wanted.domain),
    )
    return TokenAsked(tuple(ident.methods), proof, asked, client_address(request))


@v3.post("/auth/tokens", status_code=201)
async def v3_issue(request: Request, service: Service, nocatalog: str | None = None) -> Response:
    asked = _token_asked(request, parse_json(V3TokenRequest, await request.body()))
    issued = await Logins(service).issue_v3(asked)
    document = _v3_token(
        service,
        issued.subject,
        issued.project_id,
        issued.project_name,
        issued.methods,
        issued.audit_ids,
        issued.issued_at,
        issued.expires_at,
        with_catalog=nocatalog is None,
    )
    return json_response(document, 201, {"X-Subject-Token": issued.token})


async def _subject(
    service: Identity, caller: Credentials, subject_token: str | None
) -> Credentials:
    if not subject_token:
        raise errors.InvalidInput("X-Subject-Token header is required")
    try:
        subject = await service.authenticate(subject_token)
    except errors.NotAuthenticated as exc:
        raise errors.NotFound(f"Could not find token: {exc.message}") from None
    if subject.user_id != caller.user_id and not caller.is_admin:
        raise errors.PermissionDenied("Only the token's owner or an admin may see it")
    return subject


SubjectToken = Annotated[str | None, Header(alias="X-Subject-Token")]


@v3.get("/auth/tokens")
async def v3_validate(request: Request) -> Response:
    """Every service's token check (hot path: the request is read directly)."""
    service: Identity = request.app.state.identity
    subject_token = request.headers.get("x-subject-token")
    subject = await _subject(service, await current_user(request), subject_token)
    document = _v3_credentials_token(
        service, subject, with_catalog="nocatalog" not in request.query_params
    )
    return json_response(document, 200, {"X-Subject-Token": subject_token or ""})


@v3.head("/auth/tokens")
async def v3_check(service: Service, caller: User_, subject_token: SubjectToken = None) -> Response:
    await _subject(service, caller, subject_token)
    return Response(status_code=200)


@v3.delete("/auth/tokens", status_code=204)
async def v3_revoke(
    service: Service, caller: User_, subject_token: SubjectToken = None
) -> Response:
    await _subject(service, caller, subject_token)
    assert subject_token is not None
    await service.revoke(subject_token)
    return Response(status_code=204)


def _v3_project(request: Request, project: Project) -> dict[str, Any]:
    return {
        "id": str(project.id),
        "name": project.name,
        "description": project.description,
        "domain_id": DOMAIN["id"],
        "parent_id": DOMAIN["id"],
        "enabled": project.state == "active",
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": {"self": f"{_v3_base(request)}/projects/{project.id}"},
    }


def _v3_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/identity/v3"


def _v3_domain(request: Request) -> dict[str, Any]:
    return {
        **DOMAIN,
        "description": "The only domain of nefos",
        "enabled": True,
        "tags": [],
        "options": {},
        "links": {"self": f"{_v3_base(request)}/domains/default"},
    }


def _self_or_admin(caller: Credentials, user_id: str) -> None:
    """A user is named by id, or by e-mail as ``openstack user show`` may name it."""
    if user_id not in (str(caller.user_id), caller.email) and not caller.is_admin:
        raise errors.PermissionDenied("Only the user or an admin may see this")


@v3.get("/auth/projects")
async def v3_auth_projects(request: Request, service: Service, caller: User_) -> Response:
    projects = await service.projects_of(caller.user_id)
    return json_response(
        {
            "projects": [_v3_project(request, p) for p in projects],
            "links": {"self": f"{_v3_base(request)}/auth/projects", "next": None, "previous": None},
        }
    )


@v3.get("/users/{user_id}/projects")
async def v3_user_projects(
    user_id: str, request: Request, service: Service, caller: User_
) -> Response:
    _self_or_admin(caller, user_id)
    user = await service.get_user(user_id)
    projects = await service.projects_of(user.id)
    return json_response(
        {
            "projects": [_v3_project(request, p) for p in projects],
            "links": {"self": str(request.url), "next": None, "previous": None},
        }
    )


def _v3_user(request: Request, user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "name": user.email,
        "email": user.email,
        "description": user.display_name,
        "domain_id": DOMAIN["id"],
        "default_project_id": str(user.system_project_id),
        "enabled": user.is_active,
        "password_expires_at": None,
        "options": {},
        "links": {"self": f"{_v3_base(request)}/users/{user.id}"},
    }


def _flag(value: str | None) -> bool | None:
    """Keystone's reading of a boolean filter: ``0`` and ``false`` are false, all else
    true."""
    if value is None:
        return None
    return value.strip().lower() not in ("0", "false")


def _v3_listing(request: Request, key: str, items: list[Any], truncated: bool) -> Response:
    document: dict[str, Any] = {
        key: items,
        "links": {"self": str(request.url), "next": None, "previous": None},
    }
    if truncated:
        document["truncated"] = True
    return json_response(document)


Admin = Annotated[Credentials, Depends(current_admin)]


@v3.get("/projects")
async def v3_projects(
    request: Request,
    service: Service,
    caller: Admin,
    name: str | None = None,
    domain_id: str | None = None,
    parent_id: str | None = None,
    enabled: str | None = None,
    is_domain: str | None = None,
) -> Response:
    """Keystone's default policy: listing every project is for admins; others list
    theirs at /users/{id}/projects or /auth/projects. nefos has one domain, the parent
    of every project, and no project is a domain."""
    if (
        domain_id not in (None, DOMAIN["id"])
        or parent_id not in (None, DOMAIN["id"])
        or _flag(is_domain)
    ):
        return _v3_listing(request, "projects", [], False)
    projects, truncated = await service.list_projects(name, _flag(enabled))
    return _v3_listing(request, "projects", [_v3_project(request, p) for p in projects], truncated)


@v3.get("/users")
async def v3_users(
    request: Request,
    service: Service,
    caller: Admin,
    name: str | None = None,
    domain_id: str | None = None,
    enabled: str | None = None,
) -> Response:
    """Admins only, as Keystone's default policy; a user's name is their e-mail."""
    if domain_id not in (None, DOMAIN["id"]):
        return _v3_listing(request, "users", [], False)
    users, truncated = await service.find_users(name, _flag(enabled))
    return _v3_listing(request, "users", [_v3_user(request, u) for u in users], truncated)


@v3.get("/users/{user_id}")
async def v3_user(user_id: str, request: Request, service: Service, caller: User_) -> Response:
    _self_or_admin(caller, user_id)
    user = await service.get_user(user_id)
    return json_response({"user": _v3_user(request, user)})


@v3.get("/projects/{project_id}")
async def v3_project(
    project_id: str, request: Request, service: Service, caller: User_
) -> Response:
    mine = await service.projects_of(caller.user_id)
    # By id, or by name among the caller's own (what ``project show NAME`` asks first).
    wanted = next((p for p in mine if project_id in (str(p.id), p.name)), None)
    if wanted is None and caller.is_admin:
        parsed = parse_uuid(project_id)
        wanted = await service.get_project(parsed) if parsed else None
    if wanted is None:
        raise errors.NotFound(f"Could not find project: {project_id}")
    return json_response({"project": _v3_project(request, wanted)})


ROLE_DESCRIPTIONS = {
    "admin": "Administers the whole cloud",
    "member": "Uses the projects it belongs to",
    "reader": "Reads what its projects hold",
}


def _v3_role_ref(request: Request, name: str) -> dict[str, Any]:
    return {"id": name, "name": name, "links": {"self": f"{_v3_base(request)}/roles/{name}"}}


def _v3_role(request: Request, name: str) -> dict[str, Any]:
    return {
        **_v3_role_ref(request, name),
        "domain_id": None,
        "description": ROLE_DESCRIPTIONS[name],
        "options": {"immutable": True},
    }


@v3.get("/roles")
async def v3_roles(request: Request, caller: Admin, name: str | None = None) -> Response:
    names = [n for n in ROLE_DESCRIPTIONS if name is None or n == name]
    return _v3_listing(request, "roles", [_v3_role(request, n) for n in names], False)


@v3.get("/roles/{role_id}")
async def v3_role(role_id: str, request: Request, caller: Admin) -> Response:
    if role_id not in ROLE_DESCRIPTIONS:
        raise errors.NotFound(f"Could not find role: {role_id}")
    return json_response({"role": _v3_role(request, role_id)})


@v3.get("/role_inferences")
async def v3_role_inferences(request: Request, caller: Admin) -> Response:
    inferences = [
        {
            "prior_role": _v3_role_ref(request, prior),
            "implies": [_v3_role_ref(request, n) for n in implied],
        }
        for prior, implied in IMPLIED_ROLES.items()
    ]
    return json_response({"role_inferences": inferences, "links": {"self": str(request.url)}})


@v3.get("/auth/domains")
async def v3_auth_domains(request: Request, caller: User_) -> Response:
    return json_response({"domains": [_v3_domain(request)], "links": {}})


@v3.get("/domains/{domain_id}")
async def v3_domain(domain_id: str, request: Request, caller: User_) -> Response:
    if domain_id != DOMAIN["id"]:
        raise errors.NotFound(f"Could not find domain: {domain_id}")
    return json_response({"domain": _v3_domain(request)})


@v3.get("/auth/catalog")
async def v3_catalog(service: Service, caller: User_) -> Response:
    return json_response({"catalog": service.catalog.v3(caller.project_id), "links": {}})


# -- Synnefo's account API --------------------------------------------------------------

account = APIRouter(prefix="/account/v1.0")


class UserCatalogRequest(Body):
    uuids: list[str] | None = None
    displaynames: list[str] | None = None

    def capped(self, most: int) -> tuple[list[str], list[str]]:
        """Both lists, each within ``[limits] user_catalog_names``; InvalidInput if not."""
        uuids, names = self.uuids or [], self.displaynames or []
        if len(uuids) > most or len(names) > most:
            raise errors.InvalidInput(f"At most {most} uuids and {most} displaynames")
        return uuids, names


@account.post("/user_catalogs")
async def user_catalogs(request: Request, service: Service, caller: User_) -> Response:
    body = parse_json(UserCatalogRequest, await request.body())
    uuids, names = body.capped(request.app.state.settings.limits.user_catalog_names)
    by_id, by_name = await service.user_catalogs(uuids, names)
    return json_response({"uuid_catalog": by_id, "displayname_catalog": by_name})


@account.post("/service/user_catalogs")
async def service_user_catalogs(
    request: Request,
    service: Service,
    caller: Annotated[Credentials, Depends(current_admin)],
) -> Response:
    """For services: ``null`` lists mean every user."""
    body = parse_json(UserCatalogRequest, await request.body())
    body.capped(request.app.state.settings.limits.user_catalog_names)
    by_id, by_name = await service.user_catalogs(body.uuids, body.displaynames)
    return json_response({"uuid_catalog": by_id, "displayname_catalog": by_name})


@account.post("/feedback")
async def feedback(request: Request, service: Service, caller: User_) -> Response:
    """Synnefo's clients send a form; JSON is taken too."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        fields = parse_json(dict[str, str], await request.body())
    else:
        form = await request.form()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
    message = fields.get("feedback_msg")
    if message is None:
        raise errors.InvalidInput("feedback_msg is required")
    await service.add_feedback(caller.user_id, message, fields.get("feedback_data", ""))
    return Response(status_code=200)


# Application credentials, access rules, EC2 credentials: in their own module, under
# this prefix.
v3.include_router(api_credentials.router)
# Sign-up, verification, password reset and moderation: in their own module.
account.include_router(api_accounts.router)
