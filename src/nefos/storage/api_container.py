"""The container level of the object-store API: ``/object-store/v1/<account>/<container>``.

HEAD and GET say the container's counts, policies and metadata and list its objects
(Swift's prefix, delimiter, markers, ``reverse``; Pithos's ``path``, ``meta``, ``until``,
``shared`` and ``public``). PUT creates it or sets its policies and metadata; DELETE
removes it, or (Pithos) empties it with a delimiter or purges what ``until`` names. POST
merges metadata (Swift; kamaki always sends ``update``, which merges too), or with a
body of raw bytes stores them as blocks for a later hashmap upload (Pithos).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.responses import Response

from nefos.blocks import BLOCK_SIZE
from nefos.core import errors, http
from nefos.core.faults import json_response
from nefos.storage.browsing import ObjectQuery
from nefos.storage.dialect import TABLE as DIALECT
from nefos.storage.service import ContainerInfo, ObjectRecord, Subdir
from nefos.storage.swift import (
    HASH_ALGORITHM,
    SLO_BYTES,
    SLO_ETAG,
    STORAGE_POLICY,
    Call,
    etag_of,
    limit_param,
    listing_format,
    listing_type,
    meta_headers,
    meta_key,
    meta_out,
    no_content,
    render_listing,
    reverse_param,
    timestamp_headers,
    until_param,
)


def _container_headers(call: Call, info: ContainerInfo) -> dict[str, str]:
    headers = {
        "X-Container-Object-Count": str(info.count),
        "X-Container-Bytes-Used": str(info.bytes),
        "Accept-Ranges": "bytes",
        "X-Container-Block-Size": str(BLOCK_SIZE),
        "X-Container-Block-Hash": HASH_ALGORITHM,
        "X-Storage-Policy": STORAGE_POLICY,
        **timestamp_headers(info.last_modified),
    }
    if call.owner:
        headers.update(
            {
                "X-Container-Policy-Quota": str(info.quota),
                "X-Container-Policy-Versioning": info.versioning,
                "X-Container-Policy-Project": info.project,
                **meta_out(call.request, "X-Container", info.meta),
            }
        )
    return headers


def _meta_keys_header(headers: dict[str, str], keys: list[str]) -> None:
    """Spec §1.4: the metadata keys the container's objects use, to its owner."""
    if keys:
        headers["X-Container-Object-Meta"] = http.header_value(",".join(keys))


async def container_head(call: Call) -> Response:
    assert call.container is not None
    view = await call.storage.view_container(call.user, call.account, call.container)
    info = view.info
    headers = _container_headers(call, info)
    _meta_keys_header(headers, view.meta_keys)
    if info.last_modified and http.check_preconditions(
        call.headers, "", info.last_modified, reading=True
    ):
        return Response(status_code=304, headers=headers)
    return no_content(headers, listing_type(call.request))


def _meta_filter(expression: str) -> Callable[[ObjectRecord], bool]:
    """Spec §1.4 ``meta``: ``k``, ``!k``, ``k<op>v`` on user metadata, comma-joined."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    operators: dict[str, Callable[[str, str], bool]] = {
        "!=": lambda a, b: a != b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
        "=": lambda a, b: a == b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
    }
    for term in (t.strip() for t in expression.split(",")):
        if not term:
            continue
        if term.startswith("!"):
            key = meta_key(term[1:])
            tests.append(lambda meta, key=key: key not in meta)
            continue
        for symbol, compare in operators.items():
            if symbol in term:
                raw_key, _, value = term.partition(symbol)
                key = meta_key(raw_key.strip())
                tests.append(
                    lambda meta, key=key, value=value.strip(), compare=compare: (
                        key in meta and compare(meta[key], value)
                    )
                )
                break
        else:
            key = meta_key(term)
            tests.append(lambda meta, key=key: key in meta)
    return lambda record: all(test(record.meta) for test in tests)


async def container_get(call: Call) -> Response:
    assert call.container is not None
    user = call.user  # an anonymous caller learns nothing, not even a bad parameter
    prefix = call.query.get("prefix") or ""
    delimiter = call.query.get("delimiter") or None
    marker = call.query.get("marker") or None  # empty: no bound, as in Swift
    end_marker = call.query.get("end_marker") or None
    reverse = reverse_param(call)
    if "path" in call.query:
        # What is directly below path X: prefix "X/", delimiter "/" (Swift leaves out
        # the virtual directories, Pithos lists them: ``path_lists_subdirs``);
        # names may start with "/" themselves, so path "/" lists those. The directory
        # object "X/" is not below itself (Swift): the bound on that side excludes it.
        path = call.query["path"]
        prefix, delimiter = (path.rstrip("/") + "/" if path else ""), "/"
        if prefix and reverse:
            end_marker = max(end_marker or "", prefix)
        elif prefix:
            marker = max(marker or "", prefix)
    query = ObjectQuery(
        limit=limit_param(call),
        prefix=prefix,
        delimiter=delimiter,
        marker=marker,
        end_marker=end_marker,
        reverse=reverse,
        keep=_meta_filter(call.query["meta"]) if call.query.get("meta") else None,
        until=until_param(call),
        shared="shared" in call.query,
        public="public" in call.query,
        # Swift's path lists objects only (a directory object "X/sub/" is one).
        objects_only="path" in call.query and not DIALECT.pick(call.request, "path_lists_subdirs"),
        # Swift lists a static large object at its whole size, with the SLO's ETag.
        large_sizes=listing_format(call.query, call.headers.get("accept")) != "text",
    )
    page = await call.storage.browse(user, call.account, call.container, query)
    headers = _container_headers(call, page.info)
    _meta_keys_header(headers, page.meta_keys)
    if query.until is not None:
        headers["X-Container-Until-Timestamp"] = http.epoch(query.until)
    names = [entry.name for entry in page.entries]
    extras = DIALECT.pick(call.request, "object_item_extras")
    items = [_object_item(entry, page.large, extras) for entry in page.entries]
    return render_listing(call.request, "container", call.container, items, names, headers)


def _object_item(
    entry: ObjectRecord | Subdir, large: Mapping[int, dict[str, str]], extras: frozenset[str]
) -> dict[str, Any]:
    if isinstance(entry, Subdir):
        return {"subdir": entry.name}
    slo = large.get(entry.serial, {})
    item: dict[str, Any] = {
        "name": entry.name,
        "bytes": int(slo[SLO_BYTES]) if SLO_BYTES in slo else entry.size,
        "hash": etag_of(entry),
        "content_type": entry.type,
        "last_modified": http.iso(entry.mtime),
    }
    if extras:  # Pithos's fields (storage.dialect), all or none
        item["x_object_hash"] = entry.hash
        item["x_object_uuid"] = str(entry.uuid)
        item["x_object_version"] = entry.serial
        item["x_object_version_timestamp"] = http.epoch(entry.mtime)
        item["x_object_modified_by"] = entry.muser
    if SLO_ETAG in slo:
        item["slo_etag"] = f'"{slo[SLO_ETAG]}"'
    return item


def _policies(call: Call) -> dict[str, Any]:
    policies: dict[str, Any] = {}
    for key, value in call.headers.items():
        if not key.startswith("x-container-policy-"):
            continue
        policy = key[len("x-container-policy-") :]
        if policy == "quota":
            policies["quota"] = http.whole_number(value, "X-Container-Policy-Quota")
        elif policy == "versioning":
            policies["versioning"] = value.strip().lower()
        elif policy == "project":
            policies["project"] = value.strip()
        else:
            raise errors.InvalidInput(f"Unknown container policy {policy!r}")
    return policies


async def container_put(call: Call) -> Response:
    assert call.container is not None
    call.require_owner()
    meta, removed = meta_headers(call, "x-container")
    policies = _policies(call)
    policy = (call.headers.get("x-storage-policy") or "").strip()  # empty: the default
    if policy and policy.lower() != STORAGE_POLICY.lower():
        raise errors.InvalidInput(f"Invalid X-Storage-Policy {policy!r}")
    for key in removed:
        meta[key] = ""
    created = await call.storage.create_container(call.account, call.container, policies, meta)
    return Response(status_code=201 if created else 202)


async def container_post(call: Call) -> Response:
    assert call.container is not None
    content_type = (call.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/octet-stream":
        return await block_upload(call)
    call.require_owner()
    meta, removed = meta_headers(call, "x-container")
    for key in removed:
        meta[key] = ""
    policies = _policies(call)
    await call.storage.create_container(call.account, call.container, policies, meta, create=False)
    return Response(status_code=DIALECT.pick(call.request, "container_post_status"))


async def block_upload(call: Call) -> Response:
    """Pithos ``POST <container>?update`` with raw bytes: store them as blocks and say
    their hashes, so a client can then commit a hashmap that names them. The blocks are
    charged to the account until a version uses them (413 past its quota)."""
    assert call.container is not None
    hashes = await call.storage.upload_blocks(
        call.user, call.account, call.container, call.request.stream()
    )
    return json_response(hashes, 202)


async def container_delete(call: Call) -> Response:
    assert call.container is not None
    call.require_owner()
    until = until_param(call)
    if until is not None:
        await call.storage.purge(call.account, call.container, None, until)
        return Response(status_code=204)
    if call.query.get("delimiter"):
        # Pithos: with a delimiter, DELETE empties the container (kamaki's
        # ``container empty``) and the container stays.
        await call.storage.empty_container(call.account, call.container, muser=call.user)
        return Response(status_code=204)
    await call.storage.delete_container(call.account, call.container)
    return Response(status_code=204)
