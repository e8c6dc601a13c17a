"""Domain errors: what went wrong, never how an API says it.

Services raise these; each API maps the kind to its own status and fault body in one
table (``nefos.core.faults``). Nothing here knows HTTP.

    NefosError
    ├── InvalidInput        the request is malformed or breaks a rule
    ├── NotAuthenticated    no credentials, or credentials that are not valid
    ├── PermissionDenied    valid credentials, not allowed
    ├── NotFound            no such thing (for this caller)
    ├── NotAllowedMethod    the resource exists but not with this verb
    ├── NotAcceptable       a version or representation the API does not speak
    ├── Conflict            the thing's state forbids it now
    ├── TooLarge            a body, header or value beyond a configured limit
    ├── OverQuota           a quota would be exceeded
    ├── LengthRequired      a data body without a length or chunked encoding
    ├── PreconditionFailed  a conditional request's condition is false
    ├── RangeNotSatisfiable no requested byte range lies inside the data
    ├── ChecksumMismatch    the data does not match the checksum the caller gave
    ├── UnsupportedMedia    a body in a format the API does not take
    ├── NotImplementedYet   a valid request for something nefos does not do
    ├── Unavailable         a backend or engine cannot serve it now
    └── Throttled           too many attempts of this kind lately; try again later
"""

from __future__ import annotations

from typing import Any


class NefosError(Exception):
    def __init__(
        self,
        message: str,
        details: str = "",
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.details = details
        self.data = data
        self.headers = headers  # protocol headers the reply needs (e.g. Content-Range)


class InvalidInput(NefosError): ...


class NotAuthenticated(NefosError): ...


class PermissionDenied(NefosError): ...


class NotFound(NefosError): ...


class NotAllowedMethod(NefosError): ...


class NotAcceptable(NefosError): ...


class Conflict(NefosError): ...


class TooLarge(NefosError): ...


class OverQuota(NefosError): ...


class LengthRequired(NefosError): ...


class PreconditionFailed(NefosError): ...


class RangeNotSatisfiable(NefosError): ...


class ChecksumMismatch(NefosError): ...


class UnsupportedMedia(NefosError): ...


class NotImplementedYet(NefosError): ...


class Unavailable(NefosError): ...


class Throttled(NefosError): ...
