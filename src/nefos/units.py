"""Byte counts as people read them: pure, shared by the server, ``nefos`` and ``nf``.

A quota of ``214748364800`` has to be counted digit by digit; ``200 GiB`` does not. Sizes
are binary (the units nefos's limits are set in: ``20GiB`` is ``20 << 30``); machine
output (``--json``, ``--csv``, API bodies) keeps exact bytes.
"""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_bytes(size: int) -> str:
    """``512 B``, ``1.5 MiB``, ``200 GiB``: one decimal at most, none when it is 0."""
    if abs(size) < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if abs(round(value, 1)) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    raise AssertionError("unreachable")  # the loop returns at its last unit


def human_amount(amount: int, unit: str) -> str:
    """An amount of a resource whose unit is ``"bytes"`` (sizes) or ``""`` (counts)."""
    return human_bytes(amount) if unit == "bytes" else str(amount)
