"""The account level of the object-store API: ``/object-store/v1/<account>``.

HEAD and GET say the account's counts, metadata and groups and list its containers (to
another user, the containers that share something with them); POST sets metadata and
groups (Swift's ``?bulk-delete`` is in ``api_bulk``). Account POST merges metadata:
Swift does, and kamaki always sends ``update``, which merges too.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from nefos.core import errors, http
from nefos.storage.accounts import ContainerQuery
from nefos.storage.dialect import TABLE as DIALECT
from nefos.storage.service import AccountInfo, ContainerInfo, Subdir
from nefos.storage.swift import (
    STORAGE_POLICY,
    Call,
    limit_param,
    listing_type,
    meta_headers,
    meta_out,
    no_content,
    render_listing,
    reverse_param,
    swift_text,
    timestamp_headers,
)


async def account_head(call: Call) -> Response:
    call.require_owner()
    headers = _account_headers(call, await call.storage.account(call.account))
    modified = http.parse_http_date(headers.get("Last-Modified"))
    if modified is not None and http.check_preconditions(call.headers, "", modified, True):
        return Response(status_code=304, headers=headers)
    return no_content(headers, listing_type(call.request))


def _account_headers(call: Call, info: AccountInfo) -> dict[str, str]:
    headers = {
        "X-Account-Container-Count": str(info.containers),
        "X-Account-Object-Count": str(info.objects),
        "X-Account-Bytes-Used": str(info.bytes),
        "Accept-Ranges": "bytes",
        **timestamp_headers(info.last_modified),
        **meta_out(call.request, "X-Account", info.meta),
    }
    if info.containers:  # Swift names a policy once a container uses it
        policy = f"X-Account-Storage-Policy-{STORAGE_POLICY}"
        headers[f"{policy}-Container-Count"] = str(info.containers)
        headers[f"{policy}-Object-Count"] = str(info.objects)
        headers[f"{policy}-Bytes-Used"] = str(info.bytes)
    for group, members in info.groups.items():
        headers[f"X-Account-Group-{group}"] = ",".join(members)
    if info.quotas:
        headers["X-Account-Policy-Quota"] = str(sum(info.quotas.values()))
        for project, limit in info.quotas.items():
            headers[f"X-Account-Policy-Quota-{project}"] = str(limit)
    return headers


async def account_get(call: Call) -> Response:
    user = call.user  # an anonymous caller learns nothing, not even a bad parameter
    query = ContainerQuery(
        limit=limit_param(call),
        prefix=call.query.get("prefix") or "",
        marker=call.query.get("marker") or None,  # empty: no bound, as in Swift
        end_marker=call.query.get("end_marker") or None,
        reverse=reverse_param(call),
        delimiter=call.query.get("delimiter") or None,
        shared="shared" in call.query,
        public="public" in call.query,
    )
    listing = await call.storage.list_account(user, call.account, query)
    headers = {} if listing.info is None else _account_headers(call, listing.info)
    policies = call.owner and bool(DIALECT.pick(call.request, "container_item_extras"))
    items: list[dict[str, Any]] = [
        {"subdir": e.name} if isinstance(e, Subdir) else _container_item(e, policies)
        for e in listing.entries
    ]
    names = [item.get("subdir") or item["name"] for item in items]
    return render_listing(call.request, "account", call.account, items, names, headers)


def _container_item(info: ContainerInfo, policies: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": info.name,
        "count": info.count,
        "bytes": info.bytes,
        "last_modified": http.iso(info.last_modified),
        "storage_policy": STORAGE_POLICY,
    }
    if policies:  # Pithos's field (storage.dialect), for the owner
        item["x_container_policy"] = {
            "quota": str(info.quota),
            "versioning": info.versioning,
            "project": info.project,
        }
    return item


async def account_post(call: Call) -> Response:
    call.require_owner()
    meta, removed = meta_headers(call, "x-account")
    for key in removed:
        meta[key] = ""
    groups: dict[str, list[str]] = {}
    for key, value in call.headers.items():
        if key.startswith("x-account-group-"):
            name = key[len("x-account-group-") :].lower()
            members = [m.strip() for m in http.header_text(value).split(",") if m.strip()]
            groups[name] = members
    await call.storage.set_account_meta(call.account, meta, groups)
    return Response(status_code=DIALECT.pick(call.request, "account_post_status"))


async def account_forbidden(call: Call) -> Response:
    """Accounts come and go with their users (the identity service), never by the
    object store: Swift without account management, and Pithos, say 405."""
    raise errors.NotAllowedMethod(swift_text("account_put"), headers={"Allow": "HEAD, GET, POST"})
