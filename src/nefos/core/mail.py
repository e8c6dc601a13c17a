"""Mail to people, through the SMTP relay of the configuration (``[mail]``).

Callers send only after the change a mail tells of is committed: a mail never announces
an account or a link the database then rolled back. The relay may be down at that
moment, so :meth:`Mailer.send` tries once and says whether the relay took the mail;
if not, the mail is tried again in the background after each pause of
``retry_seconds``, and logged as lost after the last. A caller that must tell the
person (sign-up: "we could not send the mail yet") uses the answer; one that must not
(password reset, which answers alike for unknown addresses) uses :meth:`Mailer.post`,
which never waits for the relay.

Retries live in this process: a process that stops drops the mail it still holds, and
logs each. Only the relay's address and the message leave nefos; no mail is stored.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from nefos.core.config import Mail

log = logging.getLogger("nefos.mail")


@dataclass(frozen=True)
class Letter:
    """One plain-text mail."""

    to: tuple[str, ...]
    subject: str
    body: str


class Mailer:
    def __init__(self, conf: Mail, base_url: str):
        self.conf = conf
        # the links in mail point here: the configured URL, else the deployment's own
        self.base_url = (conf.base_url or base_url).rstrip("/")
        self._pending: set[asyncio.Task[None]] = set()

    def link(self, path: str) -> str:
        """An absolute URL people can open from their mail."""
        return self.base_url + path

    def _message(self, letter: Letter) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.conf.from_address
        message["To"] = ", ".join(letter.to)
        message["Subject"] = letter.subject
        message["Message-ID"] = make_msgid(domain="nefos")
        message.set_content(letter.body)
        return message

    async def _deliver(self, letter: Letter) -> None:
        conf = self.conf
        await aiosmtplib.send(
            self._message(letter),
            hostname=conf.host,
            port=conf.port,
            username=conf.user or None,
            password=conf.password or None,
            use_tls=conf.security == "tls",
            start_tls={"auto": None, "starttls": True, "tls": False, "none": False}[conf.security],
            timeout=conf.timeout_seconds,
        )

    async def send(self, letter: Letter) -> bool:
        """Try once now; if the relay does not take it, keep trying in the background.
        Whether it went now."""
        if not letter.to:
            return True
        try:
            await self._deliver(letter)
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("mail %r to %s not sent, will retry: %s", letter.subject, letter.to, exc)
            self._later(letter, list(self.conf.retry_seconds))
            return False
        log.info("mail %r sent to %s", letter.subject, letter.to)
        return True

    def post(self, letter: Letter) -> None:
        """Send without waiting: for answers that must not tell whether mail went."""
        self._later(letter, [0.0, *self.conf.retry_seconds])

    def _later(self, letter: Letter, pauses: list[float]) -> None:
        task = asyncio.ensure_future(self._retry(letter, pauses))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _retry(self, letter: Letter, pauses: list[float]) -> None:
        for number, pause in enumerate(pauses, 1):
            await asyncio.sleep(pause)
            try:
                await self._deliver(letter)
            except (aiosmtplib.SMTPException, OSError) as exc:
                log.warning(
                    "mail %r to %s: try %d failed: %s", letter.subject, letter.to, number, exc
                )
                continue
            log.info("mail %r sent to %s", letter.subject, letter.to)
            return
        log.error("mail %r to %s lost: the relay refused every try", letter.subject, letter.to)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            log.error("%d mail(s) not sent before the process stopped", len(self._pending))
            await asyncio.gather(*self._pending, return_exceptions=True)
