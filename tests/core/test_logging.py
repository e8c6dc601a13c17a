"""Logs as their reader gets them: text at a terminal, JSON elsewhere, no escape codes."""

from __future__ import annotations

import json
import logging
import os
import select
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from nefos.core.config import ConfigError, load_settings
from nefos.core.logging import configure_logging

# What uvicorn logs: its message, and a copy coloured with ANSI codes for its own handler.
COLOURED = {"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def log_to(stream, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("INFO", fmt)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42, extra=COLOURED)
    logging.getLogger("nefos.test").info("GET %s 404", "/x\x1b[2J\nforged INFO line")
    for handler in logging.getLogger().handlers:
        handler.flush()


def on_a_terminal(fmt: str, monkeypatch: pytest.MonkeyPatch) -> str:
    master, slave = os.openpty()
    terminal = os.fdopen(slave, "w")
    try:
        log_to(terminal, fmt, monkeypatch)
        # The terminal hands written bytes to its reader asynchronously: read until
        # both records' lines are in, or nothing more comes.
        shown = b""
        while shown.count(b"\n") < 2 and select.select([master], [], [], 2)[0]:
            shown += os.read(master, 65536)
        return shown.decode()
    finally:
        terminal.close()
        os.close(master)


def in_a_file(fmt: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    with path.open("w") as sink:
        log_to(sink, fmt, monkeypatch)
    return path.read_text()


def test_auto_is_text_at_a_terminal(restore_logging, monkeypatch):
    shown = on_a_terminal("auto", monkeypatch)
    lines = shown.splitlines()
    assert len(lines) == 2, shown  # the forged line stays inside its record's line
    assert lines[0].endswith("INFO uvicorn.error: Started server process [42]")
    assert "{" not in shown and "\x1b" not in shown
    assert lines[1].endswith("INFO nefos.test: GET /x\\x1b[2J\\nforged INFO line 404")


def test_auto_is_json_elsewhere_without_escape_codes(restore_logging, monkeypatch, tmp_path):
    written = in_a_file("auto", tmp_path / "log", monkeypatch)
    first, second = (json.loads(line) for line in written.splitlines())
    assert first["message"] == "Started server process [42]"
    assert first["logger"] == "uvicorn.error" and "color_message" not in first
    assert "\\u001b" not in written.splitlines()[0]
    assert second["message"] == "GET /x\x1b[2J\nforged INFO line 404"  # JSON escapes it


def test_json_and_text_are_forced(restore_logging, monkeypatch, tmp_path):
    assert json.loads(on_a_terminal("json", monkeypatch).splitlines()[0])["level"] == "info"
    text = in_a_file("text", tmp_path / "log", monkeypatch)
    assert text.splitlines()[0].endswith("INFO uvicorn.error: Started server process [42]")


def test_log_format_setting(tmp_path):
    assert load_settings(data_dir=tmp_path).log_format == "auto"
    assert load_settings(data_dir=tmp_path, log_format="text").log_format == "text"
    with pytest.raises(ConfigError):
        load_settings(data_dir=tmp_path, log_format="yaml")


def test_uvicorn_configured_before_still_logs_through_ours(restore_logging, monkeypatch, tmp_path):
    """uvicorn.Config's default logging config stops uvicorn's records at its own logger
    (an in-process server of another test, an embedding program): ours takes them back."""
    uvicorn.Config(app=lambda scope, receive, send: None, log_level="warning")
    written = in_a_file("json", tmp_path / "log", monkeypatch)
    assert json.loads(written.splitlines()[0])["logger"] == "uvicorn.error"
