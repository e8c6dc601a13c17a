"""Numbers and ids read from request text: ASCII only, and within what a column holds.

Python's own parsers are too kind for a request: ``int()`` takes any Unicode decimal
digit (``int("\\u0661") == 1``, an Arabic-Indic one), surrounding spaces, ``+`` and
``_``, and has no upper bound; ``str.isdigit()`` is true of ``"²"``, which ``int()``
then refuses with a ValueError; ``uuid.UUID()`` reads Unicode digits as hex. A route that
trusted them named server 1 by ``/servers/\\u0661`` and answered 500 for ``²``, or for
an integer past the 32 or 64 bits of the database column (SQLite and PostgreSQL refuse
to bind it). Every id and number a request carries (path, query, header, a string in a
body) is read here instead, and a caller that gets None answers as its API does for a
bad or missing value.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

INT32_MAX = (1 << 31) - 1  # an Integer column (ids numbered by the database)
INT64_MAX = (1 << 63) - 1  # a BigInteger column
INT64_MIN = -(1 << 63)

# At most 19 digits: every value of a 64-bit column, and int() never sees a long string.
_INTEGER = re.compile(r"-?[0-9]{1,19}")


def ascii_int(text: Any, lo: int = 0, hi: int = INT64_MAX) -> int | None:
    """The integer ``text`` spells in ASCII digits (a leading ``-`` for a negative one)
    if it lies in ``[lo, hi]``; None for anything else: no spaces, ``+``, ``_``, Unicode
    digits or exponents, and nothing a column of that range could not hold."""
    if not isinstance(text, str) or _INTEGER.fullmatch(text) is None:
        return None
    value = int(text)
    return value if lo <= value <= hi else None


def ascii_uuid(text: Any) -> uuid.UUID | None:
    """The UUID ``text`` spells in ASCII (the forms ``uuid.UUID`` reads), or None: a
    string of Unicode digits is no hex, though ``uuid.UUID`` reads it as such."""
    if isinstance(text, uuid.UUID):
        return text
    if not isinstance(text, str) or not text.isascii():
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
