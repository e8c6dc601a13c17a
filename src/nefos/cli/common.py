"""What every ``nefos`` command shares: finding the deployment, output, failures."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from nefos.core import errors
from nefos.core.config import ConfigError, Settings, ensure_data_dir, load_settings
from nefos.core.migrate import current, head
from nefos.server.engines import Engines

T = TypeVar("T")

# Piped output (scripts, tests) gets whole tables, not ones cut to 80 columns.
_WIDTH = None if sys.stdout.isatty() else 1000
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, soft_wrap=True, width=_WIDTH)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (env NEFOS_DATA_DIR; default ./nefos-data)"),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="TOML configuration file (env NEFOS_CONFIG)"),
]


def settings_for(
    config: Path | None, data_dir: Path | None, local: bool = True, **overrides: Any
) -> Settings:
    """The deployment's settings; ``local``: this host holds its data directory, which
    is created (or its permissions tightened) now."""
    try:
        settings = load_settings(config, data_dir, **overrides)
        return ensure_data_dir(settings) if local else settings
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (else it is asked "
        "at the terminal); never give one in the command line, which any local user can read",
    ),
]


def read_password(prompt: str, from_stdin: bool, optional: bool = False) -> str:
    """A password from standard input's first line, or asked twice at the terminal.

    Passwords are never options' values: a command line is readable by every local user
    (``ps``, ``/proc/PID/cmdline``) and stays in shell histories. ``optional``: an empty
    answer, or no terminal to ask at, means no password ("").
    """
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise fail("--password-stdin: standard input has no password on its first line")
        return password
    if not sys.stdin.isatty():
        if optional:
            return ""
        raise fail(
            f"no terminal to ask the password at: pipe it in with --password-stdin "
            f"({prompt.lower()})",
            code=2,
        )
    answer: str = typer.prompt(
        prompt,
        default="" if optional else None,
        show_default=False,
        hide_input=True,
        confirmation_prompt=True,
        err=True,
    )
    return answer


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


async def check_schema(settings: Settings) -> None:
    have = await current(settings.database)
    if have != head():
        raise fail(
            f"the database {settings.database} is not at the current schema "
            f"({have or 'empty'}, want {head()}): run `nefos db upgrade` or `nefos up`"
        )


def with_engines(
    config: Path | None, data_dir: Path | None, work: Callable[[Engines], Awaitable[T]]
) -> T:
    """Run ``work`` on the deployment's services, as the server wires them."""
    settings = settings_for(config, data_dir)

    async def run() -> T:
        await check_schema(settings)
        engines = Engines(settings)
        try:
            return await work(engines)
        finally:
            await engines.mailer.close()
            await engines.db.close()

    try:
        return asyncio.run(run())
    except errors.NefosError as exc:
        raise fail(exc.message) from None
