"""``nf file``: objects, written ``container/path/to/object`` (kamaki's ``file`` group)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated

import typer
from rich.table import Table

from nefos.client import transfer
from nefos.client.console import (
    Account,
    AsJson,
    Bars,
    NoProgress,
    Workers,
    fail,
    object_path,
    out,
    print_headers,
    print_json,
    session,
    split_path,
)
from nefos.client.files import DIRECTORY_TYPES
from nefos.units import human_bytes as human

file_app = typer.Typer(
    help="Files (objects): list, transfer, copy, share, publish.", no_args_is_help=True
)

Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Also everything under PATH/")]
Version = Annotated[int | None, typer.Option("--version", help="An older version (serial)")]


def basename(name: str) -> str:
    return PurePosixPath(name.rstrip("/")).name


def _size(size: object) -> str:
    """Bytes in binary units; whatever else a listing holds, as it came."""
    return human(size) if isinstance(size, int) else str(size if size is not None else "")


def _quota(quota: object) -> str:
    """A container's quota policy: a byte count as text, and "0" or none for no limit."""
    text = str(quota if quota is not None else "")
    return human(int(text)) if text.isascii() and text.isdigit() and int(text) else text


def list_containers(as_json: bool, account: str | None) -> None:
    with session(account) as files:
        containers = files.containers()
    if as_json:
        print_json(containers)
        return
    table = Table("container", "objects", "size", "quota", "versioning", "modified")
    for c in containers:
        policy = c.get("x_container_policy") or {}
        table.add_row(
            c["name"],
            str(c.get("count", "")),
            _size(c.get("bytes")),
            _quota(policy.get("quota")),
            str(policy.get("versioning", "")),
            str(c.get("last_modified") or ""),
        )
    out.print(table)


@file_app.command("list")
def file_list(
    path: Annotated[
        str | None, typer.Argument(help="container\\[/folder]; none: containers")
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Everything below, not one level")
    ] = False,
    as_json: AsJson = False,
    account: Account = None,
) -> None:
    """List a folder of a container, like ls (-r: everything below it)."""
    if path is None:
        list_containers(as_json, account)
        return
    container, folder = split_path(path)
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    with session(account) as files:
        items = files.objects(container, prefix=prefix, delimiter=None if recursive else "/")
    if as_json:
        print_json(items)
        return
    table = Table("name", "size", "type", "modified")
    directories = {i["name"] + "/" for i in items if i.get("content_type") in DIRECTORY_TYPES}
    for item in items:
        if "subdir" in item:
            if item["subdir"] not in directories:  # a directory object shows it already
                table.add_row(item["subdir"], "", "folder", "")
        else:
            kind = item.get("content_type", "")
            name = item["name"] + ("/" if kind in DIRECTORY_TYPES else "")
            modified = str(item.get("last_modified") or "")
            table.add_row(name, _size(item.get("bytes")), kind, modified)
    out.print(table)


@file_app.command("info")
def file_info(
    path: Annotated[str, typer.Argument(help="container/object")],
    version: Version = None,
    as_json: AsJson = False,
    account: Account = None,
) -> None:
    """An object's headers: hash, UUID, version, type, sharing, public URL, metadata."""
    container, name = object_path(path)
    with session(account) as files:
        headers = files.object_info(container, name, version=version)
    print_json(headers) if as_json else print_headers(headers)


@file_app.command("upload")
def file_upload(
    local: Annotated[Path, typer.Argument(help="Local file", exists=True, dir_okay=True)],
    path: Annotated[str, typer.Argument(help="container\\[/object]; a trailing / keeps the name")],
    content_type: Annotated[str | None, typer.Option(help="Default: guessed from the name")] = None,
    workers: Workers = transfer.DEFAULT_WORKERS,
    no_progress: NoProgress = False,
    as_json: AsJson = False,
) -> None:
    """Upload a file, sending only the blocks the cloud does not already have."""
    if local.is_dir():
        raise fail(f"{local} is a directory: `nf file sync {local} {path}` uploads a tree")
    container, name = split_path(path)
    if not name or name.endswith("/"):
        name += local.name
    with session() as files, Bars(not no_progress) as bars:
        result = transfer.upload(
            files, local, container, name, content_type=content_type, workers=workers, reporter=bars
        )
    if as_json:
        print_json(result)
        return
    out.print(
        f"uploaded {container}/{name}: {human(result.size)}, sent {human(result.bytes_sent)} "
        f"({result.blocks_sent} of {result.blocks} blocks)",
        markup=False,
        highlight=False,
    )


@file_app.command("download")
def file_download(
    path: Annotated[str, typer.Argument(help="container/object")],
    local: Annotated[
        Path | None, typer.Argument(help="Local file or directory [default: .]")
    ] = None,
    version: Version = None,
    workers: Workers = transfer.DEFAULT_WORKERS,
    no_progress: NoProgress = False,
    as_json: AsJson = False,
    account: Account = None,
) -> None:
    """Download an object, fetching only the blocks the local file lacks (resumes)."""
    container, name = object_path(path)
    dest = local if local is not None else Path(basename(name))
    if dest.is_dir():
        dest = dest / basename(name)
    with session(account) as files, Bars(not no_progress) as bars:
        result = transfer.download(
            files, container, name, dest, version=version, workers=workers, reporter=bars
        )
    if as_json:
        print_json(result)
        return
    out.print(
        f"downloaded {container}/{name} to {dest}: {human(result.size)}, fetched "
        f"{human(result.bytes_fetched)} ({result.blocks_fetched} of {result.blocks} blocks)",
        markup=False,
        highlight=False,
    )


@file_app.command("sync")
def file_sync(
    local: Annotated[Path, typer.Argument(help="Local directory", exists=True, file_okay=False)],
    path: Annotated[str, typer.Argument(help="container\\[/prefix]")],
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove remote objects with no local file")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change")] = False,
    workers: Workers = transfer.DEFAULT_WORKERS,
    no_progress: NoProgress = False,
    as_json: AsJson = False,
) -> None:
    """Upload a directory tree to container/prefix: new and changed files only."""
    container, prefix = split_path(path)

    def say(action: str, name: str) -> None:
        if not as_json:
            verb = {"upload": "upload", "delete": "delete"}[action]
            out.print(f"{'would ' if dry_run else ''}{verb} {container}/{name}", markup=False)

    with session() as files, Bars(not no_progress) as bars:
        result = transfer.sync(
            files,
            local,
            container,
            prefix,
            delete=delete,
            dry_run=dry_run,
            workers=workers,
            reporter=bars,
            on_change=say,
        )
    if as_json:
        print_json(result)
        return
    if dry_run:  # nothing moved: say what a real run would do
        summary = (
            f"would upload {len(result.uploaded)}, would delete {len(result.deleted)}, "
            f"{len(result.skipped)} unchanged; nothing sent (dry run)"
        )
    else:
        summary = (
            f"{len(result.uploaded)} uploaded, {len(result.skipped)} unchanged, "
            f"{len(result.deleted)} deleted; sent {human(result.bytes_sent)}"
        )
    out.print(summary, markup=False)


@file_app.command("cat")
def file_cat(
    path: Annotated[str, typer.Argument(help="container/object")],
    version: Version = None,
    account: Account = None,
) -> None:
    """Write an object's data to standard output."""
    container, name = object_path(path)
    sink = sys.stdout.buffer
    with session(account) as files:
        for chunk in files.iter_bytes(container, name, version=version):
            sink.write(chunk)
    sink.flush()


@file_app.command("mkdir")
def file_mkdir(path: Annotated[str, typer.Argument(help="container/folder")]) -> None:
    """Create a directory object (it can carry sharing for what is below it)."""
    container, name = object_path(path)
    with session() as files:
        files.mkdir(container, name)


def _destination(source: str, dest: str) -> tuple[str, str]:
    """``c2`` keeps the name, ``c2/dir/`` puts it in dir, ``c2/new`` renames it."""
    container, name = split_path(dest)
    if not name:
        return container, source
    if name.endswith("/"):
        return container, name + basename(source)
    return container, name


@file_app.command("copy")
def file_copy(
    source: Annotated[str, typer.Argument(help="container/object")],
    dest: Annotated[str, typer.Argument(help="container\\[/object]")],
    recursive: Recursive = False,
    version: Version = None,
    content_type: Annotated[str | None, typer.Option(help="Type of the copy")] = None,
    account: Account = None,
) -> None:
    """Copy an object within the cloud (-A: from another user's account into yours)."""
    container, name = object_path(source)
    dest_container, dest_name = _destination(name, dest)
    with session() as files:
        files.copy(
            container,
            name,
            dest_container,
            dest_name,
            version=version,
            recursive=recursive,
            content_type=content_type,
            source_account=account,
        )


@file_app.command("move")
def file_move(
    source: Annotated[str, typer.Argument(help="container/object")],
    dest: Annotated[str, typer.Argument(help="container\\[/object]")],
    recursive: Recursive = False,
    content_type: Annotated[str | None, typer.Option(help="New type")] = None,
) -> None:
    """Move or rename an object within the cloud; it keeps its UUID."""
    container, name = object_path(source)
    dest_container, dest_name = _destination(name, dest)
    with session() as files:
        files.move(
            container,
            name,
            dest_container,
            dest_name,
            recursive=recursive,
            content_type=content_type,
        )


@file_app.command("delete")
def file_delete(
    path: Annotated[str, typer.Argument(help="container/object")],
    recursive: Recursive = False,
) -> None:
    """Delete an object (-r: and everything under it)."""
    container, name = object_path(path)
    with session() as files:
        files.delete(container, name, recursive=recursive)


@file_app.command("publish")
def file_publish(path: Annotated[str, typer.Argument(help="container/object")]) -> None:
    """Give an object a public URL that needs no token; prints the URL."""
    container, name = object_path(path)
    with session() as files:
        url = files.publish(container, name)
    out.print(url, markup=False, highlight=False)


@file_app.command("unpublish")
def file_unpublish(path: Annotated[str, typer.Argument(help="container/object")]) -> None:
    """Revoke an object's public URL."""
    container, name = object_path(path)
    with session() as files:
        files.unpublish(container, name)


def _members(values: list[str] | None) -> list[str]:
    return [m.strip() for v in values or () for m in v.split(",") if m.strip()]


@file_app.command("share")
def file_share(
    path: Annotated[str, typer.Argument(help="container/object or container/folder")],
    read: Annotated[
        list[str] | None,
        typer.Option("--read", help="Readers: user UUID, OWNER:group or * (repeat or comma)"),
    ] = None,
    write: Annotated[
        list[str] | None, typer.Option("--write", help="Writers (they also read)")
    ] = None,
) -> None:
    """Set who may read and write an object or a folder (replaces the previous sharing)."""
    container, name = object_path(path)
    readers, writers = _members(read), _members(write)
    if not readers and not writers:
        raise fail("give --read and/or --write (`nf file unshare` removes sharing)", 2)
    with session() as files:
        sharing = files.share(container, name, read=readers, write=writers)
    out.print(sharing, markup=False, highlight=False)


@file_app.command("unshare")
def file_unshare(path: Annotated[str, typer.Argument(help="container/object")]) -> None:
    """Stop sharing an object."""
    container, name = object_path(path)
    with session() as files:
        files.unshare(container, name)


@file_app.command("versions")
def file_versions(
    path: Annotated[str, typer.Argument(help="container/object")],
    as_json: AsJson = False,
    account: Account = None,
) -> None:
    """The kept versions of an object, oldest first (serials for --version)."""
    container, name = object_path(path)
    with session(account) as files:
        versions = files.versions(container, name)
    if as_json:
        print_json([{"version": serial, "timestamp": stamp} for serial, stamp in versions])
        return
    table = Table("version", "time (UTC)")
    for serial, stamp in versions:
        table.add_row(str(serial), datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds"))
    out.print(table)
