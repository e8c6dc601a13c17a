"""The object-store API: OpenStack Swift's, with Pithos's extensions (spec §1).

``/object-store/v1/<account>[/<container>[/<object>]]``; the account is the owner's
UUID. Names come from the raw request path, so bytes that are not UTF-8 or a ``%00`` are
refused rather than silently replaced. Errors are plain text with the spec's status
codes (``faults.swift_fault``).

This module routes: it parses the path and hands the call to its level's method table,
whose handlers live in ``api_account``, ``api_container``, ``api_object_read`` and
``api_object_write`` (large objects in ``api_large``; Swift's bulk operations in
``api_bulk``; what all share in ``swift``). It
also serves TempAuth login, public links and ``/info``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.blocks import BLOCK_SIZE
from nefos.core import errors, http
from nefos.core.auth import client_address
from nefos.core.dialects import public_path
from nefos.core.faults import json_response
from nefos.storage.api_account import account_forbidden, account_get, account_head, account_post
from nefos.storage.api_bulk import bulk_delete, extract_archive
from nefos.storage.api_container import (
    container_delete,
    container_get,
    container_head,
    container_post,
    container_put,
)
from nefos.storage.api_large import body_of
from nefos.storage.api_object_read import object_headers, object_read, serve
from nefos.storage.api_object_write import object_copy_move, object_delete, object_post, object_put
from nefos.storage.dialect import TABLE as DIALECT
from nefos.storage.records import (
    MAX_CONTAINER_NAME,
    MAX_META_KEY,
    MAX_META_VALUE,
    MAX_OBJECT_NAME,
)
from nefos.storage.service import Namespace, check_container_name, check_object_name
from nefos.storage.swift import (
    HASH_ALGORITHM,
    LISTING_LIMIT,
    MAX_BULK_DELETES,
    MAX_FILE_SIZE,
    MAX_MANIFEST_BODY,
    MAX_META_HEADERS,
    MAX_META_OVERALL_SIZE,
    PREFIX,
    PUBLIC_PREFIX,
    STORAGE_POLICY,
    Call,
    render_listing,
    swift_text,
)

OBJECT_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "MOVE"]
EMPTY_TYPE = "text/html; charset=UTF-8"

router = APIRouter()


# -- the path, login and dispatch ------------------------------------------------------


def _split_path(request: Request) -> tuple[str, str | None, str | None]:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0][len(PREFIX) + 1 :]
    account, _, rest = path.partition("/")
    container, _, name = rest.partition("/")
    if not account or (name and not container):  # Swift: an empty part is a bad path
        raise errors.InvalidInput("Invalid path: /<account>[/<container>[/<object>]]")
    try:
        return (
            http.decode_segment(account, "Account"),
            http.decode_segment(container, "Container name") if container else None,
            http.decode_segment(name, "Object name") if name else None,
        )
    except errors.InvalidInput as refused:  # not UTF-8, or a NUL: the dialect's words
        if DIALECT.pick(request, "bad_name_status") == 400:
            raise
        raise errors.PreconditionFailed(swift_text("bad_name")) from refused


async def root(request: Request) -> Response:
    """TempAuth-style login (``X-Auth-User``/``X-Auth-Key`` = e-mail or UUID / API
    token or password), or, with a token, the accounts that share with the caller."""
    user = request.headers.get("x-auth-user") or request.headers.get("x-storage-user")
    key = request.headers.get("x-auth-key") or request.headers.get("x-storage-pass")
    identity = request.app.state.identity
    settings = request.app.state.settings
    if user is not None or key is not None:
        if not user or not key:
            raise errors.NotAuthenticated("Give both X-Auth-User and X-Auth-Key")
        found = await identity.password_login(user.split(":")[-1], key, client_address(request))
        try:
            credentials = await identity.authenticate(key)
            token = key
        except errors.NotAuthenticated:
            issued = await identity.issue_token(found, methods=("password",))
            token, credentials = issued.token, await identity.authenticate(issued.token)
        here = public_path(request, PREFIX)  # the dialect the client logged in through
        storage_url = f"{settings.endpoint('object-store', here)}/{found.id}"
        seconds = int((credentials.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
        return Response(
            status_code=200,
            headers={
                "X-Storage-Url": storage_url,
                "X-Auth-Token": token,
                "X-Storage-Token": token,
                "X-Auth-Token-Expires": str(max(seconds, 0)),
            },
        )
    credentials = request.scope.get("nefos.credentials")
    if credentials is None:
        raise request.scope.get("nefos.auth_error") or errors.NotAuthenticated(
            "Authentication required"
        )
    storage: Namespace = request.app.state.engines.storage
    accounts = await storage.shared_with(str(credentials.user_id))
    items = [{"name": name, "last_modified": http.iso(mtime)} for name, mtime in accounts]
    return render_listing(request, "accounts", "", items, [name for name, _ in accounts])


async def version_only(request: Request) -> Response:
    """A write to the API's root names no account: Swift's 412, in its words."""
    raise errors.PreconditionFailed(swift_text("bad_url"))


async def dispatch(request: Request) -> Response:
    account, container, name = _split_path(request)
    call = Call(
        request=request,
        storage=request.app.state.engines.storage,
        credentials=request.scope.get("nefos.credentials"),
        account=account,
        container=container,
        name=name,
    )
    call.user  # noqa: B018 -- every object-store call needs a caller
    if name is not None:
        _check_length(name, MAX_OBJECT_NAME, "object_name_too_long")
        check_object_name(name)
        handlers = OBJECT
    elif container is not None:
        _check_length(container, MAX_CONTAINER_NAME, "container_name_too_long")
        check_container_name(container)
        handlers = CONTAINER
    else:
        handlers = ACCOUNT
    if "extract-archive" in call.query and request.method == "PUT":
        return await extract_archive(call)  # at any level, as Swift's bulk filter
    if "bulk-delete" in call.query and request.method in ("POST", "DELETE"):
        # At any level, as Swift's bulk filter: the body's paths are the account's.
        call.require_owner()
        return await bulk_delete(call)
    handler = handlers.get(request.method)
    if handler is None:
        raise errors.NotAllowedMethod(f"{request.method} is not allowed here")
    response: Response = await handler(call)
    if "content-type" not in response.headers:
        # Swift types every answer, even an empty 201, 202 or 204 (its api-ref shows it).
        response.headers["Content-Type"] = EMPTY_TYPE
    return response


def _check_length(name: str, limit: int, fault: str) -> None:
    """Swift's name bound, in its words, before the service's own checks."""
    length = len(name.encode("utf-8", "surrogateescape"))
    if length > limit:
        raise errors.InvalidInput(swift_text(fault, length=length, limit=limit))


# -- the method tables, one per level --------------------------------------------------


ACCOUNT: dict[str, Callable[[Call], Any]] = {
    "HEAD": account_head,
    "GET": account_get,
    "POST": account_post,
    "PUT": account_forbidden,
    "DELETE": account_forbidden,
}


async def _container_delete(call: Call) -> Response:
    """A container that is not empty (or changed meanwhile): Swift says it in the one
    text it has for every conflict."""
    try:
        return await container_delete(call)
    except errors.Conflict as conflict:
        raise errors.Conflict(swift_text("container_not_empty")) from conflict


CONTAINER: dict[str, Callable[[Call], Any]] = {
    "HEAD": container_head,
    "GET": container_get,
    "PUT": container_put,
    "POST": container_post,
    "DELETE": _container_delete,
}


OBJECT: dict[str, Callable[[Call], Any]] = {
    "HEAD": object_read,
    "GET": object_read,
    "PUT": object_put,
    "POST": object_post,
    "DELETE": object_delete,
    "COPY": object_copy_move,
    "MOVE": object_copy_move,
}


# -- public links and capabilities -------------------------------------------------------


async def public_object(request: Request) -> Response:
    """A published object: no token needed, basic headers only (spec §1.7)."""
    storage: Namespace = request.app.state.engines.storage
    record = await storage.resolve_public(request.path_params["token"])
    call = Call(request, storage, None, record.account, record.container, record.name)
    body = await body_of(call, record)
    headers = object_headers(None, record, body)
    return await serve(request, storage, record, body, headers)


@router.get("/info")
@router.get("/object-store/info")
async def info(request: Request) -> Response:
    """Swift's capabilities document; swiftclient reads it to choose SLO and bulk delete,
    at the storage URL with its last two parts (version, account) replaced by ``info``."""
    storage = request.app.state.settings.storage
    return json_response(
        {
            "swift": {
                "version": "2.35.0",
                "max_file_size": MAX_FILE_SIZE,
                "max_meta_name_length": MAX_META_KEY,
                "max_meta_value_length": MAX_META_VALUE,
                "max_meta_count": MAX_META_HEADERS,
                "max_meta_overall_size": MAX_META_OVERALL_SIZE,
                "max_object_name_length": MAX_OBJECT_NAME,
                "max_container_name_length": MAX_CONTAINER_NAME,
                "container_listing_limit": LISTING_LIMIT,
                "account_listing_limit": LISTING_LIMIT,
                "max_header_size": request.app.state.settings.limits.header_value_bytes,
                "extra_header_count": 0,
                "strict_cors_mode": True,
                "policies": [{"name": STORAGE_POLICY, "default": True}],
            },
            "slo": {
                "max_manifest_segments": storage.slo_max_segments,
                "max_manifest_size": MAX_MANIFEST_BODY,
                "min_segment_size": 1,
            },
            "bulk_upload": {
                "max_containers_per_extraction": storage.bulk_max_containers_per_extraction,
                "max_failed_extractions": storage.bulk_max_failed_extractions,
            },
            "bulk_delete": {
                "max_deletes_per_request": MAX_BULK_DELETES,
                "max_failed_deletes": storage.bulk_max_failed_deletes,
            },
            "tempauth": {"account_acls": False},
            "pithos": {"block_size": BLOCK_SIZE, "block_hash": HASH_ALGORITHM},
        }
    )


# Plain Starlette routes, not FastAPI's: these handlers take the request and build their
# own response, so FastAPI's per-request dependency and response handling is pure cost
# (measured: a small object's HEAD 1.17 -> 1.10 CPU ms).
router.add_route(PREFIX, root, methods=["GET", "HEAD"])
router.add_route(PREFIX + "/", root, methods=["GET", "HEAD"])
for root_path in (PREFIX, PREFIX + "/"):
    router.add_route(root_path, version_only, methods=["PUT", "POST", "DELETE", "COPY", "MOVE"])
router.add_route(PREFIX + "/{rest:path}", dispatch, methods=[*OBJECT_METHODS, "OPTIONS"])
router.add_route(PUBLIC_PREFIX + "/{token}", public_object, methods=["GET", "HEAD"])
