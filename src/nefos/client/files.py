"""One account's object store, request by request (Pithos, spec §1).

Each method is one HTTP exchange (two for the few that read back what they set), so the
transfer engine in :mod:`nefos.client.transfer` and the ``nf`` commands compose them
without surprises. Names travel URL-quoted; a refusal raises :class:`ClientError` with
the server's status and its plain-text reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from nefos.blocks import merkle
from nefos.client.errors import ClientError, response_message

DIRECTORY = "application/directory"
DIRECTORY_TYPES = frozenset({DIRECTORY, "application/folder"})
OCTET_STREAM = "application/octet-stream"
LISTING_LIMIT = 10000
POLICY_HEADERS = {
    "quota": "X-Container-Policy-Quota",
    "versioning": "X-Container-Policy-Versioning",
    "project": "X-Container-Policy-Project",
}
_GROUP_NAME = re.compile(r"[A-Za-z0-9.]+")
_SPELLED = {"etag": "ETag", "uuid": "UUID", "md5": "MD5"}


@dataclass(frozen=True)
class Hashmap:
    """An object's block list, as ``GET ?hashmap`` answers it."""

    block_size: int
    block_hash: str
    size: int
    hashes: list[str]
    object_hash: str  # X-Object-Hash, the Merkle root the whole download must match
    version: str | None  # X-Object-Version, to read every block from the same version


def header_name(name: str) -> str:
    """``x-object-hash`` -> ``X-Object-Hash``: httpx lowercases, people read capitals."""
    return "-".join(_SPELLED.get(part.lower(), part.capitalize()) for part in name.split("-"))


def headers_dict(headers: httpx.Headers) -> dict[str, str]:
    return {header_name(key): value for key, value in headers.items()}


def sharing_header(read: Iterable[str] = (), write: Iterable[str] = ()) -> str:
    """``X-Object-Sharing`` for the given readers and writers; "" removes sharing."""
    parts = []
    for kind, members in (("read", list(read)), ("write", list(write))):
        if members:
            parts.append(f"{kind}={','.join(members)}")
    return "; ".join(parts)


def query(**params: object) -> str:
    """A query string where ``True`` is a bare flag (``?hashmap``), as kamaki sends it,
    and ``None`` leaves the parameter out."""
    items = []
    for key, value in params.items():
        if value is None or value is False:
            continue
        items.append(key if value is True else urlencode({key: value}))
    return "?" + "&".join(items) if items else ""


class Files:
    """The object store of one account: its containers, objects and groups.

    ``url`` is the account's storage URL (``.../object-store/v1/<uuid>``). The httpx
    client is shared with the :class:`~nefos.client.cloud.Cloud` that made this, and is
    safe to use from the worker threads of parallel transfers.
    """

    def __init__(self, http: httpx.Client, url: str, token: str):
        self.http = http
        self.url = url.rstrip("/")
        self.account = self.url.rsplit("/", 1)[-1]
        self._auth = {"X-Auth-Token": token}

    # -- plumbing ---------------------------------------------------------------------

    def _url(self, container: str | None = None, name: str | None = None, q: str = "") -> str:
        url = self.url
        if container is not None:
            url += "/" + quote(container, safe="")
            if name is not None:
                url += "/" + quote(name, safe="/")
        return url + q

    def _request(
        self,
        method: str,
        url: str,
        target: str,
        ok: Collection[int],
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        try:
            response = self.http.request(
                method, url, headers={**self._auth, **(headers or {})}, content=content
            )
        except httpx.TransportError as exc:
            raise ClientError(0, f"cannot reach {self.url}: {exc}", target) from None
        if response.status_code not in ok:
            raise ClientError(response.status_code, response_message(response), target)
        return response

    def _list(self, url: str, target: str, **params: object) -> list[dict[str, Any]]:
        """Every item of a JSON listing, page by page (the server caps a page)."""
        items: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            q = query(format="json", limit=LISTING_LIMIT, marker=marker, **params)
            page = self._request("GET", url + q, target, (200, 204)).content
            batch = json.loads(page) if page else []
            items += batch
            if len(batch) < LISTING_LIMIT:
                return items
            last = batch[-1]
            marker = last.get("name") or last.get("subdir")

    # -- account and groups -------------------------------------------------------------

    def account_info(self) -> dict[str, str]:
        response = self._request("HEAD", self._url(), self.account, (200, 204))
        return headers_dict(response.headers)

    def groups(self) -> dict[str, list[str]]:
        """The account's groups (``X-Account-Group-<name>: uuid,uuid``)."""
        prefix = "x-account-group-"
        groups = {}
        for key, value in self.account_info().items():
            if key.lower().startswith(prefix):
                members = [m.strip() for m in value.split(",") if m.strip()]
                groups[key[len(prefix) :].lower()] = members
        return groups

    def set_group(self, name: str, members: Iterable[str]) -> None:
        """Create or replace a group; other groups stay (``POST ?update``)."""
        members = [m.strip() for m in members if m.strip()]
        if not members:
            raise ClientError(0, "a group needs at least one member", name)
        self._group_update(name, ",".join(members))

    def delete_group(self, name: str) -> None:
        if name.lower() not in self.groups():
            raise ClientError(404, "no such group", name)
        self._group_update(name, "")

    def _group_update(self, name: str, value: str) -> None:
        if not _GROUP_NAME.fullmatch(name):
            raise ClientError(0, "a group name has letters, digits and dots only", name)
        headers = {f"X-Account-Group-{name}": value}
        self._request("POST", self._url(q="?update"), name, (202, 204), headers)

    def sharers(self) -> list[dict[str, Any]]:
        """The accounts that share something with us (``GET /v1`` with a token)."""
        root = self.url.rsplit("/", 1)[0]
        return self._list(root, "shared with me")

    # -- containers -----------------------------------------------------------------------

    def containers(self) -> list[dict[str, Any]]:
        return self._list(self._url(), self.account)

    def container_info(self, container: str) -> dict[str, str]:
        response = self._request("HEAD", self._url(container), container, (200, 204))
        return headers_dict(response.headers)

    def block_params(self, container: str) -> tuple[int, str]:
        """The container's block size and hash algorithm, which every hashmap uses."""
        info = self.container_info(container)
        try:
            return int(info["X-Container-Block-Size"]), info["X-Container-Block-Hash"].lower()
        except (KeyError, ValueError):
            raise ClientError(0, "the server did not give its block size", container) from None

    def create_container(
        self,
        container: str,
        *,
        quota: int | None = None,
        versioning: str | None = None,
        project: str | None = None,
    ) -> bool:
        """Create a container with its policies; False if it already existed (the server
        then applies the policies as an update, Pithos' 202)."""
        headers = _policy_headers(quota, versioning, project)
        response = self._request("PUT", self._url(container), container, (201, 202), headers)
        return response.status_code == 201

    def set_container_policy(
        self,
        container: str,
        *,
        quota: int | None = None,
        versioning: str | None = None,
        project: str | None = None,
    ) -> None:
        headers = _policy_headers(quota, versioning, project)
        if not headers:
            raise ClientError(0, "no policy to change", container)
        self._request("POST", self._url(container, q="?update"), container, (202, 204), headers)

    def empty_container(self, container: str) -> None:
        """Delete every object of the container, keeping the container."""
        url = self._url(container, q=query(delimiter="/"))
        self._request("DELETE", url, container, (204,))

    def delete_container(self, container: str, *, recursive: bool = False) -> None:
        """Delete a container; with ``recursive`` its objects first, else an object left
        in it makes the server refuse (409)."""
        if recursive:
            self.empty_container(container)
            if not self._exists(self._url(container)):
                return  # a server that removes the container along with its contents
        self._request("DELETE", self._url(container), container, (204,))

    def _exists(self, url: str) -> bool:
        try:
            self._request("HEAD", url, url, (200, 204))
        except ClientError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- objects ------------------------------------------------------------------------

    def objects(
        self,
        container: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        shared: bool = False,
    ) -> list[dict[str, Any]]:
        """The container's objects; with ``delimiter`` folders below ``prefix`` come back
        as ``{"subdir": "a/"}`` items."""
        return self._list(
            self._url(container),
            container,
            prefix=prefix or None,
            delimiter=delimiter,
            shared=shared,
        )

    def object_info(
        self, container: str, name: str, *, version: int | None = None
    ) -> dict[str, str]:
        url = self._url(container, name, query(version=version))
        response = self._request("HEAD", url, f"{container}/{name}", (200, 204))
        return headers_dict(response.headers)

    def versions(self, container: str, name: str) -> list[tuple[int, float]]:
        """Every kept version, oldest first: (serial, epoch seconds)."""
        url = self._url(container, name, query(version="list", format="json"))
        body = self._request("GET", url, f"{container}/{name}", (200,)).json()
        return [(int(serial), float(stamp)) for serial, stamp in body["versions"]]

    def mkdir(self, container: str, name: str) -> None:
        """A directory object: 0 bytes of type ``application/directory``, which carries
        permissions for everything below it."""
        headers = {"Content-Type": DIRECTORY, "Content-Length": "0"}
        url = self._url(container, name.rstrip("/"))
        self._request("PUT", url, f"{container}/{name}", (201,), headers, b"")

    def put(
        self, container: str, name: str, data: bytes, content_type: str = OCTET_STREAM
    ) -> dict[str, str]:
        """A plain PUT of small data in one request (no block protocol)."""
        headers = {"Content-Type": content_type}
        url = self._url(container, name)
        return headers_dict(
            self._request("PUT", url, f"{container}/{name}", (201,), headers, data).headers
        )

    def copy(
        self,
        container: str,
        name: str,
        dest_container: str,
        dest_name: str,
        *,
        version: int | None = None,
        recursive: bool = False,
        content_type: str | None = None,
        source_account: str | None = None,
    ) -> dict[str, str]:
        """Server-side copy (``PUT`` with ``X-Copy-From``): no data goes through us.
        ``recursive`` also copies ``name/...``; sharing and public links are not copied."""
        return self._transfer(
            "X-Copy-From",
            container,
            name,
            dest_container,
            dest_name,
            version=version,
            recursive=recursive,
            content_type=content_type,
            source_account=source_account,
        )

    def move(
        self,
        container: str,
        name: str,
        dest_container: str,
        dest_name: str,
        *,
        recursive: bool = False,
        content_type: str | None = None,
        source_account: str | None = None,
    ) -> dict[str, str]:
        """Server-side rename (``PUT`` with ``X-Move-From``); the object keeps its UUID."""
        return self._transfer(
            "X-Move-From",
            container,
            name,
            dest_container,
            dest_name,
            recursive=recursive,
            content_type=content_type,
            source_account=source_account,
        )

    def _transfer(
        self,
        header: str,
        container: str,
        name: str,
        dest_container: str,
        dest_name: str,
        *,
        version: int | None = None,
        recursive: bool = False,
        content_type: str | None = None,
        source_account: str | None = None,
    ) -> dict[str, str]:
        headers = {header: quote(f"/{container}/{name}", safe="/"), "Content-Length": "0"}
        if content_type:
            headers["Content-Type"] = content_type
        if version is not None:
            headers["X-Source-Version"] = str(version)
        if source_account:
            headers["X-Source-Account"] = source_account
        url = self._url(dest_container, dest_name, query(delimiter="/" if recursive else None))
        target = f"{container}/{name}"
        response = self._request("PUT", url, target, (201,), headers, b"")
        return headers_dict(response.headers)

    def delete(self, container: str, name: str, *, recursive: bool = False) -> None:
        """Delete an object; with ``recursive`` also everything under ``name/``."""
        url = self._url(container, name.rstrip("/"), query(delimiter="/" if recursive else None))
        self._request("DELETE", url, f"{container}/{name}", (204,))

    def publish(self, container: str, name: str) -> str:
        """Make the object readable by anyone who has the returned URL."""
        self._update(container, name, {"X-Object-Public": "true"})
        url = self.object_info(container, name).get("X-Object-Public", "")
        if not url:
            raise ClientError(0, "the server did not give a public URL", f"{container}/{name}")
        return url

    def unpublish(self, container: str, name: str) -> None:
        self._update(container, name, {"X-Object-Public": "false"})

    def share(
        self, container: str, name: str, *, read: Iterable[str] = (), write: Iterable[str] = ()
    ) -> str:
        """Set who may read and write the object (or a directory object and what is below
        it): user UUIDs, ``<owner-uuid>:<group>`` or ``*``. Returns the sharing as the
        server normalised it."""
        value = sharing_header(read, write)
        if not value:
            raise ClientError(0, "give readers or writers (unshare removes sharing)", name)
        self._update(container, name, {"X-Object-Sharing": value})
        return self.object_info(container, name).get("X-Object-Sharing", "")

    def unshare(self, container: str, name: str) -> None:
        self._update(container, name, {"X-Object-Sharing": ""})

    def _update(self, container: str, name: str, headers: dict[str, str]) -> None:
        url = self._url(container, name, "?update")
        self._request("POST", url, f"{container}/{name}", (202, 204), headers)

    def iter_bytes(
        self, container: str, name: str, *, version: int | None = None
    ) -> Iterator[bytes]:
        """The object's data as it arrives, never whole in memory."""
        url = self._url(container, name, query(version=version))
        target = f"{container}/{name}"
        try:
            with self.http.stream("GET", url, headers=self._auth) as response:
                if response.status_code != 200:
                    response.read()
                    raise ClientError(response.status_code, response_message(response), target)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise ClientError(0, f"cannot reach {self.url}: {exc}", target) from None

    # -- the block protocol ----------------------------------------------------------------

    def hashmap(self, container: str, name: str, *, version: int | None = None) -> Hashmap:
        url = self._url(container, name, query(version=version, hashmap=True, format="json"))
        response = self._request("GET", url, f"{container}/{name}", (200,))
        body = response.json()
        hashes = [h.lower() for h in body["hashes"]]
        return Hashmap(
            block_size=int(body["block_size"]),
            block_hash=str(body["block_hash"]).lower(),
            size=int(body["bytes"]),
            hashes=hashes,
            object_hash=response.headers.get("X-Object-Hash", "").lower() or merkle(hashes),
            version=response.headers.get("X-Object-Version"),
        )

    def put_hashmap(
        self,
        container: str,
        name: str,
        size: int,
        hashes: list[str],
        *,
        content_type: str = OCTET_STREAM,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """Create the object from blocks the server has; returns the hashes it lacks
        (409, nothing created) or ``[]`` and the reply's headers (201, created)."""
        url = self._url(container, name, query(hashmap=True, format="json"))
        body = json.dumps({"bytes": size, "hashes": hashes}).encode()
        sent = {"Content-Type": content_type, **(headers or {})}
        response = self._request("PUT", url, f"{container}/{name}", (201, 409), sent, body)
        if response.status_code == 201:
            return [], headers_dict(response.headers)
        try:
            missing = [str(h).lower() for h in response.json()]
        except ValueError:
            raise ClientError(409, response_message(response), f"{container}/{name}") from None
        return missing, headers_dict(response.headers)

    def put_block(self, container: str, data: bytes) -> list[str]:
        """Store raw block data in the container's account; the server answers the
        hashes of the blocks it cut the data into."""
        url = self._url(container, q=query(update=True, format="json"))
        headers = {"Content-Type": OCTET_STREAM}
        response = self._request("POST", url, container, (202,), headers, data)
        return [str(h).lower() for h in response.json()]

    def read_range(
        self, container: str, name: str, start: int, length: int, *, version: str | None = None
    ) -> bytes:
        """``length`` bytes of the object from ``start`` (a ``Range`` GET)."""
        url = self._url(container, name, query(version=version))
        headers = {"Range": f"bytes={start}-{start + length - 1}"}
        response = self._request("GET", url, f"{container}/{name}", (200, 206), headers)
        data = response.content
        if response.status_code == 200 and start == 0:
            data = data[:length]  # a server may answer a whole small object
        if len(data) != length:
            raise ClientError(
                response.status_code,
                f"asked for {length} bytes at {start}, got {len(data)}",
                f"{container}/{name}",
            )
        return data


def _policy_headers(
    quota: int | None, versioning: str | None, project: str | None
) -> dict[str, str]:
    values = {"quota": quota, "versioning": versioning, "project": project}
    return {POLICY_HEADERS[k]: str(v) for k, v in values.items() if v is not None}
