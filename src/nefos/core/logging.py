"""Structured logs: one JSON object per line, each carrying the current request id; or,
for a person at a terminal, one line of text.

The id is set by the request-id middleware and follows the request into everything it
calls (services, backend jobs) through a context variable.

Neither form carries terminal escape codes: uvicorn adds a ``color_message`` copy of its
messages with ANSI colours, which is dropped, and a text line shows any control
character a message holds (a requested path, a header) escaped, so nothing a client
sent can move a watching operator's cursor or recolour the screen.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from typing import Any

import orjson

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("nefos_request_id", default="")

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
# Record attributes that are never written: uvicorn's coloured copy of its message.
_DROPPED = {"color_message"}
# C0 controls but tab, DEL and C1 controls: what a terminal may act on.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _timestamp(created: float) -> str:
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (
        f".{int((created - seconds) * 1000):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _DROPPED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def _escaped(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


class TextFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        # One record, one line: a newline or escape code in a message is shown, not acted
        # on (a traceback, added after this, keeps its lines).
        return _CONTROLS.sub(_escaped, super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        rid = request_id.get()
        line = super().format(record)
        return f"{line} [{rid}]" if rid else line


def text_wanted(fmt: str, stream: Any = None) -> bool:
    """Whether ``fmt`` ("auto", "json" or "text") means text on ``stream``: auto is text
    for a person at a terminal and JSON for a journal, a pipe or a file."""
    if fmt == "auto":
        stream = stream if stream is not None else sys.stderr
        return bool(getattr(stream, "isatty", lambda: False)())
    return fmt == "text"


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    # Every request logs a line: skip what we never print (the logging HOWTO's
    # "Optimization" section): caller frame lookup, thread and process names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if text_wanted(fmt, sys.stderr):
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's messages go through our handler, whatever configured its loggers before
    # in this process (uvicorn.Config's default dictConfig stops them at "uvicorn").
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    # uvicorn's own access log would duplicate ours, which carries the request id.
    logging.getLogger("uvicorn.access").disabled = True
