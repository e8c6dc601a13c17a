"""Images (Plankton): a registered image is a storage file with metadata in the
``plankton`` domain, so registering, renaming or copying an image moves no data.

Spec §5: the image id is the file's UUID (it survives moves and new versions; a copy is
a new file and so a second image); size and checksum are the file's; visibility is the
file's sharing: ``*`` among its readers makes it public, other readers are its members.
Glance v2 adds a *queued* image, which is an empty placeholder file in the owner's
``images`` container until its data is uploaded.

The compute service reads images through :meth:`Images.get` and :meth:`Images.visible`.
Listings are the database's work (:mod:`nefos.images.catalog`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from nefos.core import errors
from nefos.core.numbers import INT32_MAX, ascii_uuid
from nefos.images import catalog
from nefos.images.catalog import (
    ACTIVE,
    DOMAIN,
    MEMBER,
    PROPERTY,
    QUEUED,
    TAG,
    ImageQuery,
)
from nefos.storage.service import Namespace, ObjectRecord
from nefos.storage.sharing import EVERYONE

IMAGES_CONTAINER = "images"
DISK_FORMATS = (
    "diskdump",
    "extdump",
    "ntfsdump",
    "raw",
    "qcow2",
    "vhd",
    "vhdx",
    "vmdk",
    "vdi",
    "iso",
    "ploop",
    "aki",
    "ari",
    "ami",
)
CONTAINER_FORMATS = ("bare", "ovf", "aki", "ari", "ami", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
MEMBER_STATUSES = ("pending", "accepted", "rejected")
DEACTIVATED = "deactivated"
# Keys of the plankton domain that are image fields; properties are "property:<key>".
FIELDS = (
    "name",
    "disk_format",
    "container_format",
    "status",
    "created_at",
    "description",
    "visibility",
    "min_disk",
    "min_ram",
    "protected",
    "tags",
    "managed",
)
# Tags are one attribute each, "tag:000", "tag:001", ... in order.
MAX_NAME = 255
MAX_TAGS = 128


@dataclass(frozen=True)
class Image:
    id: uuid.UUID
    name: str
    owner: str
    container: str
    path: str
    size: int
    checksum: str  # the file's Merkle hash (Plankton's checksum)
    md5: str  # MD5 of the data when the server saw it ("" otherwise)
    disk_format: str | None  # None only while queued, until the owner sets it
    container_format: str | None
    status: str
    visibility: str
    created_at: dt.datetime
    updated_at: dt.datetime
    properties: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    min_disk: int = 0
    min_ram: int = 0
    protected: bool = False
    members: dict[str, str] = field(default_factory=dict)  # member → status
    content_type: str = "application/octet-stream"
    description: str = ""

    @property
    def location(self) -> str:
        return f"pithos://{self.owner}/{self.container}/{self.path}"

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"


def parse_location(location: str) -> tuple[str, str, str]:
    """``pithos://<account>/<container>/<path>`` → its parts (400 otherwise)."""
    prefix = "pithos://"
    if not isinstance(location, str) or not location.startswith(prefix):
        raise errors.InvalidInput("The location is pithos://<account>/<container>/<path>")
    parts = location[len(prefix) :].split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise errors.InvalidInput("The location is pithos://<account>/<container>/<path>")
    return parts[0], parts[1], parts[2]


def parse_image_id(value: str) -> uuid.UUID:
    image_id = ascii_uuid(value)
    if image_id is None:
        raise errors.NotFound(f"No image {value}")
    return image_id


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise errors.InvalidInput(f"An image name is text of at most {MAX_NAME} characters")
    return name


def _check_choice(value: Any, choices: Iterable[str], what: str) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise errors.InvalidInput(f"Invalid {what} {value!r}: one of {', '.join(choices)}")
    return value


def _check_count(value: Any, what: str) -> str:
    """Glance keeps these in Integer columns; nefos in the image's metadata, but no
    more than Glance would hold (an integer past 64 bits is no JSON orjson writes)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT32_MAX:
        raise errors.InvalidInput(f"{what} is a whole number from 0 to {INT32_MAX}")
    return str(value)


@dataclass(frozen=True)
class ImageChange:
    """What :meth:`Images.change` writes: fields and properties as :meth:`Images.update`
    takes them."""

    fields: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, str | None] = field(default_factory=dict)
    replace_properties: bool = False


class Images:
    def __init__(self, storage: Namespace):
        self.storage = storage
        # Glance's image_property_quota; compute's limits show the same number.
        self.max_properties = storage.settings.limits.image_properties

    def _check_properties(self, values: dict[str, str], before: int = 0) -> None:
        """Glance refuses a change that leaves an image more custom properties than its
        quota, 413; one that adds none passes (the quota may have been lowered since)."""
        count = _property_count(values)
        if count > self.max_properties and count > before:
            raise errors.TooLarge(
                f"Attempted to add {count} properties to the image; "
                f"the maximum is {self.max_properties}"
            )

    # -- reading --------------------------------------------------------------------------

    def _image(self, record: ObjectRecord, values: dict[str, str], readers: list[str]) -> Image:
        return image_of(record, values, _visibility(values, readers))

    async def _readers(self, record: ObjectRecord) -> list[str]:
        shared = await self.storage.sharing(record.account, record.container, record.name)
        return list(shared.read) + list(shared.write)

    async def _load(self, image_id: uuid.UUID) -> tuple[ObjectRecord, dict[str, str]]:
        try:
            record = await self.storage.find_uuid(image_id)
        except errors.NotFound:
            raise errors.NotFound(f"No image {image_id}") from None
        values = await self.storage.domain_meta(record, DOMAIN)
        if "name" not in values:
            raise errors.NotFound(f"No image {image_id}")
        return record, values

    async def _may_see(self, user: str, image: Image) -> bool:
        if user == image.owner or image.visibility in ("public", "community"):
            return True
        if user in image.members:
            return True
        granted = await self.storage.access(user, image.owner, image.container, image.path)
        return granted is not None

    async def get(self, user: str, image_id: uuid.UUID | str) -> Image:
        """An image the user may see (owner, public, community, member or shared)."""
        return (await self._seen(user, image_id))[0]

    async def _seen(self, user: str, image_id: uuid.UUID | str) -> tuple[Image, ObjectRecord]:
        if not isinstance(image_id, uuid.UUID):
            image_id = parse_image_id(image_id)
        record, values = await self._load(image_id)
        image = self._image(record, values, await self._readers(record))
        if not await self._may_see(user, image):
            raise errors.NotFound(f"No image {image_id}")
        return image, record

    async def _owned(self, user: str, image_id: uuid.UUID | str) -> tuple[Image, ObjectRecord]:
        image = await self.get(user, image_id)
        if image.owner != user:
            raise errors.PermissionDenied("Only the image's owner may change it")
        record = await self.storage.get_object(image.owner, image.container, image.path)
        return image, record

    async def listing(self, user: str, query: ImageQuery) -> list[Image]:
        """The images ``query`` shows ``user`` (:mod:`nefos.images.catalog`): filtered,
        sorted and paged by the database, in a bounded number of statements. A marker
        must be an image the user may see (InvalidInput otherwise)."""
        async with self.storage.db.session() as session:
            found = await catalog.list_images(session, user, query)
        return [image_of(entry.record, entry.values, entry.visibility) for entry in found]

    async def visible(self, user: str, member_status: str | None = "accepted") -> list[Image]:
        """Images a listing shows the user: own, public, and shared ones where the user is
        a member with ``member_status`` (None: any) or may read the file; by id."""
        return await self.listing(user, ImageQuery(member_status=member_status))

    async def shared_images(self, user: str, member: str) -> list[Image]:
        """Plankton's ``shared-images``: the caller's images shared with ``member``, or,
        when the caller is that member, the images shared with it; by id."""
        conditions: list[catalog.Condition] = [catalog.Match(MEMBER + member, "neq", None)]
        if user != member:
            conditions.append(catalog.Match("owner", "eq", user))
        query = ImageQuery(member_status=None, conditions=tuple(conditions))
        return await self.listing(user, query)

    async def data(
        self, user: str, image_id: uuid.UUID | str, admin: bool = False
    ) -> tuple[Image, ObjectRecord | None]:
        """The image and its file's current version to stream (Glance v2 download);
        None while the image is queued (no data yet). A deactivated image's data is an
        admin's only, as Glance keeps it: the hold is there to stop its use."""
        image = await self.get(user, image_id)
        if image.status == DEACTIVATED and not admin:
            raise errors.PermissionDenied(
                "The requested image has been deactivated. Image data download is forbidden."
            )
        if image.status == QUEUED:
            return image, None
        record = await self.storage.get_object(image.owner, image.container, image.path)
        return image, record

    # -- registering (Plankton, Glance v1) -------------------------------------------------

    async def register(
        self,
        user: str,
        location: str,
        name: str,
        disk_format: str = "diskdump",
        container_format: str = "bare",
        is_public: bool = False,
        properties: dict[str, str] | None = None,
        size: int | None = None,
        checksum: str | None = None,
        description: str | None = None,
    ) -> Image:
        """Make an existing file an image; nothing is read or copied, so this takes the
        same time for any size. The caller must be allowed to write the file."""
        _check_name(name)
        _check_choice(disk_format, DISK_FORMATS, "disk format")
        _check_choice(container_format, CONTAINER_FORMATS, "container format")
        account, container, path = parse_location(location)
        if account != user:
            granted = await self.storage.access(user, account, container, path)
            if granted is None:
                raise errors.PermissionDenied(f"You may not read {location}")
            raise errors.PermissionDenied(f"Only the owner of {location} may register it")
        record = await self.storage.get_object(account, container, path)
        if size is not None and size != record.size:
            raise errors.InvalidInput(f"The size {size} is not the file's ({record.size})")
        if checksum is not None and checksum.lower() not in (record.hash, record.checksum):
            raise errors.InvalidInput("The checksum is not the file's")
        values = await self.storage.domain_meta(record, DOMAIN)
        # Members stay, and so does an admin's hold: registering the file anew is no
        # way for its owner to reactivate it.
        values = {
            k: v
            for k, v in values.items()
            if k.startswith(MEMBER) or (k == "status" and v == DEACTIVATED)
        }
        values.update(
            name=name,
            disk_format=disk_format,
            container_format=container_format,
            created_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        if description is not None:
            values["description"] = description
        for key, value in (properties or {}).items():
            values[PROPERTY + _property_key(key)] = _property_value(value)
        self._check_properties(values)
        record = await self.storage.set_domain(
            account, container, path, DOMAIN, values, muser=user, expect_serial=record.serial
        )
        await self._set_readers(record, public=is_public, members=list(_members(values)))
        return await self.get(user, record.uuid)

    async def unregister(self, user: str, image_id: uuid.UUID | str) -> None:
        """Forget the image; the file stays (Plankton's DELETE)."""
        image, record = await self._owned(user, image_id)
        if image.protected:
            raise errors.PermissionDenied("The image is protected")
        await self.storage.set_domain(
            image.owner, image.container, image.path, DOMAIN, {}, muser=user
        )
        await self._set_readers(record, public=False, members=[], dropped=image.members)

    async def update(
        self,
        user: str,
        image_id: uuid.UUID | str,
        fields: dict[str, Any] | None = None,
        properties: dict[str, str | None] | None = None,
        replace_properties: bool = False,
    ) -> Image:
        """Change image fields and properties (None deletes a property); visibility
        changes the file's sharing."""
        image, record = await self._owned(user, image_id)
        return await self._write(user, image, record, fields, properties, replace_properties)

    async def change(
        self,
        user: str,
        image_id: uuid.UUID | str,
        plan: Callable[[Image], ImageChange | None],
        denied: str | None = None,
    ) -> Image:
        """Read the image, let ``plan`` (a pure function of the image as read; it may
        raise a domain error) say what changes, and write that, refused (Conflict) if
        the image changed in between: a read-then-update in one operation. ``denied``:
        refuse a caller who is not the owner with this message before ``plan`` runs
        (None: after it, with :meth:`update`'s)."""
        image, record = await self._seen(user, image_id)
        if denied is not None and image.owner != user:
            raise errors.PermissionDenied(denied)
        wanted = plan(image)
        if wanted is None:
            return image
        if image.owner != user:
            raise errors.PermissionDenied("Only the image's owner may change it")
        return await self._write(
            user, image, record, wanted.fields, wanted.properties, wanted.replace_properties
        )

    async def _write(
        self,
        user: str,
        image: Image,
        record: ObjectRecord,
        fields: dict[str, Any] | None,
        properties: dict[str, str | None] | None,
        replace_properties: bool,
    ) -> Image:
        values = await self.storage.domain_meta(record, DOMAIN)
        before = _property_count(values)
        fields = dict(fields or {})
        visibility = fields.pop("visibility", None)
        if "is_public" in fields:
            public = fields.pop("is_public")
            if visibility is None:
                visibility = "public" if public else "private"
        for key, value in fields.items():
            if key == "tags":
                values = {k: v for k, v in values.items() if not k.startswith(TAG)}
            values.update(_field(key, value))
        if replace_properties:
            values = {k: v for k, v in values.items() if not k.startswith(PROPERTY)}
        for key, value in (properties or {}).items():
            if value is None:
                values.pop(PROPERTY + key, None)
            else:
                values[PROPERTY + _property_key(key)] = _property_value(value)
        if visibility is not None:
            values["visibility"] = _check_choice(visibility, VISIBILITIES, "visibility")
        self._check_properties(values, before)
        record = await self.storage.set_domain(
            image.owner, image.container, image.path, DOMAIN, values, muser=user,
            expect_serial=record.serial,
        )  # fmt: skip
        if visibility is not None:
            public = visibility in ("public", "community")
            await self._set_readers(record, public=public, members=list(_members(values)))
        return await self.get(user, image.id)

    async def _set_readers(
        self,
        record: ObjectRecord,
        public: bool,
        members: list[str],
        dropped: Iterable[str] = (),
    ) -> None:
        """The file's own read list: ``*`` when public, plus the members; writers and
        other readers kept, except ``dropped`` (members who no longer are)."""
        shared = await self.storage.sharing(record.account, record.container, record.name)
        own = shared.path == f"{record.account}/{record.container}/{record.name}"
        write = list(shared.write) if own else []
        gone = {EVERYONE, *members, *dropped}
        kept = [r for r in shared.read if r not in gone] if own else []
        read = ([EVERYONE] if public else []) + members + kept
        await self.storage.set_sharing(record.account, record.container, record.name, read, write)

    async def set_deactivated(
        self, user: str, admin: bool, image_id: uuid.UUID | str, deactivated: bool
    ) -> Image:
        """Glance's deactivate and reactivate: an admin's hold on any image (one found
        bad, say) while it is looked into. A deactivated image keeps its metadata, but
        its data is an admin's only and no server is built from it; only an active image
        may be held (a queued one has nothing to hold), and either call repeats freely."""
        if not admin:
            raise errors.PermissionDenied("Only an admin may deactivate or reactivate an image")
        if not isinstance(image_id, uuid.UUID):
            image_id = parse_image_id(image_id)
        record, values = await self._load(image_id)
        status = values.get("status", ACTIVE)
        if status not in (ACTIVE, DEACTIVATED):
            verb = "deactivate" if deactivated else "reactivate"
            raise errors.Conflict(f"Not allowed to {verb} image in status '{status}'")
        wanted = DEACTIVATED if deactivated else ACTIVE
        if status != wanted:
            if deactivated:
                values["status"] = DEACTIVATED
            else:
                values.pop("status", None)
            await self.storage.set_domain(
                record.account, record.container, record.name, DOMAIN, values, muser=user,
                expect_serial=record.serial,
            )  # fmt: skip
        record, values = await self._load(image_id)
        return self._image(record, values, await self._readers(record))

    # -- Glance v2: queued images and their data ----------------------------------------

    async def create(
        self,
        user: str,
        name: str = "",
        disk_format: str | None = None,
        container_format: str | None = None,
        visibility: str = "shared",
        image_id: uuid.UUID | None = None,
        properties: dict[str, str] | None = None,
        tags: list[str] | None = None,
        min_disk: int = 0,
        min_ram: int = 0,
        protected: bool = False,
        description: str | None = None,
    ) -> Image:
        """A queued image: an empty placeholder file ``images/<id>`` in the owner's
        account, whose UUID is the image id, until its data is uploaded."""
        values = {"name": _check_name(name), "status": QUEUED, "managed": "true"}
        values["created_at"] = dt.datetime.now(dt.UTC).isoformat()
        if disk_format is not None:
            values["disk_format"] = _check_choice(disk_format, DISK_FORMATS, "disk format")
        if container_format is not None:
            values["container_format"] = _check_choice(
                container_format, CONTAINER_FORMATS, "container format"
            )
        values["visibility"] = _check_choice(visibility, VISIBILITIES, "visibility")
        values.update(_field("tags", tags or []))
        values.update(_field("min_disk", min_disk))
        values.update(_field("min_ram", min_ram))
        values.update(_field("protected", protected))
        if description is not None:
            values.update(_field("description", description))
        for key, value in (properties or {}).items():
            values[PROPERTY + _property_key(key)] = _property_value(value)
        self._check_properties(values)
        image_id = image_id or uuid.uuid4()
        try:
            await self.storage.find_uuid(image_id)
        except errors.NotFound:
            pass
        else:
            raise errors.Conflict(f"Image {image_id} exists")
        await self.storage.create_container(user, IMAGES_CONTAINER)
        path = str(image_id)

        async def nothing() -> AsyncIterator[bytes]:
            return
            yield b""

        record = await self.storage.put_object(
            user, IMAGES_CONTAINER, path, nothing(), muser=user,
            domains={DOMAIN: values}, uuid=image_id,
        )  # fmt: skip
        if visibility in ("public", "community"):
            await self._set_readers(record, public=True, members=[])
        return await self.get(user, image_id)

    async def upload(
        self,
        user: str,
        image_id: uuid.UUID | str,
        chunks: AsyncIterator[bytes],
        content_type: str = "application/octet-stream",
        max_size: int | None = None,
    ) -> Image:
        """Store a queued image's data, streamed, as the placeholder file's new version."""
        image, record = await self._owned(user, image_id)
        if image.status != QUEUED:
            raise errors.Conflict("Only a queued image takes data")
        values = await self.storage.domain_meta(record, DOMAIN)
        if "disk_format" not in values or "container_format" not in values:
            raise errors.InvalidInput(
                "Properties container_format, disk_format must be set prior to saving data"
            )
        values.pop("status", None)
        await self.storage.put_object(
            image.owner, image.container, image.path, chunks, content_type=content_type,
            muser=user, domains={DOMAIN: values}, max_size=max_size,
        )  # fmt: skip
        return await self.get(user, image.id)

    async def delete(self, user: str, image_id: uuid.UUID | str) -> None:
        """Glance v2 DELETE: unregister; a file that nefos created for the image (its
        data uploaded through the image API) goes too."""
        image, record = await self._owned(user, image_id)
        if image.protected:
            raise errors.PermissionDenied("The image is protected")
        values = await self.storage.domain_meta(record, DOMAIN)
        await self.unregister(user, image.id)
        if values.get("managed") == "true":
            await self.storage.delete_object(image.owner, image.container, image.path, user)

    # -- members -------------------------------------------------------------------------

    async def members(self, user: str, image_id: uuid.UUID | str) -> tuple[Image, dict[str, str]]:
        image = await self.get(user, image_id)
        if user != image.owner and user not in image.members:
            raise errors.PermissionDenied("Only the owner and members see the members")
        if user != image.owner:
            return image, {user: image.members[user]}
        return image, image.members

    async def set_members(
        self, user: str, image_id: uuid.UUID | str, members: Iterable[str], add: bool = False
    ) -> Image:
        """Replace (or with ``add``, extend) the members; new ones start pending."""
        image, record = await self._owned(user, image_id)
        values = await self.storage.domain_meta(record, DOMAIN)
        wanted = list(dict.fromkeys(members))
        for member in wanted:
            _check_member(member)
        if not add:
            values = {k: v for k, v in values.items() if not k.startswith(MEMBER)}
        for member in wanted:
            values.setdefault(MEMBER + member, "pending")
        if image.visibility == "private" and "visibility" not in values:
            values["visibility"] = "shared"
        record = await self.storage.set_domain(
            image.owner, image.container, image.path, DOMAIN, values, muser=user
        )
        await self._set_readers(
            record, public=image.visibility in ("public", "community"),
            members=list(_members(values)), dropped=image.members,
        )  # fmt: skip
        return await self.get(user, image.id)

    async def remove_member(
        self,
        user: str,
        image_id: uuid.UUID | str,
        member: str,
        missing_ok: bool = False,
        denied: str = "Only the image's owner may change it",
    ) -> None:
        """``missing_ok``: removing a non-member does nothing (Plankton) instead of
        NotFound (Glance). ``denied``: the refusal a caller who is not the owner gets."""
        if (await self.get(user, image_id)).owner != user:
            raise errors.PermissionDenied(denied)
        image, record = await self._owned(user, image_id)
        if member not in image.members:
            if missing_ok:
                return
            raise errors.NotFound(f"{member} is not a member of image {image.id}")
        values = await self.storage.domain_meta(record, DOMAIN)
        values.pop(MEMBER + member, None)
        record = await self.storage.set_domain(
            image.owner, image.container, image.path, DOMAIN, values, muser=user
        )
        await self._set_readers(
            record, public=image.visibility in ("public", "community"),
            members=list(_members(values)), dropped=[member],
        )  # fmt: skip

    async def set_member_status(
        self, user: str, image_id: uuid.UUID | str, member: str, status: str
    ) -> Image:
        """A member accepts or rejects an image shared with it (Glance v2)."""
        _check_choice(status, MEMBER_STATUSES, "member status")
        image = await self.get(user, image_id)
        if member not in image.members:
            raise errors.NotFound(f"{member} is not a member of image {image.id}")
        if user != member:
            raise errors.PermissionDenied("Only the member may change its status")
        record = await self.storage.get_object(image.owner, image.container, image.path)
        values = await self.storage.domain_meta(record, DOMAIN)
        values[MEMBER + member] = status
        # The owner's file changes; the member acts on it through the image service.
        await self.storage.set_domain(
            image.owner, image.container, image.path, DOMAIN, values, muser=user
        )
        return await self.get(user, image.id)

    async def shared_with(self, member: str) -> list[Image]:
        return await self.shared_images(member, member)


def _visibility(values: dict[str, str], readers: list[str]) -> str:
    """The ``visibility`` field, else the file's sharing: ``*`` among its readers is
    public, any reader or member shared (:mod:`nefos.images.catalog` says the same in SQL)."""
    visibility = values.get("visibility")
    if visibility is not None:
        return visibility
    if EVERYONE in readers:
        return "public"
    if readers or any(key.startswith(MEMBER) for key in values):
        return "shared"
    return "private"


def image_of(record: ObjectRecord, values: dict[str, str], visibility: str) -> Image:
    """The image a file's version and its plankton values make."""
    members = {
        key[len(MEMBER) :]: status for key, status in values.items() if key.startswith(MEMBER)
    }
    created = values.get("created_at")
    queued = values.get("status") == QUEUED
    return Image(
        id=record.uuid,
        name=values.get("name", ""),
        owner=record.account,
        container=record.container,
        path=record.name,
        size=record.size,
        checksum=record.hash,
        md5=record.checksum,
        disk_format=values.get("disk_format", None if queued else "diskdump"),
        container_format=values.get("container_format", None if queued else "bare"),
        status=values.get("status", ACTIVE),
        visibility=visibility,
        created_at=dt.datetime.fromisoformat(created) if created else record.mtime,
        updated_at=record.mtime,
        properties={
            key[len(PROPERTY) :]: value for key, value in values.items() if key.startswith(PROPERTY)
        },
        tags=tuple(values[key] for key in sorted(k for k in values if k.startswith(TAG))),
        min_disk=int(values.get("min_disk", "0")),
        min_ram=int(values.get("min_ram", "0")),
        protected=values.get("protected") == "true",
        members=members,
        content_type=record.type,
        description=values.get("description", ""),
    )


def _members(values: dict[str, str]) -> Iterable[str]:
    return (key[len(MEMBER) :] for key in values if key.startswith(MEMBER))


def _check_member(member: Any) -> str:
    if not isinstance(member, str) or not member or len(member) > 80:
        raise errors.InvalidInput("A member is a user UUID")
    if any(c in member for c in " ,;=:/*\0"):
        raise errors.InvalidInput(f"Bad member {member!r}")
    return member


def _property_count(values: dict[str, str]) -> int:
    return sum(1 for key in values if key.startswith(PROPERTY))


def _property_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > 100:
        raise errors.InvalidInput("A property name has 1 to 100 characters")
    return key


def _property_value(value: Any) -> str:
    if not isinstance(value, str):
        value = orjson.dumps(value).decode() if not isinstance(value, (int, float)) else str(value)
    if len(value) > 255:
        raise errors.InvalidInput("A property value has at most 255 characters")
    return value


def _field(key: str, value: Any) -> dict[str, str]:
    """One image field as the plankton domain keeps it, validated."""
    if key == "name":
        return {"name": _check_name(value)}
    if key == "disk_format":
        return {"disk_format": _check_choice(value, DISK_FORMATS, "disk format")}
    if key == "container_format":
        return {"container_format": _check_choice(value, CONTAINER_FORMATS, "container format")}
    if key in ("min_disk", "min_ram"):
        return {key: _check_count(value, key)}
    if key == "protected":
        if not isinstance(value, bool):
            raise errors.InvalidInput("protected is true or false")
        return {"protected": "true" if value else "false"}
    if key == "description":
        return {"description": _property_value(value)}
    if key == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise errors.InvalidInput("tags is a list of strings")
        tags = list(dict.fromkeys(value))
        if len(tags) > MAX_TAGS:
            raise errors.OverQuota(f"At most {MAX_TAGS} tags per image")
        if any(not t or len(t) > 255 for t in tags):
            raise errors.InvalidInput("A tag has 1 to 255 characters")
        return {f"{TAG}{index:03d}": tag for index, tag in enumerate(tags)}
    raise errors.InvalidInput(f"Unknown image field {key!r}")
