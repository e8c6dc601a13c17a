"""What every ``nf`` command shares: the session, paths, output, progress, failures."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from nefos.client import config
from nefos.client.cloud import Cloud
from nefos.client.errors import ClientError
from nefos.client.files import Files

# Piped output (scripts, tests) gets whole tables, not ones cut to 80 columns.
_WIDTH = None if sys.stdout.isatty() else 1000
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, soft_wrap=True, width=_WIDTH)

AsJson = Annotated[bool, typer.Option("--json", help="JSON output")]
Account = Annotated[
    str | None,
    typer.Option("--account", "-A", help="Another user's account (UUID): what they share"),
]
Workers = Annotated[int, typer.Option("--workers", min=1, max=16, help="Blocks in flight at once")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No progress bar")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def connect() -> Cloud:
    try:
        settings = config.load()
    except config.ConfigError as exc:
        raise fail(str(exc), 2) from None
    if not settings.url:
        raise fail("no cloud URL: run `nf config set url URL` (or set NF_URL)", 2)
    if not settings.token:
        raise fail("no token: run `nf config set token TOKEN` (or set NF_TOKEN)", 2)
    try:
        return Cloud(settings.url, settings.token)
    except config.ConfigError as exc:
        raise fail(str(exc), 2) from None


@contextmanager
def session(account: str | None = None) -> Iterator[Files]:
    """The object store of ``account`` (default ours); a refusal ends the command with
    the server's reason and exit code 1, an interruption with 130."""
    cloud = connect()
    try:
        yield cloud.files(account)
    except ClientError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # a local file: missing, a directory, no space, no permission
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted (a transfer run again resumes)", 130) from None
    finally:
        cloud.close()


def split_path(path: str) -> tuple[str, str]:
    """``container/path/to/object`` -> (container, path); the path may be empty."""
    container, _, name = path.lstrip("/").partition("/")
    if not container:
        raise typer.BadParameter(f"{path!r} does not start with a container name")
    return container, name


def object_path(path: str) -> tuple[str, str]:
    container, name = split_path(path)
    if not name.strip("/"):
        raise typer.BadParameter(f"{path!r} names no object: write container/path/to/object")
    return container, name


def print_json(value: Any) -> None:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    out.print_json(json.dumps(value))


def print_headers(headers: dict[str, str]) -> None:
    for key in sorted(headers):
        if key.lower() not in ("date", "server", "connection", "keep-alive"):
            out.print(f"{key}: {headers[key]}", markup=False, highlight=False)


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_AMOUNT = re.compile(r"^(\d+)\s*([KMGT]?)(i?B)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``0``, ``512M``, ``20GiB``: bytes, with binary units."""
    match = _AMOUNT.match(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a size like 1000, 512M or 20GiB")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


class Bars:
    """A transfer's progress (a :class:`~nefos.client.transfer.Reporter`): one bar,
    relabelled for each phase, on stderr and only for a person watching."""

    def __init__(self, enabled: bool):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not (enabled and err.is_terminal),
            transient=True,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def phase(self, description: str, total: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task(description, total=total)
        else:
            self.progress.reset(self.task, description=description, total=total)

    def advance(self, amount: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)
