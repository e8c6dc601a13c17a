"""A real SMTP server for the tests (aiosmtpd, in a thread of its own) and the mail it
received, for tests that follow a link from a mail as a person would."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import free_port

LINK = re.compile(r"https?://\S+")


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def to(self, address: str, subject: str = "") -> list[EmailMessage]:
        """Mail that reached ``address`` so far, whose subject contains ``subject``."""
        with self._arrived:
            return [
                m for m in self.messages if address in str(m["To"]) and subject in str(m["Subject"])
            ]

    def wait(self, address: str, subject: str = "", timeout: float = 15) -> EmailMessage:
        """The first such mail, waiting for it (from a thread that runs no event loop)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = self.to(address, subject)
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail {subject!r} to {address} in {timeout} s")
                self._arrived.wait(left)

    async def arrival(
        self, address: str, subject: str = "", seconds: float = 15, nth: int = 1
    ) -> EmailMessage:
        """The ``nth`` such mail, waiting without blocking the event loop."""
        deadline = time.monotonic() + seconds
        while len(found := self.to(address, subject)) < nth:
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail {subject!r} #{nth} to {address} in {seconds} s")
            await asyncio.sleep(0.02)
        return found[nth - 1]


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def link(message: EmailMessage) -> str:
    """The one link in a mail."""
    found = LINK.findall(body(message))
    assert len(found) == 1, found
    return found[0]


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[Mailbox]:
    """An SMTP server on loopback (``port``, else a free one), while the block runs."""
    mailbox = Mailbox()
    mailbox.port = port or free_port()
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
