"""What the storage namespace answers with and what it checks first.

Apart from the class so that every part of ``Namespace`` and its callers (the object
store API, images, the CLI) share one definition of a record and of a good name, and can
import them without the database machinery. Callers import them through
``nefos.storage.service``.
"""

from __future__ import annotations

import datetime as dt
import operator
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row

from nefos.core import errors
from nefos.storage.models import CURRENT, Version
from nefos.storage.sharing import Sharing

CLIENTKEY = "pithos"
RESOURCE = "pithos.diskspace"
USER_DOMAIN = "pithos"
# Swift's object expiry: the epoch second (ten digits) after which an object is gone.
DELETE_AT = ":delete-at"
MAX_CONTAINER_NAME = 256
MAX_OBJECT_NAME = 1024
MAX_META_KEYS = 32
MAX_META_KEY = 128
MAX_META_VALUE = 256
MAX_TYPE = 256
MAX_FILE_SIZE = 5 * 1024**3 + 2  # Swift's single-upload bound (a copy's data too)
MAX_OBJECT_SIZE = MAX_FILE_SIZE * 1024  # what hashmaps and partial updates may reach
VERSIONING = ("auto", "none")

CONTENT_FIELDS = ("size", "type", "hash", "checksum", "map_name")  # what a write gives
RECORD_FIELDS = ("serial", *CONTENT_FIELDS, "uuid", "mtime")
# ObjectRecord's fields after account, container and name, in its order.
VERSION_FIELDS = (*RECORD_FIELDS, "muser", "cluster")
_version_of = operator.attrgetter(*VERSION_FIELDS)
content_of = operator.attrgetter(*CONTENT_FIELDS)


# -- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectRecord:
    """One object version as a caller sees it (``get_object``, listings)."""

    account: str
    container: str
    name: str
    serial: int
    size: int
    type: str
    hash: str
    checksum: str
    map_name: str
    uuid: uuid.UUID
    mtime: dt.datetime
    muser: str
    cluster: int
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectSharing:
    """An object's sharing as one reader sees it (``object_sharing``)."""

    sharing: Sharing
    public_token: str | None  # the owner's view only
    access: str | None  # what the reader may do: write, read or None


@dataclass(frozen=True)
class Subdir:
    """A virtual directory in a delimited listing."""

    name: str


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    count: int
    bytes: int
    last_modified: dt.datetime | None
    quota: int
    versioning: str
    project: str
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountInfo:
    containers: int
    objects: int
    bytes: int
    last_modified: dt.datetime | None
    meta: dict[str, str]
    groups: dict[str, list[str]]
    quotas: dict[str, int] = field(default_factory=dict)  # project → pithos.diskspace limit
    listing: list[ContainerInfo] = field(default_factory=list)  # the totals' containers


# -- validation --------------------------------------------------------------------------


def _utf8(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidInput(f"{what} is not valid UTF-8") from None
    if "\0" in value:
        raise errors.InvalidInput(f"{what} contains NUL")


def check_account(account: str) -> str:
    if not isinstance(account, str) or not account or "/" in account or len(account) > 80:
        raise errors.InvalidInput("Bad account")
    _utf8(account, "Account")
    return account


def check_container_name(name: str) -> str:
    """Spec §1.1: at most 256 bytes of UTF-8 (as Swift counts), one path segment, not
    "." or ".."."""
    if not isinstance(name, str) or not name:
        raise errors.InvalidInput("A container needs a name")
    _utf8(name, "Container name")
    if len(name.encode()) > MAX_CONTAINER_NAME:
        raise errors.InvalidInput(f"A container name has at most {MAX_CONTAINER_NAME} bytes")
    if "/" in name or name in (".", ".."):
        raise errors.InvalidInput(f"Bad container name {name!r}")
    return name


def check_object_name(name: str) -> str:
    """Spec §1.1: at most 1024 bytes of UTF-8 (as Swift counts, and so a whole path fits
    a database index entry), no "." or ".." segments."""
    if not isinstance(name, str) or not name:
        raise errors.InvalidInput("An object needs a name")
    _utf8(name, "Object name")
    if len(name.encode()) > MAX_OBJECT_NAME:
        raise errors.InvalidInput(f"An object name has at most {MAX_OBJECT_NAME} bytes")
    if any(segment in (".", "..") for segment in name.split("/")):
        raise errors.InvalidInput(f"Bad object name {name!r}")
    return name


def check_meta(meta: dict[str, str] | None) -> dict[str, str]:
    meta = dict(meta or {})
    if len(meta) > MAX_META_KEYS:
        raise errors.InvalidInput(f"At most {MAX_META_KEYS} metadata keys")
    for key, value in meta.items():
        if not isinstance(key, str) or not key or len(key) > MAX_META_KEY:
            raise errors.InvalidInput(f"A metadata key has 1 to {MAX_META_KEY} characters")
        if not isinstance(value, str) or len(value) > MAX_META_VALUE:
            raise errors.InvalidInput(f"A metadata value has at most {MAX_META_VALUE} characters")
        _utf8(key, "Metadata key")
        _utf8(value, "Metadata value")
    return meta


def check_type(content_type: str) -> str:
    if not isinstance(content_type, str) or len(content_type) > MAX_TYPE:
        raise errors.InvalidInput(f"A content type has at most {MAX_TYPE} characters")
    _utf8(content_type, "Content type")
    return content_type


def check_object_args(account: str, container: str, name: str) -> None:
    """The names of an object's path, checked before anything reads or writes it."""
    check_account(account)
    check_container_name(container)
    check_object_name(name)


def container_path(account: str, container: str) -> str:
    return f"{account}/{container}"


def object_path(account: str, container: str, name: str) -> str:
    return f"{account}/{container}/{name}"


def check_domains(
    domains: dict[str, dict[str, str]] | None,
) -> dict[str, dict[str, str]] | None:
    if domains is None:
        return None
    for domain, values in domains.items():
        if domain == USER_DOMAIN or not domain or len(domain) > 64:
            raise errors.InvalidInput(f"Bad metadata domain {domain!r}")
        for key, value in values.items():
            if not key or len(key) > MAX_META_KEY:
                raise errors.InvalidInput(f"A metadata key has 1 to {MAX_META_KEY} characters")
            if len(value) > MAX_META_VALUE:
                raise errors.InvalidInput(
                    f"A metadata value has at most {MAX_META_VALUE} characters"
                )
            _utf8(key, "Metadata key")
            _utf8(value, "Metadata value")
    return domains


def version_record(account: str, container: str, name: str, rows: list[Row[Any]]) -> ObjectRecord:
    row = rows[0]
    meta = {r.key: r.value for r in rows if r.serial == row.serial and r.key is not None}
    record = object_record(account, container, name, row, meta)
    if record.cluster == CURRENT and expired(record):
        # Gone at its X-Delete-At, as in Swift; the expirer deletes it later.
        raise errors.NotFound(f"No object {container}/{name}")
    return record


def etag_of(record: ObjectRecord) -> str:
    """The object's ETag: the client's MD5 where one was kept, else the Pithos hash."""
    return record.checksum or record.hash


def expired(record: ObjectRecord) -> bool:
    at = record.meta.get(DELETE_AT)
    return bool(at) and at.isdigit() and int(at) <= time.time()


def object_record(
    account: str, container: str, name: str, row: Version | Row[Any], meta: dict[str, str]
) -> ObjectRecord:
    return ObjectRecord(account, container, name, *_version_of(row), meta)
