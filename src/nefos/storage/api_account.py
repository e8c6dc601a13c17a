"""The account level of the object-store API: ``/object-store/v1/<account>``.

HEAD and GET say the account's counts, metadata and groups and list its containers (to
another user, the containers that share something with them); POST sets metadata and
groups, or with ``?bulk-delete`` runs Swift's bulk delete. Account POST merges metadata:
Swift does, and kamaki always sends ``update``, which merges too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from starlette.responses import Response

from nefos.core import errors, http
from nefos.core.faults import json_response
from nefos.storage.service import AccountInfo, ContainerInfo
from nefos.storage.swift import (
    MAX_BULK_DELETES,
    MAX_MANIFEST_BODY,
    STORAGE_POLICY,
    Call,
    limit_param,
    listing_type,
    meta_headers,
    meta_out,
    no_content,
    render_listing,
    reverse_param,
    timestamp_headers,
)


async def account_head(call: Call) -> Response:
    call.require_owner()
    headers = _account_headers(await call.storage.account(call.account))
    modified = http.parse_http_date(headers.get("Last-Modified"))
    if modified is not None and http.check_preconditions(call.headers, "", modified, True):
        return Response(status_code=304, headers=headers)
    return no_content(headers, listing_type(call.request))


def _account_headers(info: AccountInfo) -> dict[str, str]:
    headers = {
        "X-Account-Container-Count": str(info.containers),
        "X-Account-Object-Count": str(info.objects),
        "X-Account-Bytes-Used": str(info.bytes),
        "Accept-Ranges": "bytes",
        **timestamp_headers(info.last_modified),
        **meta_out("X-Account", info.meta),
    }
    for group, members in info.groups.items():
        headers[f"X-Account-Group-{group}"] = ",".join(members)
    if info.quotas:
        headers["X-Account-Policy-Quota"] = str(sum(info.quotas.values()))
        for project, limit in info.quotas.items():
            headers[f"X-Account-Policy-Quota-{project}"] = str(limit)
    return headers


async def account_get(call: Call) -> Response:
    if call.owner:
        info = await call.storage.account(call.account)
        headers = _account_headers(info)
        containers = info.listing
        if "shared" in call.query or "public" in call.query:
            wanted = set()
            for container in containers:
                if "shared" in call.query and await call.storage.shared_names(
                    call.account, container.name
                ):
                    wanted.add(container.name)
                if "public" in call.query and await call.storage.public_names(
                    call.account, container.name
                ):
                    wanted.add(container.name)
            containers = [c for c in containers if c.name in wanted]
    else:
        if "public" in call.query:
            raise errors.PermissionDenied("Only the owner lists public objects")
        headers = {}
        containers = await call.storage.visible_containers(call.user, call.account)
    prefix = call.query.get("prefix") or ""
    marker = call.query.get("marker") or None  # empty: no bound, as in Swift
    end_marker = call.query.get("end_marker") or None
    reverse = reverse_param(call)
    if reverse:
        containers = containers[::-1]
        marker, end_marker = end_marker, marker
    limit = limit_param(call)
    delimiter = call.query.get("delimiter") or None
    items: list[dict[str, Any]] = []
    for c in containers:
        if len(items) >= limit:
            break
        if not c.name.startswith(prefix):
            continue
        if (marker is not None and c.name <= marker) or (
            end_marker is not None and c.name >= end_marker
        ):
            continue
        cut = c.name.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            items.append(_container_item(c, call.owner))
            continue
        subdir = c.name[: cut + len(delimiter or "")]
        if subdir == marker and not reverse:  # the previous page ended with it
            continue
        if not items or items[-1].get("subdir") != subdir:
            items.append({"subdir": subdir})
    names = [item.get("subdir") or item["name"] for item in items]
    return render_listing(call.request, "account", call.account, items, names, headers)


def _container_item(info: ContainerInfo, owner: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": info.name,
        "count": info.count,
        "bytes": info.bytes,
        "last_modified": http.iso(info.last_modified),
        "storage_policy": STORAGE_POLICY,
    }
    if owner:
        item["x_container_policy"] = {
            "quota": str(info.quota),
            "versioning": info.versioning,
            "project": info.project,
        }
    return item


async def account_post(call: Call) -> Response:
    call.require_owner()
    if "bulk-delete" in call.query:
        return await bulk_delete(call)
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
    return Response(status_code=202)


async def bulk_delete(call: Call) -> Response:
    """Swift's bulk middleware: a body of ``/container[/object]`` lines, URL-encoded."""
    body = b""
    async for chunk in call.request.stream():
        body += chunk
        if len(body) > MAX_MANIFEST_BODY:
            raise errors.TooLarge("The bulk-delete body is too large")
    lines = [line.strip() for line in body.decode("utf-8", "replace").splitlines()]
    paths = [unquote(line) for line in lines if line]
    if len(paths) > MAX_BULK_DELETES:
        raise errors.InvalidInput(f"At most {MAX_BULK_DELETES} deletes per request")
    deleted = not_found = 0
    failures: list[list[str]] = []
    objects = [p for p in paths if "/" in p.strip("/")]
    containers = [p for p in paths if "/" not in p.strip("/")]
    for path in [*objects, *containers]:  # objects first, so their containers empty
        container, _, name = (
            path.strip("/").partition("/") if path.startswith("/") else ("", "", "")
        )
        if not container:
            failures.append([path, "400 Bad Request"])
            continue
        try:
            if name:
                await call.storage.delete_object(call.account, container, name, muser=call.user)
            else:
                await call.storage.delete_container(call.account, container)
            deleted += 1
        except errors.NotFound:
            not_found += 1
        except errors.Conflict:
            failures.append([path, "409 Conflict"])
        except errors.InvalidInput:
            failures.append([path, "400 Bad Request"])
    status = "400 Bad Request" if failures else "200 OK"
    result = {
        "Number Deleted": deleted,
        "Number Not Found": not_found,
        "Response Status": status,
        "Response Body": "",
        "Errors": failures,
    }
    if "json" in (call.headers.get("accept") or ""):
        return json_response(result)
    text = "".join(f"{key}: {value}\n" for key, value in result.items() if key != "Errors")
    text += "Errors:\n" + "".join(f"{p}, {s}\n" for p, s in failures)
    return Response(text, 200, media_type="text/plain")


async def account_forbidden(call: Call) -> Response:
    raise errors.PermissionDenied("Accounts are created and removed by the identity service")
