"""Operators' user commands: passwords come from standard input or the terminal, never
from the command line, which every local user can read (``ps``, ``/proc/PID/cmdline``)."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import time
from typing import Any

import pytest
import typer.main

from nefos.cli.main import app
from nefos.core import errors
from nefos.core.config import Settings
from nefos.server.engines import Engines
from tests.conftest import NEFOS, invoke_nefos

SECRET_WORDS = ("password", "passwd", "secret")


def test_no_command_takes_a_secret_in_its_command_line():
    """Every option of every ``nefos`` command whose name speaks of a secret is a flag:
    none takes the secret itself as its value."""
    found = []

    def walk(command: Any, path: str) -> None:  # typer's own click: its classes
        for param in command.params:
            if param.param_type_name == "option" and any(
                word in name for name in param.opts for word in SECRET_WORDS
            ):
                found.append((path, param.opts, param.is_flag))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "nefos")
    assert ("nefos user create", ["--password-stdin"], True) in found
    assert [f for f in found if not f[2]] == []


async def test_user_passwords_are_read_from_stdin(settings: Settings, engines: Engines):
    identity = engines.identity
    refused = await invoke_nefos(
        settings, "user", "create", "ann@example.org", "--password", "in-argv", check=False
    )
    assert refused.returncode == 2 and "No such option: --password" in refused.stderr
    with pytest.raises(errors.NotFound):
        await identity.get_user("ann@example.org")  # nothing was created

    await invoke_nefos(
        settings, "user", "create", "ann@example.org", "--password-stdin", input="first pw\n"
    )
    assert (await identity.password_login("ann@example.org", "first pw")).email == "ann@example.org"

    # Not at a terminal and no --password-stdin: nothing to ask at, nothing changes.
    blind = await invoke_nefos(settings, "user", "set-password", "ann@example.org", check=False)
    assert blind.returncode == 2 and "--password-stdin" in blind.stderr
    empty = await invoke_nefos(
        settings, "user", "set-password", "ann@example.org", "--password-stdin", check=False
    )
    assert empty.returncode == 1 and "no password" in empty.stderr
    await identity.password_login("ann@example.org", "first pw")

    await invoke_nefos(
        settings,
        *("user", "set-password", "ann@example.org", "--password-stdin"),
        input="second pw\r\nnot read\n",
    )
    await identity.password_login("ann@example.org", "second pw")
    with pytest.raises(errors.NotAuthenticated):
        await identity.password_login("ann@example.org", "first pw")

    # No password and no terminal: a user without a local login, as before.
    await invoke_nefos(settings, "user", "create", "ben@example.org")
    shown = await invoke_nefos(settings, "user", "show", "ben@example.org")
    assert "logins: -" in shown.stdout


def on_terminal(settings: Settings, args: list[str], answers: list[tuple[str, str]]) -> str:
    """``nefos *args`` in a process whose controlling terminal is a new pseudo-terminal;
    each answer is typed once its prompt shows (the password prompt flushes earlier
    input). Returns what the terminal showed."""
    master, slave = os.openpty()
    take_terminal = (
        "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    env = {
        **os.environ,
        "NEFOS_DATA_DIR": str(settings.data_dir),
        "NEFOS_DATABASE_URL": settings.database,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", take_terminal, NEFOS, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    shown = ""
    try:
        deadline = time.monotonic() + 60
        pending = list(answers)
        while time.monotonic() < deadline:
            if pending and shown.endswith(pending[0][0]):
                os.write(master, pending.pop(0)[1].encode() + b"\n")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the process ended: its side of the terminal closed
                    break
                if not chunk:
                    break
                shown += chunk.decode(errors="replace")
            elif process.poll() is not None:
                break
        assert process.wait(timeout=30) == 0, shown
        assert not pending, shown
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return shown


async def test_set_password_asks_twice_at_a_terminal(settings: Settings, engines: Engines):
    await engines.identity.create_user("cy@example.org", password="old pw")
    shown = await asyncio.to_thread(
        on_terminal,
        settings,
        ["user", "set-password", "cy@example.org"],
        [
            ("New password: ", "typo one"),
            ("Repeat for confirmation: ", "typo two"),
            ("New password: ", "term pw"),
            ("Repeat for confirmation: ", "term pw"),
        ],
    )
    assert "do not match" in shown and "password of cy@example.org set" in shown
    assert "term pw" not in shown and "typo" not in shown  # never echoed
    await engines.identity.password_login("cy@example.org", "term pw")
