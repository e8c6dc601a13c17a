"""``nefos image``: system images, registered by operators for everyone.

A system image is a file in the ``images`` container of the system account (the first
admin unless ``--owner`` names another), registered public so every user lists it.
``register`` uploads the way a Pithos client does: it hashes the file's 4 MiB blocks,
offers the hashmap, and sends only the blocks the store says it lacks, so registering
the same file again sends nothing and an updated file sends only its changed blocks.
The image id is the file's UUID, so re-registering keeps the id users already know.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from nefos.blocks import BLOCK_SIZE, EMPTY_HASH, block_hash, merkle
from nefos.cli.common import ConfigFile, DataDir, err, out, with_engines
from nefos.core import errors
from nefos.identity.models import User
from nefos.images.service import DOMAIN, IMAGES_CONTAINER, Image
from nefos.server.engines import Engines
from nefos.storage.service import ObjectRecord
from nefos.storage.stores import BlockStore

image_app = typer.Typer(help="System images: register and list.", no_args_is_help=True)

SEND_BATCH = 4  # blocks per put: bounds memory to a few blocks however large the file
PUT_ATTEMPTS = 3  # a gc racing the upload can delete a block between offer and commit


@dataclass(frozen=True)
class Upload:
    """What storing a file cost: blocks in its hashmap, and those actually sent."""

    record: ObjectRecord
    blocks: int
    sent_blocks: int
    sent_bytes: int


async def system_account(engines: Engines) -> User:
    """The account that owns system images: the configured admin, else the first admin."""
    try:
        admin = await engines.identity.get_user(engines.settings.admin_email)
    except errors.NotFound:
        admin = None
    if admin is not None and admin.is_admin:
        return admin
    for user in await engines.identity.list_users():
        if user.is_admin:
            return user
    raise errors.NotFound(
        "No admin account to own system images: run `nefos up` once, or give --owner"
    )


def hash_file(path: Path) -> tuple[int, list[str]]:
    """The file's size and hashmap, read one block at a time."""
    size = 0
    hashes = []
    with path.open("rb") as source:
        while block := source.read(BLOCK_SIZE):
            hashes.append(block_hash(block))
            size += len(block)
    return size, hashes or [EMPTY_HASH]


async def send_blocks(
    store: BlockStore, path: Path, hashes: Sequence[str], missing: set[str], progress: Progress
) -> tuple[int, int]:
    """Put the blocks of ``path`` whose hashes are ``missing``, each once; returns
    (blocks, bytes) sent. A block that no longer hashes as offered means the file
    changed under us, and nothing half-written becomes visible."""
    wanted: list[int] = []  # the first index of each missing hash
    seen: set[str] = set()
    for index, digest in enumerate(hashes):
        if digest in missing and digest not in seen:
            seen.add(digest)
            wanted.append(index)
    task = progress.add_task("uploading", total=len(wanted))
    sent_bytes = 0
    with path.open("rb") as source:
        for start in range(0, len(wanted), SEND_BATCH):
            batch = []
            for index in wanted[start : start + SEND_BATCH]:
                source.seek(index * BLOCK_SIZE)
                block = source.read(BLOCK_SIZE)
                if block_hash(block) != hashes[index]:
                    raise errors.Conflict(f"{path} changed while it was being uploaded")
                batch.append(block)
            await store.put_blocks(batch)
            sent_bytes += sum(len(b) for b in batch)
            progress.advance(task, len(batch))
    return len(wanted), sent_bytes


async def upload_file(
    engines: Engines, account: str, container: str, name: str, path: Path
) -> Upload:
    """Store ``path`` as ``container/name`` with the hashmap protocol; the same data
    already there is left as it is (no new version, nothing sent)."""
    size, hashes = await asyncio.to_thread(hash_file, path)
    storage = engines.storage
    try:
        current = await storage.get_object(account, container, name)
    except errors.NotFound:
        current = None
    if current is not None and (current.size, current.hash) == (size, merkle(hashes)):
        return Upload(current, len(hashes), 0, 0)
    sent_blocks = sent_bytes = 0
    await storage.had_blocks(account, hashes)  # the operator holds the file's bytes
    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        for _ in range(PUT_ATTEMPTS):
            try:
                record = await storage.put_hashmap(
                    account, container, name, size, hashes, muser=account
                )
            except errors.Conflict as exc:
                if not exc.data or "missing" not in exc.data:
                    raise
                missing = set(exc.data["missing"])
                blocks, count = await send_blocks(engines.store, path, hashes, missing, progress)
                sent_blocks += blocks
                sent_bytes += count
            else:
                return Upload(record, len(hashes), sent_blocks, sent_bytes)
    raise errors.Conflict(f"The store kept losing blocks of {path}; try again")


def _properties(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--property")
        found[key.strip()] = value
    return found


def _record(image: Image, owner_email: str | None = None) -> dict[str, Any]:
    return {
        "id": str(image.id),
        "name": image.name,
        "owner": image.owner,
        "owner_email": owner_email,
        "size": image.size,
        "visibility": image.visibility,
        "status": image.status,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "location": image.location,
        "checksum": image.checksum,
        "properties": image.properties,
    }


@image_app.command("register")
def image_register(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="The image file"),
    ],
    name: Annotated[str, typer.Option("--name", help="Image name users see")],
    properties: Annotated[
        list[str] | None,
        typer.Option(
            "--property",
            help="key=value, repeatable (snf-image wants osfamily and root_partition)",
        ),
    ] = None,
    disk_format: Annotated[str, typer.Option(help="diskdump, extdump, ntfsdump, ...")] = (
        "diskdump"
    ),
    container_format: Annotated[str, typer.Option(help="bare, ovf, ...")] = "bare",
    owner: Annotated[
        str | None,
        typer.Option(help="Owning user, UUID or e-mail (default: the system account)"),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(help=f"File name in the owner's {IMAGES_CONTAINER!r} container"),
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Only the owner sees it (default: public)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Upload FILE (only the blocks the store lacks) and register it as an image."""
    wanted = _properties(properties or [])
    object_name = path or file.name

    async def work(engines: Engines) -> tuple[Image, Upload, str]:
        user = await engines.identity.get_user(owner) if owner else await system_account(engines)
        account = str(user.id)
        await engines.storage.create_container(account, IMAGES_CONTAINER)
        upload = await upload_file(engines, account, IMAGES_CONTAINER, object_name, file)
        image = await engines.images.register(
            account,
            f"pithos://{account}/{IMAGES_CONTAINER}/{object_name}",
            name,
            disk_format=disk_format,
            container_format=container_format,
            is_public=not private,
            properties=wanted,
        )
        return image, upload, user.email

    image, upload, email = with_engines(config, data_dir, work)
    if as_json:
        shown = _record(image, email)
        shown.update(blocks=upload.blocks, sent_blocks=upload.sent_blocks)
        shown["sent_bytes"] = upload.sent_bytes
        out.print_json(json.dumps(shown))
        return
    out.print(
        f"uploaded {upload.sent_blocks} new of {upload.blocks} blocks "
        f"({upload.sent_bytes} bytes) to {IMAGES_CONTAINER}/{object_name}"
    )
    out.print(f"image {image.id}: {image.name!r}, {image.visibility}, owner {email}")


@image_app.command("list")
def image_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Every registered image, whoever owns it."""

    async def work(engines: Engines) -> list[dict[str, Any]]:
        emails = {str(u.id): u.email for u in await engines.identity.list_users()}
        found = []
        for record, _ in await engines.storage.with_domain_key(DOMAIN, "name"):
            image = await engines.images.get(record.account, record.uuid)
            found.append(_record(image, emails.get(image.owner)))
        return sorted(found, key=lambda r: (r["name"], r["id"]))

    rows = with_engines(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "name", "owner", "size", "visibility", "status")
    for row in rows:
        table.add_row(
            row["id"],
            row["name"],
            row["owner_email"] or row["owner"],
            str(row["size"]),
            row["visibility"],
            row["status"],
        )
    out.print(table)
