"""Request bodies: JSON parsed against a model, malformed input as a domain error.

Routes parse bodies here rather than in FastAPI's signature so that every API, including
those that read raw bodies first, refuses bad input with the same clear message.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from nefos.core import errors

T = TypeVar("T")


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def parse_json(model: type[T], raw: bytes) -> T:
    """``raw`` validated as ``model``; InvalidInput saying what is wrong otherwise.

    No string in it may hold a NUL: none is meaningful in a name or a value, and
    PostgreSQL cannot store one (SQLite would, and the two must answer alike)."""
    try:
        parsed = _adapter(model).validate_json(raw)
    except ValidationError as exc:
        raise errors.InvalidInput(describe_validation(exc.errors())) from None
    if b"\\u0000" in raw and _holds_nul(orjson.loads(raw)):  # JSON spells a NUL \u0000
        raise errors.InvalidInput("Invalid request: text may not contain NUL (\\u0000)")
    return parsed


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def describe_validation(problems: Sequence[Any]) -> str:
    parts = []
    for problem in list(problems)[:5]:
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body")
        what = problem.get("msg", "invalid")
        parts.append(f"{where}: {what}" if where else what)
    return "Invalid request: " + "; ".join(parts)
