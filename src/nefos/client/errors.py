"""The one exception the client raises, and how a server's refusal becomes its message.

::

    ClientError          status = the HTTP status, or 0 when no answer came at all
      TransferError      status 0: the data did not check out (hash, size), not the server

Callers catch ``ClientError`` and show ``str(error)``; ``status`` lets a program tell a
missing object (404) from a refusal (403) without parsing text.
"""

from __future__ import annotations

import json

import httpx


class ClientError(Exception):
    """A request the cloud refused, or could not be sent."""

    def __init__(self, status: int, message: str, target: str = ""):
        super().__init__(status, message, target)
        self.status = status
        self.message = message
        self.target = target

    def __str__(self) -> str:
        text = f"{self.target}: {self.message}" if self.target else self.message
        return f"{text} (HTTP {self.status})" if self.status else text


class TransferError(ClientError):
    """Data that does not match its hash: a changed file, a changed object, a bad block."""

    def __init__(self, message: str, target: str = ""):
        super().__init__(0, message, target)


def response_message(response: httpx.Response) -> str:
    """The server's own words for a refusal.

    The object store answers Swift-style plain text; identity and the other APIs answer
    OpenStack JSON faults (``{"itemNotFound": {"message": ...}}`` or ``{"error": ...}``).
    A HEAD has no body, so the reason phrase is all there is.
    """
    text = response.text.strip() if response.content else ""
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and len(body) == 1:
            (fault,) = body.values()
            if isinstance(fault, dict) and isinstance(fault.get("message"), str):
                return fault["message"]
    if text and not text.startswith("<"):
        return text.splitlines()[0][:500]
    return response.reason_phrase or f"HTTP {response.status_code}"
