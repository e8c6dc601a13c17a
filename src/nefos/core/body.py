"""Request bodies: JSON parsed against a model, malformed input as a domain error.

Routes parse bodies here rather than in FastAPI's signature so that every API, including
those that read raw bodies first, refuses bad input with the same clear message.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from nefos.core import errors

T = TypeVar("T")


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def parse_json(model: type[T], raw: bytes) -> T:
    """``raw`` validated as ``model``; InvalidInput saying what is wrong otherwise."""
    try:
        return _adapter(model).validate_json(raw)
    except ValidationError as exc:
        raise errors.InvalidInput(describe_validation(exc.errors())) from None


def describe_validation(problems: Sequence[Any]) -> str:
    parts = []
    for problem in list(problems)[:5]:
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body")
        what = problem.get("msg", "invalid")
        parts.append(f"{where}: {what}" if where else what)
    return "Invalid request: " + "; ".join(parts)
